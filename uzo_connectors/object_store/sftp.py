"""``sftp``: files on an SSH server (fsspec's paramiko-based SFTP filesystem).

The host is checked against the SSRF policy and the connection goes to the
checked address (no second DNS lookup). The server's host key is not verified
yet (paramiko's AutoAddPolicy, as in fsspec); pinning a host key is future work.
Reads fetch one whole file per task (paramiko's client is not thread-safe).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, SecretStr, model_validator

from uzo_connectors.errors import ConfigError
from uzo_connectors.files.paths import FileStore
from uzo_connectors.object_store.common import ServerConnector, ServerOptions, pinned_address
from uzo_connectors.registry import import_optional

if TYPE_CHECKING:
    from uzo_connectors.base import ConnectorConfig


class SFTPConfig(ServerOptions):
    port: int = Field(default=22, ge=1, le=65535)
    username: str = Field(min_length=1)
    private_key: SecretStr | None = Field(default=None, description="PEM/OpenSSH private key.")
    private_key_passphrase: SecretStr | None = None

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


class SFTPConnector(ServerConnector[SFTPConfig]):
    type_key: ClassVar[str] = "sftp"
    required_packages = ("sshfs", "paramiko")
    display_name: ClassVar[str] = "SFTP"
    config_model: ClassVar[type[ConnectorConfig]] = SFTPConfig
    description: ClassVar[str] = "Files on an SSH/SFTP server."
    scheme: ClassVar[str] = "sftp"

    @staticmethod
    def _session(store: FileStore) -> Any:
        return store.fs.client

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
