"""``ftp``: files on an FTP or FTPS server (fsspec's ftplib filesystem).

The host is checked against the SSRF policy and the connection goes to the
checked address; passive-mode data connections reuse that address (ftplib
ignores the address a server announces in PASV), so a server cannot steer
data connections elsewhere.
"""

from __future__ import annotations

import contextlib
import posixpath
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, SecretStr, field_validator

from uzo_connectors.files.connector import FormatOptions
from uzo_connectors.files.paths import FileStore
from uzo_connectors.object_store.common import ObjectStoreConnector, pinned_address

if TYPE_CHECKING:
    from uzo_connectors.base import ConnectorConfig


class FTPConfig(FormatOptions):
    host: str = Field(min_length=1)
    port: int = Field(default=21, ge=1, le=65535)
    username: str = Field(default="anonymous")
    password: SecretStr | None = None
    tls: bool = Field(default=False, description="Explicit FTPS (AUTH TLS).")
    root: str = Field(default="/", description="Remote directory datasets live under.")
    timeout: float = Field(default=15.0, gt=0)

    @field_validator("root")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return posixpath.normpath("/" + value.strip().lstrip("/"))


class FTPConnector(ObjectStoreConnector[FTPConfig]):
    type_key: ClassVar[str] = "ftp"
    display_name: ClassVar[str] = "FTP"
    config_model: ClassVar[type[ConnectorConfig]] = FTPConfig
    description: ClassVar[str] = "Files on an FTP or FTPS server."

    def describe(self) -> str:
        c = self.config
        return f"ftp://{c.username}@{c.host}:{c.port}{c.root}"

    def _container(self) -> str:
        return self.config.root

    def close(self) -> None:
        store = self._store_cache
        if store is not None:
            with contextlib.suppress(Exception):
                store.fs.ftp.close()
        super().close()

    def _make_store(self) -> FileStore:
        c = self.config
        address = pinned_address(self.context.endpoint_policy, c.host)
        from fsspec.implementations.ftp import FTPFileSystem

        options: dict[str, Any] = {
            "port": c.port,
            "username": c.username,
            "password": c.password.get_secret_value() if c.password is not None else "",
            "tls": c.tls,
            "timeout": c.timeout,
            "skip_instance_cache": True,
        }
        fs = FTPFileSystem(address, **options)
        return FileStore(fs, c.root, label=self.describe(), renames=True, serial=True)
