"""``azure_blob``: Azure Blob Storage (and the Azurite emulator) through adlfs.

The connector builds what adlfs gets from typed parts: an account, one
credential (account key or SAS token) or ``anonymous: true``, and one blob
endpoint (``endpoint_url``, a connection string's ``BlobEndpoint``, or
``https://<account>.blob.<suffix>``), which passes the SSRF policy and, for
http, is pinned to its checked address. adlfs always receives a connection
string written by the connector, so it never falls back on
``DefaultAzureCredential`` (managed identity, environment, Azure CLI) or on
``AZURE_STORAGE_*`` environment variables; that fallback is available only
when the operator allows ambient credentials for ``azure_blob``.

A tenant's ``connection_string`` is parsed and its keys checked against an
allow-list: ``UseDevelopmentStorage``, ``DevelopmentStorageProxyUri``,
``BlobSecondaryEndpoint`` and every other endpoint key are refused (each would
name a second endpoint or a proxy the SSRF check never sees).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from uzo_connectors.errors import ConfigError
from uzo_connectors.files.paths import FileStore
from uzo_connectors.object_store.common import (
    BucketOptions,
    ObjectStoreConnector,
    check_endpoint_url,
    join_root,
    pinned_endpoint,
    require_credentials,
)
from uzo_connectors.options import HOST_CHOICE, PROXY, check_options, host_name, one_of
from uzo_connectors.registry import import_optional

if TYPE_CHECKING:
    from uzo_connectors.base import ConnectorConfig

_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^(?:[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]|\$root|\$web|\$logs)$")
_SAS = re.compile(r"^[A-Za-z0-9%&=+/._:\-]{1,4096}$")
DEFAULT_SUFFIX = "core.windows.net"
CONNECT_TIMEOUT = 30
READ_TIMEOUT = 120


def check_account(value: Any) -> str:
    text = str(value)
    if not _ACCOUNT.match(text):
        raise ValueError("must be a storage account name: 3-24 lowercase letters and digits")
    return text


def check_key(value: Any) -> str:
    text = str(value).strip()
    try:
        if len(text) > 512 or not base64.b64decode(text, validate=True):
            raise ValueError
    except (binascii.Error, ValueError):
        raise ValueError("must be a base64 account key") from None
    return text


def check_sas(value: Any) -> str:
    text = str(value).strip().lstrip("?")
    if not _SAS.match(text):
        raise ValueError("must be a SAS token (the query string, e.g. sv=...&sig=...)")
    return text


def _blob_endpoint(value: Any) -> str:
    checked = check_endpoint_url(str(value))
    assert checked is not None
    return checked


_SECOND_ENDPOINT = "it names a second endpoint the SSRF check never sees"
CONNECTION_STRING_KEYS: dict[str, Any] = {
    "AccountName": check_account,
    "AccountKey": check_key,
    "SharedAccessSignature": check_sas,
    "DefaultEndpointsProtocol": one_of("http", "https"),
    "BlobEndpoint": _blob_endpoint,
    "EndpointSuffix": host_name,
}
CONNECTION_STRING_REFUSED = {
    "UseDevelopmentStorage": f"{HOST_CHOICE} (the local emulator's address)",
    "DevelopmentStorageProxyUri": PROXY,
    "BlobSecondaryEndpoint": _SECOND_ENDPOINT,
    "QueueEndpoint": _SECOND_ENDPOINT,
    "QueueSecondaryEndpoint": _SECOND_ENDPOINT,
    "TableEndpoint": _SECOND_ENDPOINT,
    "TableSecondaryEndpoint": _SECOND_ENDPOINT,
    "FileEndpoint": _SECOND_ENDPOINT,
    "FileSecondaryEndpoint": _SECOND_ENDPOINT,
    "DfsEndpoint": _SECOND_ENDPOINT,
    "DfsSecondaryEndpoint": _SECOND_ENDPOINT,
}


def parse_connection_string(value: str) -> dict[str, str]:
    """The connection string's keys (spelled as in the allow-list), checked; ValueError."""
    raw: dict[str, str] = {}
    for item in value.split(";"):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError("must be Key=Value pairs separated by ';'")
        if key.lower() in (k.lower() for k in raw):
            raise ValueError(f"key {key!r} is given twice")
        raw[key] = val.strip()
    try:
        return check_options(
            raw,
            CONNECTION_STRING_KEYS,
            field="connection_string",
            what="key",
            refused=CONNECTION_STRING_REFUSED,
            case_sensitive=False,
        )
    except ConfigError as exc:
        raise ValueError(str(exc).removeprefix("connection_string: ")) from None


@dataclass(frozen=True)
class AzureParts:
    """What the connector connects with, from the typed fields or the connection string."""

    account: str | None
    key: str | None
    sas: str | None
    endpoint: str  # the blob endpoint URL (not yet checked against the policy)


