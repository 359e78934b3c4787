"""``s3``: Amazon S3 and S3-compatible stores (MinIO, Ceph, R2...) through s3fs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, SecretStr

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


class S3Config(BucketOptions):
    bucket: str = Field(min_length=3, max_length=63, description="Bucket name.")
    region: str | None = Field(default=None, description="AWS region, e.g. eu-west-1.")
    endpoint_url: str | None = Field(
        default=None, description="For S3-compatible stores, e.g. https://minio.example:9000."
    )
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    anonymous: bool = Field(default=False, description="Unsigned requests (public buckets).")


class S3Connector(ObjectStoreConnector[S3Config]):
    type_key: ClassVar[str] = "s3"
    display_name: ClassVar[str] = "Amazon S3"
    config_model: ClassVar[type[ConnectorConfig]] = S3Config
    description: ClassVar[str] = "Files in an S3 bucket (or any S3-compatible object store)."

    def describe(self) -> str:
        return f"s3://{join_root(self.config.bucket, self.config.prefix)}"

    def filesystem_options(self) -> dict[str, Any]:
        c = self.config
        options: dict[str, Any] = {"anon": c.anonymous}
        if c.endpoint_url:
            options["endpoint_url"] = c.endpoint_url
        if c.region:
            options["client_kwargs"] = {"region_name": c.region}
        if c.access_key_id:
            options["key"] = c.access_key_id
        if c.secret_access_key is not None:
            options["secret"] = c.secret_access_key.get_secret_value()
        if c.session_token is not None:
            options["token"] = c.session_token.get_secret_value()
        return options

    def _make_store(self) -> FileStore:
        if self.config.endpoint_url:
            check_endpoint(self.context.endpoint_policy, self.config.endpoint_url)
        s3fs = import_optional("s3fs", self.type_key)
        fs = s3fs.S3FileSystem(**self.filesystem_options())
        root = join_root(self.config.bucket, self.config.prefix)
        return FileStore(fs, root, label=self.describe(), arrow_fs=self.arrow_filesystem())

    def arrow_filesystem(self) -> Any:
        """pyarrow's C++ S3 client for scans (faster than going through s3fs)."""
        import pyarrow.fs as pafs

        c = self.config
        options: dict[str, Any] = {"anonymous": c.anonymous}
        if c.region:
            options["region"] = c.region
        if c.endpoint_url:
            scheme, _, rest = c.endpoint_url.partition("://")
            options["scheme"] = scheme or "https"
            options["endpoint_override"] = rest.rstrip("/")
        if c.access_key_id and c.secret_access_key is not None:
            options["access_key"] = c.access_key_id
            options["secret_key"] = c.secret_access_key.get_secret_value()
            if c.session_token is not None:
                options["session_token"] = c.session_token.get_secret_value()
        return pafs.S3FileSystem(**options)
