"""Checks on the parts of an HTTP config that end up in a URL, a header or a query string.

A connector config is stored in clear and returned by the API, except its
``SecretStr`` fields; so a credential typed into a free-form ``headers`` map or
query would be exposed, and would follow the request to wherever it is sent.
Header names that carry credentials (``Authorization``, ``Cookie``, anything
with token/secret/key/auth/password/session/signature in its name) are refused
with a pointer to the typed field, as are headers that steer the request
itself (``Host``, ``Content-Length``, ``Transfer-Encoding``, ``Connection``,
``Forwarded``, ``X-Forwarded-*``...). Query parameters with credential names
are refused the same way. Base URLs must be plain absolute http(s) URLs (no
user info, query, fragment, backslash or control characters) that ``httpx``
and ``urllib`` read the same way, and resource paths can only extend them.

Each check raises :class:`~uzo_connectors.errors.ConfigError`; config
validators turn it into ``ValueError`` so the API's 422 names the field.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import httpx

from uzo_connectors.errors import ConfigError
from uzo_connectors.options import http_url, plain_text

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

T = TypeVar("T")

MAX_TIMEOUT = 300.0  # seconds: the maximum of every timeout and wait in these configs
MAX_HEADERS = 64
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")  # RFC 9110 field-name
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")

CREDENTIAL_HEADER_WORDS = (
    "auth", "bearer", "cookie", "credential", "key", "passwd", "password", "secret",
    "session", "signature", "token",
)  # fmt: skip
ROUTING_HEADERS = frozenset(
    {
        "connection", "content-length", "expect", "forwarded", "host", "keep-alive",
        "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "via",
        "x-host", "x-original-url", "x-real-ip", "x-rewrite-url",
    }
)  # fmt: skip
ROUTING_PREFIXES = ("x-forwarded-", "proxy-")

# Query parameter names that carry credentials (compared in lower case, "-" as "_").
CREDENTIAL_PARAMS = frozenset(
    {
        "access_token", "api_key", "apikey", "auth", "auth_token", "client_secret", "id_token",
        "key", "passwd", "password", "private_key", "pwd", "refresh_token", "secret",
        "session", "sessionid", "sig", "signature", "token", "x_api_key", "x_amz_credential",
        "x_amz_security_token", "x_amz_signature", "x_goog_credential", "x_goog_signature",
    }
)  # fmt: skip
CREDENTIAL_PARAM_WORDS = ("password", "secret", "api_key", "apikey", "access_token", "signature")
# Names that are credentials as query parameters (Google's ``?key=``) but ordinary words
# as template values (``/objects/{key}``).
_AMBIGUOUS = frozenset({"auth", "key", "session", "sig"})


def checked(check: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a check; its ConfigError becomes the ValueError pydantic reports for the field.

    Pydantic names the field itself, so the ``field: `` the message starts with goes.
    """
    try:
        return check(*args, **kwargs)
    except ConfigError as exc:
        message = str(exc)
        raise ValueError(message.removeprefix(f"{kwargs.get('field', '')}: ")) from None


def is_credential_header(name: str) -> bool:
    lowered = name.strip().lower()
    return any(word in lowered for word in CREDENTIAL_HEADER_WORDS)


def is_routing_header(name: str) -> bool:
    lowered = name.strip().lower()
    return lowered in ROUTING_HEADERS or lowered.startswith(ROUTING_PREFIXES)


def is_credential_param(name: str, *, template_value: bool = False) -> bool:
    """Whether a query parameter (or, ``template_value``, a template value) name is a credential."""
    lowered = name.strip().lower().replace("-", "_")
    names = CREDENTIAL_PARAMS - _AMBIGUOUS if template_value else CREDENTIAL_PARAMS
    return lowered in names or any(w in lowered for w in CREDENTIAL_PARAM_WORDS)


def header_name(name: str, *, field: str) -> str:
    """A syntactically valid header name that does not steer the request."""
    if not _TOKEN.match(name):
        raise ConfigError(f"{field}: {name!r} is not a valid header name")
    if is_routing_header(name):
        raise ConfigError(
            f"{field}: header {name!r} is not allowed (it controls how the request is "
            "routed or framed, which UZO decides)"
        )
    return name


def check_headers(headers: Mapping[str, str], *, field: str, use: str) -> dict[str, str]:
    """``headers`` if none carries a credential or steers the request; else ConfigError.

    ``use`` names the typed field to use instead (``auth`` ..., ``api_key``).
    """
    if len(headers) > MAX_HEADERS:
        raise ConfigError(f"{field}: at most {MAX_HEADERS} headers")
    seen: set[str] = set()
    for name, value in headers.items():
        if _TOKEN.match(name) and is_credential_header(name):
            raise ConfigError(
                f"{field}: header {name!r} is not allowed (it looks like a credential, and "
                f"headers are stored and shown in clear): use {use}"
            )
        header_name(name, field=field)
        if name.lower() in seen:
            raise ConfigError(f"{field}: header {name!r} is given twice")
        seen.add(name.lower())
        header_value(value, field=f"{field}.{name}")
    return dict(headers)


def header_value(value: str, *, field: str, max_length: int = 8192) -> str:
    return plain(value, field=field, max_length=max_length)


def check_query_names(names: Iterable[str], *, field: str, template_values: bool = False) -> None:
    """ConfigError if a query parameter (or template value) name carries a credential."""
    what = "template value" if template_values else "query parameter"
    for name in names:
        if is_credential_param(name, template_value=template_values):
            raise ConfigError(
                f"{field}: {what} {name!r} is not allowed (it looks like a credential, and "
                f"{what}s are stored and shown in clear): use auth with type api_key and "
                f"location: query (name: {name!r})"
            )


def absolute_url(value: str, *, field: str, allow_query: bool = False) -> str:
    """A plain absolute http(s) URL (see :func:`uzo_connectors.options.http_url`), returned
    without a trailing '/'. With ``allow_query`` it may have a query (a token URL's), whose
    parameter names must not carry credentials."""
    try:
        http_url(value, field=field, allow_query=allow_query)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("the connector's credential fields", "auth")) from None
    if allow_query:
        names = (k for k, _ in parse_qsl(urlsplit(value).query, keep_blank_values=True))
        check_query_names(names, field=field)
        return value
    return value.rstrip("/")


def relative_path(path: str, *, field: str) -> str:
    """A path (template) that can only extend the base URL, never replace its host."""
    if _CONTROL_OR_SPACE.search(path) or "\\" in path or "#" in path:
        raise ConfigError(
            f"{field}: must not contain spaces, backslashes, '#' or control characters"
        )
    if path.startswith("//") or re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", path):
        raise ConfigError(f"{field}: must be relative to base_url (no scheme, no '//host')")
    if "?" in path:
        query = path.split("?", 1)[1]
        check_query_names((k for k, _ in parse_qsl(query, keep_blank_values=True)), field=field)
    return path


def same_origin(url: str, base_url: str) -> bool:
    a, b = httpx.URL(url), httpx.URL(base_url)
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def plain(value: str, *, field: str, max_length: int = 256, forbidden: str = "") -> str:
    """Text without control characters or ``forbidden`` (it goes into a header or URL)."""
    try:
        text: str = plain_text(max_length, forbidden)(value)
    except ValueError as exc:
        raise ConfigError(f"{field}: {exc}") from None
    return text