class AzureBlobConfig(BucketOptions):
    endpoint_fields: ClassVar[frozenset[str]] = frozenset(
        {"account_name", "endpoint_url", "connection_string"}
    )

    container: str = Field(min_length=3, max_length=63)
    account_name: str | None = None
    account_key: SecretStr | None = None
    connection_string: SecretStr | None = Field(
        default=None,
        description="AccountName, AccountKey, SharedAccessSignature, DefaultEndpointsProtocol,"
        " BlobEndpoint and EndpointSuffix only.",
    )
    sas_token: SecretStr | None = None
    anonymous: bool = Field(default=False, description="Unauthenticated (public containers).")
    endpoint_url: str | None = Field(
        default=None,
        description="Blob endpoint, e.g. http://127.0.0.1:10000/devstoreaccount1 for Azurite;"
        " default https://<account>.blob.core.windows.net.",
    )

    @field_validator("container")
    @classmethod
    def _container(cls, value: str) -> str:
        if not _CONTAINER.match(value):
            raise ValueError(
                "container names have 3-63 lowercase letters, digits and single hyphens,"
                " starting and ending with a letter or digit"
            )
        return value

    @field_validator("account_name")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        return None if value is None else check_account(value)

    @field_validator("account_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else SecretStr(check_key(value.get_secret_value()))

    @field_validator("sas_token")
    @classmethod
    def _sas(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else SecretStr(check_sas(value.get_secret_value()))

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return check_endpoint_url(value)

    @field_validator("connection_string")
    @classmethod
    def _connection_string(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_connection_string(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AzureBlobConfig:
        if self.connection_string is not None:
            typed = [
                name
                for name in ("account_key", "sas_token", "endpoint_url")
                if getattr(self, name) is not None
            ]
            if typed:
                raise ValueError(f"give connection_string or {', '.join(typed)}, not both")
        parts = self.parts()  # raises ValueError when incomplete
        if self.anonymous and (parts.key or parts.sas):
            raise ValueError("anonymous: true takes no account key or SAS token")
        return self

    def parts(self) -> AzureParts:
        """The account, credential and endpoint this config means (ValueError if unclear)."""
        cs = (
            parse_connection_string(self.connection_string.get_secret_value())
            if self.connection_string is not None
            else {}
        )
        account = self.account_name
        if cs.get("AccountName"):
            if account and account != cs["AccountName"]:
                raise ValueError("account_name differs from the connection string's AccountName")
            account = cs["AccountName"]
        key = cs.get("AccountKey") or (
            self.account_key.get_secret_value() if self.account_key is not None else None
        )
        sas = cs.get("SharedAccessSignature") or (
            self.sas_token.get_secret_value() if self.sas_token is not None else None
        )
        if key and sas:
            raise ValueError("give an account key or a SAS token, not both")
        if key and not account:
            raise ValueError("an account key needs the account name")
        endpoint = self.endpoint_url or cs.get("BlobEndpoint")
        if endpoint is None:
            if not account:
                raise ValueError(
                    "set account_name (with account_key or sas_token), or connection_string"
                )
            protocol = cs.get("DefaultEndpointsProtocol", "https")
            suffix = cs.get("EndpointSuffix", DEFAULT_SUFFIX)
            endpoint = f"{protocol}://{account}.blob.{suffix}"
            check_endpoint_url(endpoint)
        return AzureParts(account=account, key=key, sas=sas, endpoint=endpoint)


class AzureBlobConnector(ObjectStoreConnector[AzureBlobConfig]):
    type_key: ClassVar[str] = "azure_blob"
    required_packages = ("adlfs",)
    display_name: ClassVar[str] = "Azure Blob Storage"
    config_model: ClassVar[type[ConnectorConfig]] = AzureBlobConfig
    description: ClassVar[str] = "Files in an Azure Blob Storage container."

    def describe(self) -> str:
        account = self.config.parts().account or "account"
        return f"az://{account}/{join_root(self.config.container, self.config.prefix)}"

    def _make_store(self) -> FileStore:
        c = self.config
        parts = c.parts()
        has_credentials = bool(parts.key or parts.sas) or c.anonymous
        require_credentials(  # before anything resolves or connects
            self, has_credentials, "give account_key or sas_token, or set anonymous: true"
        )
        endpoint = pinned_endpoint(self.context.endpoint_policy, parts.endpoint)
        adlfs = import_optional("adlfs", self.type_key)
        options: dict[str, Any] = {
            "skip_instance_cache": True,
            "connection_timeout": CONNECT_TIMEOUT,
            "read_timeout": READ_TIMEOUT,
        }
        if has_credentials:
            options["connection_string"] = self._connection_string(parts, endpoint)
            options["anon"] = c.anonymous
        else:  # the operator allows this type the server's identity (DefaultAzureCredential)
            options["account_name"] = parts.account
            options["account_host"] = urlsplit(endpoint).netloc
        fs = adlfs.AzureBlobFileSystem(**options)
        root = join_root(c.container, c.prefix)
        return FileStore(fs, root, label=self.describe())

    @staticmethod
    def _connection_string(parts: AzureParts, endpoint: str) -> str:
        """What adlfs gets: built from checked parts only (no key a tenant wrote reaches it)."""
        scheme = urlsplit(endpoint).scheme.lower()
        items = [f"DefaultEndpointsProtocol={scheme}"]
        if parts.account:
            items.append(f"AccountName={parts.account}")
        if parts.key:
            items.append(f"AccountKey={parts.key}")
        if parts.sas:
            items.append(f"SharedAccessSignature={parts.sas}")
        items.append(f"BlobEndpoint={endpoint}")
        return ";".join(items) + ";"
