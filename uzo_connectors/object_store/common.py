"""What the object-store connectors share on top of the files connector.

Endpoints: a config's ``endpoint_url`` is checked when the config is validated
(http/https, a host, no credentials, query or fragment), then against the SSRF
policy when the client is built. SDK clients resolve names themselves, so for a
plain ``http://`` endpoint (MinIO, Azurite, emulators) the checked address is
substituted into the URL (:func:`pinned_endpoint`) and the SDK connects to it
with no second DNS lookup; an ``https://`` endpoint keeps its name, since TLS
certificate verification ties the connection to that name.

Credentials: unless the operator allows the type (``ambient_allowed``), a config
must carry its own credentials or say it is anonymous
(:func:`require_credentials`): the SDKs' default chains would otherwise use the
UZO server's identity (environment variables, credential files, instance
metadata, managed identity).
"""

from __future__ import annotations

import contextlib
import posixpath
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator

from uzo_connectors.base import Category, ConfigT
from uzo_connectors.errors import ConfigError, ConnectionTestError
from uzo_connectors.files.connector import FilesystemConnector, FormatOptions
from uzo_connectors.options import host_name, http_url, plain_text

if TYPE_CHECKING:
    import ipaddress

    from uzo_connectors.base import BaseConnector
    from uzo_connectors.files.paths import FileStore
    from uzo_connectors.ssrf import EndpointPolicy

_text = plain_text(1024, forbidden="")


def check_endpoint_url(value: str | None) -> str | None:
    """A config's endpoint URL (:func:`uzo_connectors.options.http_url`), as a ValueError
    for pydantic; returned without a trailing '/'."""
    if value is None:
        return None
    try:
        return http_url(value.strip(), field="endpoint_url").rstrip("/")
    except ConfigError as exc:
        raise ValueError(str(exc).removeprefix("endpoint_url: ")) from None


def check_endpoint(policy: EndpointPolicy, endpoint: str) -> None:
    """An endpoint URL (http/https) or bare host must pass the SSRF policy."""
    if "://" in endpoint:
        policy.check_url(endpoint)
    else:
        policy.check_host(endpoint)


def pinned_address(policy: EndpointPolicy, host: str) -> str:
    """Check ``host`` and return the address to connect to (no second DNS lookup later)."""
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = policy.check_host(host)
    if not addresses:
        return host
    return str(addresses[0])


def pinned_endpoint(policy: EndpointPolicy, url: str) -> str:
    """``url`` after the SSRF check: for http, with the checked address in place of the
    name (IPv6 in brackets); https URLs keep their name (TLS verifies it)."""
    policy.check_url(url)
    parts = urlsplit(url)
    if parts.scheme.lower() != "http" or parts.hostname is None:
        return url
    address = pinned_address(policy, parts.hostname)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def require_credentials(connector: BaseConnector[Any], has_credentials: bool, hint: str) -> None:
    """Refuse a config with no credentials (and not anonymous) unless the operator lets this
    connector type use the server's own identity."""
    if has_credentials or connector.ambient_allowed:
        return
    raise ConfigError(
        f"{connector.type_key}: no credentials given: {hint}. The UZO server's own"
        " credentials (environment, credential files, instance metadata, managed identity)"
        " are not used for tenant connectors."
    )


class BucketOptions(FormatOptions):
    prefix: str = Field(
        default="", max_length=1024, description="Key prefix that datasets live under."
    )

    @field_validator("prefix")
    @classmethod
    def _clean_prefix(cls, value: str) -> str:
        value = str(_text(value)).strip().strip("/")
        if value and ".." in value.split("/"):
            raise ValueError("prefix must not contain '..'")
        return value


def join_root(container: str, prefix: str) -> str:
    return posixpath.join(container, prefix) if prefix else container


class ObjectStoreConnector(FilesystemConnector[ConfigT]):
    """Connection test: the bucket (container, remote root) must be listable.

    An empty prefix is fine: object stores have no directories, writes create it.
    """

    category: ClassVar[Category] = Category.CLOUD_STORAGE

    def _container(self) -> str:
        return self.store().root.split("/", 1)[0]

    def _probe(self, store: FileStore) -> None:
        store.refresh()
        container = self._container()
        try:
            store.fs.ls(container, detail=False)
        except FileNotFoundError:
            raise ConnectionTestError(f"{self.describe()}: {container!r} does not exist") from None


class ServerOptions(FormatOptions):
    """Files on a login server (FTP, SFTP): where, as whom, and under which directory."""

    endpoint_fields: ClassVar[frozenset[str]] = frozenset({"host", "port"})

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)  # each protocol sets its default
    username: str = Field(max_length=256)
    password: SecretStr | None = None
    root: str = Field(
        default="/", max_length=4096, description="Remote directory datasets live under."
    )
    timeout: float = Field(default=15.0, gt=0, le=300, description="Seconds, at most 300.")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return host_name(value)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        # no control characters: a CR/LF would start a new FTP command
        return str(plain_text(256, forbidden="")(value))

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and any(c in value.get_secret_value() for c in "\r\n\x00"):
            raise ValueError("must not contain line breaks or NUL characters")
        return value

    @field_validator("root")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return posixpath.normpath("/" + str(_text(value)).strip().lstrip("/"))


class ServerConnector(ObjectStoreConnector[ConfigT]):
    """A connector to one login server: the container is the remote root; closing the
    connector closes the session of the cached filesystem (``_session``)."""

    scheme: ClassVar[str]

    def describe(self) -> str:
        c: Any = self.config
        return f"{self.scheme}://{c.username}@{c.host}:{c.port}{c.root}"

    def _container(self) -> str:
        root: str = self.config.root  # type: ignore[attr-defined]
        return root

    @staticmethod
    def _session(store: FileStore) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        store = self._store_cache
        if store is not None:
            with contextlib.suppress(Exception):
                self._session(store).close()
        super().close()
