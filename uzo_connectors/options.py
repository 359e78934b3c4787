"""Allow-lists for the free-form options a connector hands to a driver or SDK.

A connector builds its client's arguments from typed config fields. Where a
client also takes free-form options (URL query parameters, connection-string
keys, fsspec ``storage_options``, MongoDB URI options), each key must be on the
connector's allow-list, with a check of its value; any other key is refused
with a :class:`~uzo_connectors.errors.ConfigError` naming it. An allow-list,
not a deny-list: an option nobody has reviewed never reaches a driver, whatever
it is called. Options that could choose a host, address, socket, proxy, local
file or credential source are simply never on a list (``refused`` gives the
reason for the ones users are likely to try).

The value checks here also serve typed fields: :func:`plain_text` refuses
control characters and connection-string syntax in names (user, database),
and :func:`host_name` accepts only a host name or IP address.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from uzo_connectors.errors import ConfigError

Check = Callable[[Any], Any]

# Why the usual suspects are refused (keys compared in lower case).
HOST_CHOICE = "it can choose another host, address or socket than the checked endpoint"
LOCAL_FILE = "it makes the client read a file on the UZO server"
CREDENTIAL_SOURCE = "it makes the client use credentials of the UZO server"
PROXY = "it sends traffic through a proxy the endpoint check never sees"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_\-]{0,61}[A-Za-z0-9_])?\.?)+$")


def check_options(
    options: Mapping[str, Any],
    allowed: Mapping[str, Check],
    *,
    field: str,
    what: str = "option",
    refused: Mapping[str, str] | None = None,
    case_sensitive: bool = True,
) -> dict[str, Any]:
    """The options with checked (normalised) values; ConfigError naming the first bad key.

    ``field`` is the config field the options came from (``url``, ``storage_options``...),
    ``what`` what one of them is called (``URL query parameter``, ``connection-string key``).
    With ``case_sensitive=False`` keys are matched in lower case and returned as listed
    in ``allowed``.
    """
    lookup = {(k if case_sensitive else k.lower()): k for k in allowed}
    reasons = {k.lower(): v for k, v in (refused or {}).items()}
    out: dict[str, Any] = {}
    for key, value in options.items():
        name = lookup.get(key if case_sensitive else key.lower())
        if name is None:
            reason = reasons.get(key.lower())
            because = f" ({reason})" if reason else ""
            choices = ", ".join(sorted(allowed)) or "none"
            raise ConfigError(
                f"{field}: {what} {key!r} is not allowed{because}; allowed: {choices}"
            )
        try:
            out[name] = allowed[name](value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{field}: {what} {key!r}: {exc}") from None
    return out


# -- value checks --------------------------------------------------------------------------


def one_of(*choices: str, case_sensitive: bool = False) -> Check:
    def check(value: Any) -> str:
        text = str(value)
        for choice in choices:
            if text == choice or (not case_sensitive and text.lower() == choice.lower()):
                return choice
        raise ValueError(f"must be one of {', '.join(choices)}")

    return check


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("must be true or false")


def integer(low: int, high: int) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("must be a whole number")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError("must be a whole number") from None
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}")
        return number

    return check


def plain_text(max_length: int = 256, forbidden: str = ";{}") -> Check:
    """Text with no control characters and none of ``forbidden`` (connection-string syntax)."""

    def check(value: Any) -> str:
        text = str(value)
        if len(text) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        if _CONTROL.search(text):
            raise ValueError("must not contain control characters")
        bad = sorted({c for c in text if c in forbidden})
        if bad:
            raise ValueError(f"must not contain {' '.join(repr(c) for c in bad)}")
        return text

    return check


def host_name(value: Any) -> str:
    """A DNS name or an IP address (IPv6 with or without brackets); nothing else."""
    import ipaddress

    text = str(value).strip()
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(bare)
        return text
    except ValueError:
        pass
    if len(text) > 253 or not _HOST.match(text):
        raise ValueError("must be a host name or an IP address")
    return text


def http_url(value: str, *, field: str, allow_query: bool = False) -> str:
    """A plain absolute http(s) URL that ``urllib`` and ``httpx`` read the same way.

    No spaces, backslashes or control characters, no user info (it would be stored in
    clear), no fragment, no query unless ``allow_query``, a valid port, and one host
    whichever parser reads it (a URL two parsers disagree on can pass a check on one
    host and connect to another). ConfigError naming ``field`` otherwise.
    """
    import httpx

    if _CONTROL_OR_SPACE.search(value) or "\\" in value:
        raise ConfigError(f"{field}: must not contain spaces, backslashes or control characters")
    parts = urlsplit(value)
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        raise ConfigError(f"{field}: must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ConfigError(
            f"{field}: must not carry a user name or password (they would be stored in clear):"
            " use the connector's credential fields"
        )
    if parts.fragment or "#" in value:
        raise ConfigError(f"{field}: must not carry a fragment")
    if not allow_query and (parts.query or "?" in value):
        raise ConfigError(f"{field}: must not carry a query string")
    try:
        parsed = httpx.URL(value)
        port = parts.port
    except (httpx.InvalidURL, ValueError) as exc:
        raise ConfigError(f"{field}: invalid URL: {exc}") from None
    if port == _DEFAULT_PORTS[parts.scheme.lower()]:
        port = None
    if parsed.host != parts.hostname or parsed.port != port:
        raise ConfigError(f"{field}: the host is ambiguous ({parts.hostname!r}/{parsed.host!r})")
    try:
        host_name(parts.hostname)
    except ValueError as exc:
        raise ConfigError(f"{field}: {exc}") from None
    return value
