"""``gcs``: Google Cloud Storage through gcsfs.

gcsfs's experimental "extended" filesystem (on by default unless
``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false``) stalls on emulators; the connector
uses the core ``gcsfs.core.GCSFileSystem`` class, so no environment variable is needed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, SecretStr

from uzo_connectors.errors import ConfigError
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


class GCSConfig(BucketOptions):
    bucket: str = Field(min_length=3, max_length=222)
    project: str | None = None
    service_account_json: SecretStr | None = Field(
        default=None, description="The service account key file's JSON content."
    )
    token: SecretStr | None = Field(default=None, description="An OAuth2 access token.")
    anonymous: bool = Field(default=False, description="Unauthenticated (public buckets).")
    endpoint_url: str | None = Field(default=None, description="e.g. an emulator's URL.")


class GCSConnector(ObjectStoreConnector[GCSConfig]):
    type_key: ClassVar[str] = "gcs"
    display_name: ClassVar[str] = "Google Cloud Storage"
    config_model: ClassVar[type[ConnectorConfig]] = GCSConfig
    description: ClassVar[str] = "Files in a Google Cloud Storage bucket."

    def describe(self) -> str:
        return f"gs://{join_root(self.config.bucket, self.config.prefix)}"

    def _token(self) -> Any:
        c = self.config
        if c.anonymous:
            return "anon"
        if c.service_account_json is not None:
            try:
                info = json.loads(c.service_account_json.get_secret_value())
            except ValueError:
                raise ConfigError("service_account_json: not valid JSON") from None
            if not isinstance(info, dict):
                raise ConfigError("service_account_json: expected a JSON object")
            return info
        if c.token is not None:
            credentials = import_optional("google.oauth2.credentials", self.type_key)
            return credentials.Credentials(c.token.get_secret_value())
        return None  # gcsfs's default chain (environment, metadata server, gcloud)

    def _make_store(self) -> FileStore:
        if self.config.endpoint_url:
            check_endpoint(self.context.endpoint_policy, self.config.endpoint_url)
        core = import_optional("gcsfs.core", self.type_key)
        options: dict[str, Any] = {"token": self._token()}
        if self.config.project:
            options["project"] = self.config.project
        if self.config.endpoint_url:
            options["endpoint_url"] = self.config.endpoint_url
        fs = core.GCSFileSystem(**options)
        return FileStore(
            fs, join_root(self.config.bucket, self.config.prefix), label=self.describe()
        )
