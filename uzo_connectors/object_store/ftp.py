"""``ftp``: files on an FTP or FTPS server (fsspec's ftplib filesystem).

The host is checked against the SSRF policy and the connection goes to the
checked address; passive-mode data connections reuse that address (ftplib
ignores the address a server announces in PASV), so a server cannot steer
data connections elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from uzo_connectors.files.paths import FileStore
from uzo_connectors.object_store.common import ServerConnector, ServerOptions, pinned_address

if TYPE_CHECKING:
    from uzo_connectors.base import ConnectorConfig


class FTPConfig(ServerOptions):
    port: int = Field(default=21, ge=1, le=65535)
    username: str = Field(default="anonymous")
    tls: bool = Field(default=False, description="Explicit FTPS (AUTH TLS).")


class FTPConnector(ServerConnector[FTPConfig]):
    type_key: ClassVar[str] = "ftp"
    display_name: ClassVar[str] = "FTP"
    config_model: ClassVar[type[ConnectorConfig]] = FTPConfig
    description: ClassVar[str] = "Files on an FTP or FTPS server."
    scheme: ClassVar[str] = "ftp"

    @staticmethod
    def _session(store: FileStore) -> Any:
        return store.fs.ftp

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
