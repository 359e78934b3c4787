"""What a ``file`` connector's root may be, and which ``storage_options`` go with it.

The root is tenant input that picks a filesystem implementation on the UZO
server, so it is narrowed by construction: a local absolute path (``file://``
accepted and turned into the path) or an http(s) URL. Every other fsspec
protocol is refused with the name of the typed connector to use: those
connectors build their SDK's arguments from typed fields and never fall back
on the server's own credentials (fsspec's ``sftp`` offered the server's SSH
keys and agent, ``s3``/``gs``/``abfs`` with no keys fetched instance-metadata
tokens or managed-identity credentials, ``memory`` is shared by every tenant
of the process, ``zip::``/``simplecache::`` chains open files the root check
never sees).

``storage_options`` pass an allow-list per kind of root: none for local roots,
a few harmless read settings for http(s). Headers (secrets belong to the
``http`` connector's auth), proxies, ``client_kwargs`` and endpoints are never
on it.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from uzo_connectors.errors import ConfigError
from uzo_connectors.options import (
    CREDENTIAL_SOURCE,
    HOST_CHOICE,
    LOCAL_FILE,
    PROXY,
    boolean,
    check_options,
    http_url,
    integer,
    plain_text,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

RootKind = Literal["local", "http"]

MAX_ROOT_LENGTH = 4096
MAX_BLOCK_SIZE = 64 * 1024 * 1024

# fsspec protocol -> the typed connector that handles it safely.
TYPED_CONNECTORS: dict[str, str] = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "abfs": "azure_blob",
    "abfss": "azure_blob",
    "az": "azure_blob",
    "adl": "azure_blob",
    "sftp": "sftp",
    "ssh": "sftp",
    "ftp": "ftp",
    "ftps": "ftp",
}

_HEADERS = "headers and secrets belong to the 'http' connector's auth settings"
_TYPED = "credentials belong to a typed connector (s3, gcs, azure_blob, sftp, ftp)"

# Allowed storage_options per kind of root (see uzo_connectors.options.check_options).
STORAGE_OPTIONS: dict[RootKind, dict[str, Any]] = {
    "local": {},
    "http": {
        "block_size": integer(0, MAX_BLOCK_SIZE),
        "simple_links": boolean,
        "same_scheme": boolean,
    },
}

# Why the options users are likely to try are refused (compared in lower case).
REFUSED: dict[str, str] = {
    "headers": _HEADERS,
    "auth": _HEADERS,
    "cookies": _HEADERS,
    "client_kwargs": f"{PROXY}; {HOST_CHOICE}",
    "get_client": HOST_CHOICE,
    "proxy": PROXY,
    "proxies": PROXY,
    "proxy_auth": PROXY,
    "trust_env": PROXY,
    "endpoint_url": HOST_CHOICE,
    "host": HOST_CHOICE,
    "server_hostname": HOST_CHOICE,
    "ssl": "it changes how the server's TLS certificate is checked",
    "verify": "it changes how the server's TLS certificate is checked",
    "key": _TYPED,
    "secret": _TYPED,
    "token": _TYPED,
    "username": _TYPED,
    "password": _TYPED,
    "key_filename": LOCAL_FILE,
    "anon": CREDENTIAL_SOURCE,
    "profile": CREDENTIAL_SOURCE,
}

_root_text = plain_text(MAX_ROOT_LENGTH, forbidden="")


def _protocol(value: str) -> str | None:
    """The URL scheme (lower case), ``"::"`` for a chained fsspec URL, None for a path."""
    scheme, sep, _ = value.partition("://")
    if "::" in (scheme if sep else value) and not posixpath.isabs(value):
        return "::"
    return scheme.lower() if sep else None


def check_root(value: str) -> str:
    """The root, normalised (``file:///x`` -> ``/x``); ValueError naming what to use instead."""
    value = _root_text(value).strip()
    if not value:
        raise ValueError("root must not be empty")
    protocol = _protocol(value)
    if protocol == "::":
        raise ValueError(
            "chained fsspec URLs (with '::') are not allowed: use a local path or an http(s) URL"
        )
    if protocol is None:
        if not posixpath.isabs(value):
            # relative to the subscription's own files directory (the API's context)
            value = posixpath.normpath(value)
            if value == ".." or value.startswith("../"):
                raise ValueError("a relative root must stay inside your files directory")
        return value
    if protocol == "file":
        parts = urlsplit(value)
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise ValueError("a file:// root must be file:///absolute/path")
        if not posixpath.isabs(parts.path):
            raise ValueError("a local root must be an absolute path")
        return parts.path
    if protocol in ("http", "https"):
        _check_http_root(value)
        return value
    typed = TYPED_CONNECTORS.get(protocol)
    if typed is not None:
        raise ValueError(
            f"{protocol}:// roots are not allowed here: use the {typed!r} connector, which takes"
            " its credentials from typed fields (never from the UZO server)"
        )
    raise ValueError(
        f"protocol {protocol!r} is not allowed: the root must be a local absolute path or an"
        " http(s) URL (for object stores use the s3, gcs, azure_blob, sftp or ftp connector)"
    )


def _check_http_root(value: str) -> None:
    try:
        http_url(value, field="root")
    except ConfigError as exc:
        message = str(exc).removeprefix("root: ")
        raise ValueError(
            message.replace("the connector's credential fields", "the http connector's auth")
        ) from None


def root_kind(root: str) -> RootKind:
    """``local`` or ``http`` for a root that passed :func:`check_root`."""
    return "http" if _protocol(root) in ("http", "https") else "local"


def check_storage_options(root: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options with checked values; ConfigError naming the first key not allowed."""
    kind = root_kind(root)
    for key in options:
        if not isinstance(key, str):
            raise ConfigError("storage_options: keys must be strings")
    return check_options(
        options,
        STORAGE_OPTIONS[kind],
        field="storage_options",
        what=f"option for {'an http(s)' if kind == 'http' else 'a local'} root",
        refused=REFUSED,
    )
