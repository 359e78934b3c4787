"""The declarative REST connector's configuration: auth, retries, resources, pagination.

Everything here is data (pydantic models), so a spec for a public API is a JSON
file validated by :class:`HttpConfig` (see ``uzo_connectors.http.specs``).
Secrets (tokens, passwords, client secrets, API keys) are ``SecretStr``, and only
there: headers and query parameters that look like credentials are refused (see
:mod:`uzo_connectors.http.guards`), as is anything that could move a request off
``base_url``'s origin. Every number has a maximum.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from uzo_connectors.base import ConnectorConfig
from uzo_connectors.http import guards
from uzo_connectors.http.guards import MAX_TIMEOUT, checked
from uzo_connectors.http.jsonpath import check_path
from uzo_connectors.http.templates import (
    TemplateProblem,
    check_template,
    literal_text,
    template_fields,
)

USE_AUTH = "auth (type bearer, basic, api_key or oauth2_client_credentials)"
MAX_PAGE_SIZE = 10_000
MAX_INDEX = 1_000_000_000  # start page / offset


def _path_template(value: str) -> str:
    """A path template: allowed as a template, and its literal text only extends base_url."""
    check_template(value)
    checked(guards.relative_path, literal_text(value), field="path")
    return value


def _json_templates(value: Any, where: str) -> None:
    """Every string leaf of a JSON body is an allowed template (the error names the leaf)."""
    if isinstance(value, str):
        try:
            check_template(value)
        except TemplateProblem as exc:
            raise ValueError(f"{where}: {exc}" if where else str(exc)) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _json_templates(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _json_templates(item, f"{where}[{i}]")


def _plain_secret(value: SecretStr, field: str) -> SecretStr:
    """A secret that goes into a header: no control characters (the message never shows it)."""
    checked(guards.plain, value.get_secret_value(), field=field, max_length=8192)
    return value


Scalar = str | int | float | bool


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- authentication -----------------------------------------------------------------


class NoAuth(_Model):
    type: Literal["none"] = "none"


class BearerAuth(_Model):
    type: Literal["bearer"] = "bearer"
    token: SecretStr

    @field_validator("token")
    @classmethod
    def _plain_token(cls, value: SecretStr) -> SecretStr:
        return _plain_secret(value, "token")


class BasicAuth(_Model):
    type: Literal["basic"] = "basic"
    username: str
    password: SecretStr

    @field_validator("username")
    @classmethod
    def _plain_username(cls, value: str) -> str:
        return checked(guards.plain, value, field="username", forbidden=":")


class ApiKeyAuth(_Model):
    """An API key sent as a header (``X-API-Key: KEY``) or a query parameter (``?key=KEY``)."""

    type: Literal["api_key"] = "api_key"
    name: str = "X-API-Key"
    value: SecretStr
    location: Literal["header", "query"] = "header"
    prefix: str = Field(default="", max_length=64)  # e.g. "Token " for "Authorization: Token KEY"

    @field_validator("value")
    @classmethod
    def _plain_value(cls, value: SecretStr) -> SecretStr:
        return _plain_secret(value, "value")

    @field_validator("prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        return checked(guards.plain, value, field="prefix", max_length=64)

    @model_validator(mode="after")
    def _valid_name(self) -> ApiKeyAuth:
        if self.location == "header":
            checked(guards.header_name, self.name, field="name")
        else:
            checked(guards.plain, self.name, field="name", max_length=128, forbidden="&=#?/ ")
            if not self.name:
                raise ValueError("name: give the query parameter's name")
        return self


class OAuth2ClientCredentials(_Model):
    """OAuth2 client-credentials grant; the token is cached and refreshed on expiry or 401."""

    type: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    token_url: str  # SSRF-checked and pinned like every URL; redirects are not followed
    client_id: str
    client_secret: SecretStr
    scopes: tuple[str, ...] = Field(default=(), max_length=100)
    audience: str | None = None
    # "basic": client id/secret in an Authorization header (RFC 6749 2.3.1); "body": form fields
    client_auth: Literal["basic", "body"] = "basic"
    expiry_margin_seconds: float = Field(default=30.0, ge=0, le=3600)

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str) -> str:
        return checked(guards.absolute_url, value, field="token_url", allow_query=True)

    @field_validator("client_id", "audience")
    @classmethod
    def _plain_text(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else checked(guards.plain, value, field=str(info.field_name))

    @field_validator("scopes")
    @classmethod
    def _plain_scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for scope in value:
            checked(guards.plain, scope, field="scopes", forbidden=" ")
        return value


Auth = Annotated[
    NoAuth | BearerAuth | BasicAuth | ApiKeyAuth | OAuth2ClientCredentials,
    Field(discriminator="type"),
]


# --- retries ---------------------------------------------------------------------------


class RetrySettings(_Model):
    """UZO's retry policy (:mod:`uzo_connectors.retry`); Retry-After wins.

    ``max_attempts`` counts every attempt. The wait before retry ``n`` is
    ``backoff_base * 2**(n-1)`` plus up to ``backoff_base`` of jitter, at most
    ``backoff_max``.
    """

    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_base: float = Field(default=0.5, ge=0, le=60)
    backoff_max: float = Field(default=30.0, ge=0, le=MAX_TIMEOUT)
    retry_statuses: tuple[Annotated[int, Field(ge=400, le=599)], ...] = Field(
        default=(429, 500, 502, 503, 504), max_length=200
    )
    # a longer Retry-After fails the read
    max_retry_after: float = Field(default=120.0, ge=0, le=MAX_TIMEOUT)


# --- pagination ------------------------------------------------------------------------


class NoPagination(_Model):
    type: Literal["none"] = "none"


class PageNumberPagination(_Model):
    """``?page=N&per_page=S``; stops on an empty page, or a short one if ``stop_on_short_page``."""

    type: Literal["page"] = "page"
    page_param: str = Field(default="page", min_length=1, max_length=128)
    size_param: str | None = Field(default="per_page", min_length=1, max_length=128)
    page_size: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)
    start_page: int = Field(default=1, ge=0, le=MAX_INDEX)
    stop_on_short_page: bool = True


class OffsetPagination(_Model):
    """``?offset=N&limit=S``; stops on an empty page, or a short one if ``stop_on_short_page``."""

    type: Literal["offset"] = "offset"
    offset_param: str = Field(default="offset", min_length=1, max_length=128)
    limit_param: str = Field(default="limit", min_length=1, max_length=128)
    page_size: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)
    start_offset: int = Field(default=0, ge=0, le=MAX_INDEX)
    stop_on_short_page: bool = True


class CursorPagination(_Model):
    """The next cursor comes from the body (``cursor_path``) or the last record (``cursor_field``).

    The cursor is sent as ``cursor_param``; paging stops when there is no cursor, a page
    is empty, the cursor repeats, or ``has_more_path`` is false (Stripe's ``has_more``).
    """

    type: Literal["cursor"] = "cursor"
    cursor_param: str = Field(default="cursor", min_length=1, max_length=128)
    cursor_path: str | None = None
    cursor_field: str | None = None
    has_more_path: str | None = None
    size_param: str | None = Field(default=None, min_length=1, max_length=128)
    page_size: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)

    @field_validator("cursor_path", "has_more_path")
    @classmethod
    def _valid_path(cls, value: str | None) -> str | None:
        return None if value is None else check_path(value)

    @model_validator(mode="after")
    def _one_cursor_source(self) -> CursorPagination:
        if (self.cursor_path is None) == (self.cursor_field is None):
            raise ValueError("set exactly one of cursor_path and cursor_field")
        return self


class LinkHeaderPagination(_Model):
    """Follow the ``Link: <url>; rel="next"`` header (GitHub style)."""

    type: Literal["link"] = "link"
    rel: str = Field(default="next", max_length=64)
    size_param: str | None = Field(default=None, min_length=1, max_length=128)
    page_size: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)


Pagination = Annotated[
    NoPagination
    | PageNumberPagination
    | OffsetPagination
    | CursorPagination
    | LinkHeaderPagination,
    Field(discriminator="type"),
]


# --- resources -------------------------------------------------------------------------


class IncrementalSettings(_Model):
    """Send the watermark (``ReadRequest.incremental.after``) as ``param``.

    ``field`` is the record field holding the watermark; with ``filter_client_side``
    records whose field is not greater than the watermark are dropped as well (many
    APIs treat ``since`` as inclusive).
    """

    field: str
    param: str
    filter_client_side: bool = True


_HTTP_METHODS = Literal["GET", "POST", "PUT", "PATCH"]


class WriteSettings(_Model):
    """Rows are sent as JSON (append only): a JSON array of up to ``batch_size`` rows per
    request (``body="array"``) or one object per request (``"row"``)."""

    method: Literal["POST", "PUT", "PATCH"] = "POST"
    path: str | None = None  # default: the resource's path
    batch_size: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)
    body: Literal["array", "row"] = "array"
    headers: dict[str, str] = {}

    @field_validator("headers")
    @classmethod
    def _safe_headers(cls, value: dict[str, str]) -> dict[str, str]:
        return checked(guards.check_headers, value, field="headers", use=USE_AUTH)

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        return None if value is None else _path_template(value)


class Resource(_Model):
    """One dataset: a request template, where its records are, and how to page through them."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    method: _HTTP_METHODS = "GET"
    # Jinja template relative to base_url, e.g. "/repos/{{ owner }}/{{ repo }}/issues"
    # (uzo_connectors.http.templates; the older "/repos/{owner}" still works)
    path: str
    params: dict[str, Scalar] = {}  # values for the path/query/body templates
    query: dict[str, Scalar] = {}  # string values are templates too
    headers: dict[str, str] = {}
    body: dict[str, Any] | None = None  # JSON body template (string leaves are templates)
    # RFC 9535 JSONPath of the records: "$" (or "") = the body itself; "$.data", "$.results[*]"
    records_path: str = ""
    pagination: Pagination = NoPagination()
    max_pages: int = Field(default=1000, ge=1, le=100_000)
    columns: dict[str, str] | None = None  # declared schema: name -> Arrow type alias or "json"
    nested: Literal["struct", "flatten", "json"] = "struct"
    flatten_separator: str = Field(default=".", min_length=1, max_length=8)
    incremental: IncrementalSettings | None = None
    primary_key: tuple[str, ...] = ()
    readable: bool = True  # False for a write-only endpoint
    write: WriteSettings | None = None  # rows can be appended (see uzo_connectors.http.sink)

    @field_validator("records_path")
    @classmethod
    def _valid_path(cls, value: str) -> str:
        return check_path(value)

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        return _path_template(value)

    @field_validator("body")
    @classmethod
    def _body_templates(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        _json_templates(value, "")
        return value

    @field_validator("headers")
    @classmethod
    def _safe_headers(cls, value: dict[str, str]) -> dict[str, str]:
        return checked(guards.check_headers, value, field="headers", use=USE_AUTH)

    @field_validator("query")
    @classmethod
    def _no_credential_params(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        checked(guards.check_query_names, value, field="query")
        for name, template in value.items():
            if isinstance(template, str):
                try:
                    check_template(template)
                except TemplateProblem as exc:
                    raise ValueError(f"{name!r}: {exc}") from None
        return value

    @field_validator("params")
    @classmethod
    def _no_credential_values(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        checked(guards.check_query_names, value, field="params", template_values=True)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Resource:
        write_path = self.write.path if self.write and self.write.path else self.path
        used = template_fields(self.path) + template_fields(write_path)
        used += [f for v in self.query.values() if isinstance(v, str) for f in template_fields(v)]
        used += _body_fields(self.body)
        for name in used:
            if name not in self.params:
                raise ValueError(f"template value {name!r} has no default value in params")
        if not self.readable and self.write is None:
            raise ValueError("a resource that is not readable needs write settings")
        if self.columns is not None:
            from uzo_connectors.http.records import arrow_type  # pyarrow only when needed

            for column, alias in self.columns.items():
                try:
                    arrow_type(alias)
                except ValueError as exc:
                    raise ValueError(f"column {column!r}: {exc}") from None
        return self


def _body_fields(value: Any) -> list[str]:
    if isinstance(value, str):
        return template_fields(value)
    if isinstance(value, dict):
        return [f for v in value.values() for f in _body_fields(v)]
    if isinstance(value, list):
        return [f for v in value for f in _body_fields(v)]
    return []


class HttpConfig(ConnectorConfig):
    """A REST API: where it is, how to authenticate, and the resources it serves."""

    # where requests and credentials go: changing it needs the secrets again (token_url is
    # inside `auth`, a secret field as a whole, so changing it means giving `auth` again)
    endpoint_fields: ClassVar[frozenset[str]] = frozenset({"base_url"})

    base_url: str
    auth: Auth = NoAuth()
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=30.0, gt=0, le=MAX_TIMEOUT)
    retries: RetrySettings = RetrySettings()
    # requests per second, over a moving window (2.5: at most 5 requests in any 2 s)
    rate_limit: float | None = Field(default=None, gt=0, le=1000)
    verify_tls: bool = True
    max_redirects: int = Field(default=5, ge=0, le=20)
    sample_size: int = Field(default=100, ge=1, le=100_000)  # records used to infer a schema
    resources: tuple[Resource, ...] = Field(default=(), max_length=1000)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return checked(guards.absolute_url, value, field="base_url")

    @field_validator("headers")
    @classmethod
    def _safe_headers(cls, value: dict[str, str]) -> dict[str, str]:
        return checked(guards.check_headers, value, field="headers", use=USE_AUTH)

    @field_validator("resources")
    @classmethod
    def _unique_names(cls, value: tuple[Resource, ...]) -> tuple[Resource, ...]:
        names = [r.name for r in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate resource names: {', '.join(duplicates)}")
        return value

    def resource(self, name: str) -> Resource | None:
        return next((r for r in self.resources if r.name == name), None)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, for scrubbing messages."""
        auth = self.auth
        values: list[SecretStr] = []
        if isinstance(auth, BearerAuth):
            values.append(auth.token)
        elif isinstance(auth, BasicAuth):
            values.append(auth.password)
        elif isinstance(auth, ApiKeyAuth):
            values.append(auth.value)
        elif isinstance(auth, OAuth2ClientCredentials):
            values.append(auth.client_secret)
        return tuple(v.get_secret_value() for v in values if v.get_secret_value())
