"""The declarative REST connector's configuration: auth, retries, resources, pagination.

Everything here is data (pydantic models), so a spec for a public API is a JSON
file validated by :class:`HttpConfig` (see ``uzo_connectors.http.specs``).
Secrets (tokens, passwords, client secrets, API keys) are ``SecretStr``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from uzo_connectors.base import ConnectorConfig
from uzo_connectors.http.jsonpath import parse_path
from uzo_connectors.http.templates import template_fields

Scalar = str | int | float | bool


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- authentication -----------------------------------------------------------------


class NoAuth(_Model):
    type: Literal["none"] = "none"


class BearerAuth(_Model):
    type: Literal["bearer"] = "bearer"
    token: SecretStr


class BasicAuth(_Model):
    type: Literal["basic"] = "basic"
    username: str
    password: SecretStr


class ApiKeyAuth(_Model):
    """An API key sent as a header (``X-API-Key: KEY``) or a query parameter (``?key=KEY``)."""

    type: Literal["api_key"] = "api_key"
    name: str = "X-API-Key"
    value: SecretStr
    location: Literal["header", "query"] = "header"
    prefix: str = ""  # e.g. "Token " for "Authorization: Token KEY"


class OAuth2ClientCredentials(_Model):
    """OAuth2 client-credentials grant; the token is cached and refreshed on expiry or 401."""

    type: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    token_url: str
    client_id: str
    client_secret: SecretStr
    scopes: tuple[str, ...] = ()
    audience: str | None = None
    # "basic": client id/secret in an Authorization header (RFC 6749 2.3.1); "body": form fields
    client_auth: Literal["basic", "body"] = "basic"
    expiry_margin_seconds: float = Field(default=30.0, ge=0)


Auth = Annotated[
    NoAuth | BearerAuth | BasicAuth | ApiKeyAuth | OAuth2ClientCredentials,
    Field(discriminator="type"),
]


# --- retries ---------------------------------------------------------------------------


class RetrySettings(_Model):
    """Exponential backoff (``base * 2**attempt``, capped, with jitter); Retry-After wins."""

    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_base: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=30.0, ge=0)
    retry_statuses: tuple[int, ...] = (429, 500, 502, 503, 504)
    max_retry_after: float = Field(default=120.0, ge=0)  # a longer Retry-After fails the read


# --- pagination ------------------------------------------------------------------------


class NoPagination(_Model):
    type: Literal["none"] = "none"


class PageNumberPagination(_Model):
    """``?page=N&per_page=S``; stops on an empty page, or a short one if ``stop_on_short_page``."""

    type: Literal["page"] = "page"
    page_param: str = "page"
    size_param: str | None = "per_page"
    page_size: int = Field(default=100, ge=1)
    start_page: int = 1
    stop_on_short_page: bool = True


class OffsetPagination(_Model):
    """``?offset=N&limit=S``; stops on an empty page, or a short one if ``stop_on_short_page``."""

    type: Literal["offset"] = "offset"
    offset_param: str = "offset"
    limit_param: str = "limit"
    page_size: int = Field(default=100, ge=1)
    start_offset: int = 0
    stop_on_short_page: bool = True


class CursorPagination(_Model):
    """The next cursor comes from the body (``cursor_path``) or the last record (``cursor_field``).

    The cursor is sent as ``cursor_param``; paging stops when there is no cursor, a page
    is empty, the cursor repeats, or ``has_more_path`` is false (Stripe's ``has_more``).
    """

    type: Literal["cursor"] = "cursor"
    cursor_param: str = "cursor"
    cursor_path: str | None = None
    cursor_field: str | None = None
    has_more_path: str | None = None
    size_param: str | None = None
    page_size: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _one_cursor_source(self) -> CursorPagination:
        if (self.cursor_path is None) == (self.cursor_field is None):
            raise ValueError("set exactly one of cursor_path and cursor_field")
        for path in (self.cursor_path, self.has_more_path):
            if path is not None:
                parse_path(path)
        return self


class LinkHeaderPagination(_Model):
    """Follow the ``Link: <url>; rel="next"`` header (GitHub style)."""

    type: Literal["link"] = "link"
    rel: str = "next"
    size_param: str | None = None
    page_size: int = Field(default=100, ge=1)


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
    batch_size: int = Field(default=100, ge=1)
    body: Literal["array", "row"] = "array"
    headers: dict[str, str] = {}


class Resource(_Model):
    """One dataset: a request template, where its records are, and how to page through them."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    method: _HTTP_METHODS = "GET"
    path: str  # template relative to base_url, e.g. "/repos/{owner}/{repo}/issues"
    params: dict[str, Scalar] = {}  # values for the path/query/body templates
    query: dict[str, Scalar] = {}  # string values are templates too
    headers: dict[str, str] = {}
    body: dict[str, Any] | None = None  # JSON body template (string leaves are templates)
    records_path: str = ""  # "" = the body itself; e.g. "data", "results[*]", "$.items"
    pagination: Pagination = NoPagination()
    max_pages: int = Field(default=1000, ge=1)
    columns: dict[str, str] | None = None  # declared schema: name -> Arrow type alias or "json"
    nested: Literal["struct", "flatten", "json"] = "struct"
    flatten_separator: str = "."
    incremental: IncrementalSettings | None = None
    primary_key: tuple[str, ...] = ()
    readable: bool = True  # False for a write-only endpoint
    write: WriteSettings | None = None  # rows can be appended (see uzo_connectors.http.sink)

    @field_validator("records_path")
    @classmethod
    def _valid_path(cls, value: str) -> str:
        parse_path(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Resource:
        if self.path.startswith(("http://", "https://", "//")):
            raise ValueError("path must be relative to base_url")
        write_path = self.write.path if self.write and self.write.path else self.path
        if write_path.startswith(("http://", "https://", "//")):
            raise ValueError("write.path must be relative to base_url")
        used = template_fields(self.path) + template_fields(write_path)
        used += [f for v in self.query.values() if isinstance(v, str) for f in template_fields(v)]
        used += _body_fields(self.body)
        for name in used:
            if name not in self.params:
                raise ValueError(f"template field {{{name}}} has no default value in params")
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

    base_url: str
    auth: Auth = NoAuth()
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=30.0, gt=0)
    retries: RetrySettings = RetrySettings()
    rate_limit: float | None = Field(default=None, gt=0)  # requests per second
    verify_tls: bool = True
    max_redirects: int = Field(default=5, ge=0, le=20)
    sample_size: int = Field(default=100, ge=1)  # records used to infer a schema
    resources: tuple[Resource, ...] = ()

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("base_url must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("base_url must not carry a query or fragment (use headers or auth)")
        return value.rstrip("/")

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
