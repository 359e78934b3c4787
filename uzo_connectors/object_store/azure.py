"""``azure_blob``: Azure Blob Storage (and the Azurite emulator) through adlfs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, SecretStr, model_validator

from uzo_connectors.files.paths import FileStore
from uzo_connectors.object_store.common import (
    BucketOptions,
    ObjectStoreConnector,
    check_endpoint,
    join_root,
)
from uzo_connectors.registry import import_optional

if TYPE_CHECKING:
    from uzo_connectors.base import ConnectorConfig


class AzureBlobConfig(BucketOptions):
    container: str = Field(min_length=3, max_length=63)
    account_name: str | None = None
    account_key: SecretStr | None = None
    connection_string: SecretStr | None = None
    sas_token: SecretStr | None = None
    endpoint_url: str | None = Field(
        default=None,
        description="Blob endpoint, e.g. http://127.0.0.1:10000/devstoreaccount1 for Azurite;"
        " default https://<account>.blob.core.windows.net.",
    )

    @model_validator(mode="after")
    def _need_account(self) -> AzureBlobConfig:
        if self.connection_string is None and not self.account_name:
            raise ValueError(
                "set account_name (with account_key or sas_token) or connection_string"
            )
        return self


def _connection_string_parts(value: str) -> dict[str, str]:
    parts = {}
    for item in value.split(";"):
        key, sep, val = item.partition("=")
        if sep:
            parts[key.strip().lower()] = val.strip()
    return parts


class AzureBlobConnector(ObjectStoreConnector[AzureBlobConfig]):
    type_key: ClassVar[str] = "azure_blob"
    display_name: ClassVar[str] = "Azure Blob Storage"
    config_model: ClassVar[type[ConnectorConfig]] = AzureBlobConfig
    description: ClassVar[str] = "Files in an Azure Blob Storage container."

    def describe(self) -> str:
        account = self.config.account_name or "account"
        return f"az://{account}/{join_root(self.config.container, self.config.prefix)}"

    def _endpoints(self) -> list[str]:
        c = self.config
        endpoints = [c.endpoint_url] if c.endpoint_url else []
        if c.connection_string is not None:
            parts = _connection_string_parts(c.connection_string.get_secret_value())
            endpoints += [parts[k] for k in ("blobendpoint",) if parts.get(k)]
        return endpoints

    def filesystem_options(self) -> dict[str, Any]:
        c = self.config
        options: dict[str, Any] = {}
        if c.endpoint_url and c.account_name and c.account_key is not None:
            scheme = c.endpoint_url.split("://", 1)[0]
            options["connection_string"] = (
                f"DefaultEndpointsProtocol={scheme};AccountName={c.account_name};"
                f"AccountKey={c.account_key.get_secret_value()};BlobEndpoint={c.endpoint_url};"
            )
            return options
        if c.connection_string is not None:
            options["connection_string"] = c.connection_string.get_secret_value()
        if c.account_name:
            options["account_name"] = c.account_name
        if c.account_key is not None:
            options["account_key"] = c.account_key.get_secret_value()
        if c.sas_token is not None:
            options["sas_token"] = c.sas_token.get_secret_value()
        if c.endpoint_url:
            options["account_host"] = c.endpoint_url.split("://", 1)[-1].split("/", 1)[0]
        return options

    def _make_store(self) -> FileStore:
        for endpoint in self._endpoints():
            check_endpoint(self.context.endpoint_policy, endpoint)
        adlfs = import_optional("adlfs", self.type_key)
        fs = adlfs.AzureBlobFileSystem(**self.filesystem_options())
        root = join_root(self.config.container, self.config.prefix)
        return FileStore(fs, root, label=self.describe())
