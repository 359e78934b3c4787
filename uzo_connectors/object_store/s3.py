"""``s3``: Amazon S3 and S3-compatible stores (MinIO, Ceph, R2...) through s3fs.

Two clients read the same bucket: s3fs (botocore) for listings and writes, and
pyarrow's native S3 filesystem (the AWS C++ SDK) for scans. Both get their
credentials from the config only: explicit keys, or ``anonymous: true``
(unsigned requests). With neither, both SDKs would walk their default chains
(environment variables, ``~/.aws`` files, container and instance metadata) and
sign with the UZO server's identity, so such a config is refused unless the
operator allows ambient credentials for ``s3``.

``bucket`` and ``region`` end up in host names (``<bucket>.s3.<region>.amazonaws.com``),
so they are checked against S3's naming rules; with an ``endpoint_url`` requests
use path-style addressing, so the host is exactly the checked one.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from uzo_connectors.files.paths import FileStore
from uzo_connectors.object_store.common import (
    BucketOptions,
    ObjectStoreConnector,
    check_endpoint_url,
    join_root,
    pinned_endpoint,
    require_credentials,
)
from uzo_connectors.options import plain_text
from uzo_connectors.registry import import_optional

if TYPE_CHECKING:
    from uzo_connectors.base import ConnectorConfig

_REGION = re.compile(r"^[a-z0-9-]{1,32}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
CONNECT_TIMEOUT = 30  # seconds, both clients
REQUEST_TIMEOUT = 120


def check_bucket(value: str) -> str:
    """S3's bucket naming rules (general purpose buckets)."""
    if not _BUCKET.match(value):
        raise ValueError(
            "bucket names have 3-63 characters: lowercase letters, digits, '.' and '-',"
            " starting and ending with a letter or digit"
        )
    if ".." in value or ".-" in value or "-." in value:
        raise ValueError("bucket names must not contain '..', '.-' or '-.'")
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        pass
    else:
        raise ValueError("a bucket name must not look like an IP address")
    if value.startswith(_BUCKET_PREFIXES) or value.endswith(_BUCKET_SUFFIXES):
        raise ValueError("the bucket name uses a prefix or suffix S3 reserves")
    return value


class S3Config(BucketOptions):
    endpoint_fields: ClassVar[frozenset[str]] = frozenset({"endpoint_url"})

    bucket: str = Field(min_length=3, max_length=63, description="Bucket name.")
    region: str | None = Field(default=None, description="AWS region, e.g. eu-west-1.")
    endpoint_url: str | None = Field(
        default=None, description="For S3-compatible stores, e.g. https://minio.example:9000."
    )
    access_key_id: str | None = Field(default=None, max_length=256)
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    anonymous: bool = Field(default=False, description="Unsigned requests (public buckets).")

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        return check_bucket(value)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not _REGION.match(value):
            raise ValueError("must be an AWS region name such as eu-west-1 (a-z, 0-9, '-')")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return check_endpoint_url(value)

    @field_validator("access_key_id")
    @classmethod
    def _key_id(cls, value: str | None) -> str | None:
        return None if value is None else str(plain_text(256, forbidden="")(value))

    @model_validator(mode="after")
    def _credentials(self) -> S3Config:
        has_id = bool(self.access_key_id)
        has_secret = self.secret_access_key is not None
        if has_id != has_secret:
            raise ValueError("give both access_key_id and secret_access_key, or neither")
        if self.session_token is not None and not has_id:
            raise ValueError("session_token needs access_key_id and secret_access_key")
        if self.anonymous and has_id:
            raise ValueError("anonymous: true takes no access_key_id / secret_access_key")
        return self

    @property
    def has_keys(self) -> bool:
        return bool(self.access_key_id) and self.secret_access_key is not None


class S3Connector(ObjectStoreConnector[S3Config]):
    type_key: ClassVar[str] = "s3"
    required_packages = ("s3fs",)
    display_name: ClassVar[str] = "Amazon S3"
    config_model: ClassVar[type[ConnectorConfig]] = S3Config
    description: ClassVar[str] = "Files in an S3 bucket (or any S3-compatible object store)."

    def describe(self) -> str:
        return f"s3://{join_root(self.config.bucket, self.config.prefix)}"

    def _endpoint(self) -> str | None:
        """The endpoint to connect to: checked, and pinned to its address for http."""
        if not self.config.endpoint_url:
            return None
        return pinned_endpoint(self.context.endpoint_policy, self.config.endpoint_url)

    def _check_credentials(self) -> None:
        c = self.config
        require_credentials(
            self,
            c.anonymous or c.has_keys,
            "give access_key_id and secret_access_key, or set anonymous: true",
        )

    def _filesystem_options(self, endpoint: str | None) -> dict[str, Any]:
        c = self.config
        options: dict[str, Any] = {"anon": c.anonymous, "skip_instance_cache": True}
        config_kwargs: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT,
            "read_timeout": REQUEST_TIMEOUT,
        }
        if endpoint:
            options["endpoint_url"] = endpoint
            # the bucket stays in the path: the host is the one that was checked
            config_kwargs["s3"] = {"addressing_style": "path"}
        options["config_kwargs"] = config_kwargs
        if c.region:
            options["client_kwargs"] = {"region_name": c.region}
        if c.has_keys:
            assert c.secret_access_key is not None
            options["key"] = c.access_key_id
            options["secret"] = c.secret_access_key.get_secret_value()
            if c.session_token is not None:
                options["token"] = c.session_token.get_secret_value()
        return options

    def _make_store(self) -> FileStore:
        self._check_credentials()  # before anything resolves or connects
        endpoint = self._endpoint()
        s3fs = import_optional("s3fs", self.type_key)
        fs = s3fs.S3FileSystem(**self._filesystem_options(endpoint))
        root = join_root(self.config.bucket, self.config.prefix)
        return FileStore(fs, root, label=self.describe(), arrow_fs=self._arrow_filesystem(endpoint))

    def _arrow_filesystem(self, endpoint: str | None) -> Any:
        """pyarrow's C++ S3 client for scans (faster than going through s3fs)."""
        import pyarrow.fs as pafs

        c = self.config
        options: dict[str, Any] = {
            "anonymous": c.anonymous,
            "connect_timeout": CONNECT_TIMEOUT,
            "request_timeout": REQUEST_TIMEOUT,
        }
        if c.region:
            options["region"] = c.region
        if endpoint:
            scheme, _, rest = endpoint.partition("://")
            options["scheme"] = scheme or "https"
            options["endpoint_override"] = rest.rstrip("/")
        if c.has_keys:
            assert c.secret_access_key is not None
            options["access_key"] = c.access_key_id
            options["secret_key"] = c.secret_access_key.get_secret_value()
            if c.session_token is not None:
                options["session_token"] = c.session_token.get_secret_value()
        return pafs.S3FileSystem(**options)
