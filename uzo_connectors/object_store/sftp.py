"""``sftp``: files on an SSH server (fsspec's paramiko-based SFTP filesystem).

The host is checked against the SSRF policy and the connection goes to the
checked address (no second DNS lookup). The server's host key is not verified
yet (paramiko's AutoAddPolicy, as in fsspec); pinning a host key is future work.
Reads fetch one whole file per task (paramiko's client is not thread-safe).
"""

from __future__ import annotations

import contextlib
import io
import posixpath
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from uzo_connectors.errors import ConfigError
from uzo_connectors.files.connector import FormatOptions
from uzo_connectors.files.paths import FileStore
from uzo_connectors.object_store.common import ObjectStoreConnector, pinned_address
from uzo_connectors.registry import import_optional

if TYPE_CHECKING:
    from uzo_connectors.base import ConnectorConfig


class SFTPConfig(FormatOptions):
    host: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    private_key: SecretStr | None = Field(default=None, description="PEM/OpenSSH private key.")
    private_key_passphrase: SecretStr | None = None
    root: str = Field(default="/", description="Remote directory datasets live under.")
    timeout: float = Field(default=15.0, gt=0)

    @field_validator("root")
    @classmethod
    def _absolute(cls, value: str) -> str:
        value = posixpath.normpath("/" + value.strip().lstrip("/"))
        return value

    @model_validator(mode="after")
    def _need_secret(self) -> SFTPConfig:
        if self.password is None and self.private_key is None:
            raise ValueError("set password or private_key")
        return self


def _load_key(paramiko: Any, text: str, passphrase: str | None) -> Any:
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text), password=passphrase)
        except (paramiko.SSHException, ValueError):
            continue
    raise ConfigError("private_key: not a readable Ed25519, ECDSA or RSA private key")


class SFTPConnector(ObjectStoreConnector[SFTPConfig]):
    type_key: ClassVar[str] = "sftp"
    display_name: ClassVar[str] = "SFTP"
    config_model: ClassVar[type[ConnectorConfig]] = SFTPConfig
    description: ClassVar[str] = "Files on an SSH/SFTP server."

    def describe(self) -> str:
        c = self.config
        return f"sftp://{c.username}@{c.host}:{c.port}{c.root}"

    def _container(self) -> str:
        return self.config.root

    def close(self) -> None:
        store = self._store_cache
        if store is not None:
            with contextlib.suppress(Exception):
                store.fs.client.close()
        super().close()

    def _make_store(self) -> FileStore:
        c = self.config
        address = pinned_address(self.context.endpoint_policy, c.host)
        paramiko = import_optional("paramiko", self.type_key)
        from fsspec.implementations.sftp import SFTPFileSystem

        options: dict[str, Any] = {
            "port": c.port,
            "username": c.username,
            "timeout": c.timeout,
            "banner_timeout": c.timeout,
            "auth_timeout": c.timeout,
            "allow_agent": False,
            "look_for_keys": False,
            "skip_instance_cache": True,
        }
        if c.password is not None:
            options["password"] = c.password.get_secret_value()
        if c.private_key is not None:
            passphrase = c.private_key_passphrase
            options["pkey"] = _load_key(
                paramiko,
                c.private_key.get_secret_value(),
                passphrase.get_secret_value() if passphrase is not None else None,
            )
        fs = SFTPFileSystem(address, **options)
        return FileStore(fs, c.root, label=self.describe(), renames=True, serial=True)
