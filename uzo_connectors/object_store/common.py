"""What the object-store connectors share on top of the files connector."""

from __future__ import annotations

import contextlib
import posixpath
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, SecretStr, field_validator

from uzo_connectors.base import Category, ConfigT
from uzo_connectors.errors import ConnectionTestError
from uzo_connectors.files.connector import FilesystemConnector, FormatOptions

if TYPE_CHECKING:
    import ipaddress

    from uzo_connectors.files.paths import FileStore
    from uzo_connectors.ssrf import EndpointPolicy


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


class BucketOptions(FormatOptions):
    prefix: str = Field(default="", description="Key prefix that datasets live under.")

    @field_validator("prefix")
    @classmethod
    def _clean_prefix(cls, value: str) -> str:
        value = value.strip().strip("/")
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

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)  # each protocol sets its default
    username: str
    password: SecretStr | None = None
    root: str = Field(default="/", description="Remote directory datasets live under.")
    timeout: float = Field(default=15.0, gt=0)

    @field_validator("root")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return posixpath.normpath("/" + value.strip().lstrip("/"))


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
