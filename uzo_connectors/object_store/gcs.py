"""``gcs``: Google Cloud Storage through gcsfs.

gcsfs's experimental "extended" filesystem (on by default unless
``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false``) stalls on emulators; the connector
uses the core ``gcsfs.core.GCSFileSystem`` class, so no environment variable is needed.

Credentials come from the config only, as a google-auth credentials object the
connector builds itself: a service account key, an OAuth2 access token, or
``anonymous: true``. gcsfs's default chain (``GOOGLE_APPLICATION_CREDENTIALS``,
gcloud's files, the metadata server) is used only when the operator allows
ambient credentials for ``gcs``. A key file's JSON is itself a credential
*source*: only ``"type": "service_account"`` with its usual keys is accepted;
``external_account``, ``authorized_user``, ``impersonated_service_account`` and
the rest are refused (their ``credential_source`` reads local files, fetches
URLs or runs executables), and a ``token_uri`` other than Google's must be an
https URL that passes the SSRF policy (the signed assertion is posted there).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, ClassVar

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
from uzo_connectors.options import check_options, plain_text
from uzo_connectors.registry import import_optional

if TYPE_CHECKING:
    from uzo_connectors.base import ConnectorConfig

GOOGLE_TOKEN_URIS = frozenset(
    {"https://oauth2.googleapis.com/token", "https://accounts.google.com/o/oauth2/token"}
)
SCOPE = "https://www.googleapis.com/auth/devstorage.full_control"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_PROJECT = re.compile(r"^[a-z0-9][a-z0-9.:-]{0,99}$")

_text = plain_text(4096, forbidden="")
_TYPE_REFUSED = (
    "only service account keys are accepted: other credential types read local files,"
    " fetch URLs or run programs on the UZO server"
)


def _https_url(value: Any) -> str:
    text = str(_text(value))
    if not text.startswith("https://"):
        raise ValueError("must be an https:// URL")
    check_endpoint_url(text)
    return text


def _pem(value: Any) -> str:
    text = str(value)
    if (
        len(text) > 16384
        or "PRIVATE KEY-----" not in text
        or any(not (c.isprintable() or c in "\r\n") for c in text)
    ):
        raise ValueError("must be a PEM private key")
    return text


def _universe(value: Any) -> str:
    if value != "googleapis.com":
        raise ValueError("must be googleapis.com")
    return "googleapis.com"


# Keys of a service account key file; the URLs that only describe it are accepted but
# not passed on (google-auth never fetches them).
SERVICE_ACCOUNT_KEYS: dict[str, Any] = {
    "type": lambda v: v,
    "project_id": _text,
    "private_key_id": _text,
    "private_key": _pem,
    "client_email": plain_text(320, forbidden=";{}"),
    "client_id": _text,
    "token_uri": _https_url,
    "auth_uri": _text,
    "auth_provider_x509_cert_url": _text,
    "client_x509_cert_url": _text,
    "universe_domain": _universe,
}
_PASSED_ON = ("type", "project_id", "private_key_id", "private_key", "client_email", "client_id")
_REFUSED_KEYS = {
    "credential_source": "it reads a local file, fetches a URL or runs a program",
    "service_account_impersonation_url": "it sends the credentials to another URL",
    "source_credentials": "it nests another credential source",
    "refresh_token": _TYPE_REFUSED,
    "quota_project_id": "not needed for storage access",
}


def parse_service_account(text: str) -> dict[str, Any]:
    """The checked key file (ValueError naming the problem; never echoing a value)."""
    try:
        info = json.loads(text)
    except ValueError:
        raise ValueError("not valid JSON") from None
    if not isinstance(info, dict):
        raise ValueError("expected a JSON object")
    kind = info.get("type")
    if kind != "service_account":
        raise ValueError(f"type {kind!r} is not allowed: {_TYPE_REFUSED}")
    try:
        checked = check_options(
            info,
            SERVICE_ACCOUNT_KEYS,
            field="service_account_json",
            what="key",
            refused=_REFUSED_KEYS,
        )
    except ConfigError as exc:
        raise ValueError(str(exc).removeprefix("service_account_json: ")) from None
    for key in ("private_key", "client_email"):
        if not checked.get(key):
            raise ValueError(f"the key file has no {key!r}")
    return checked


class GCSConfig(BucketOptions):
    endpoint_fields: ClassVar[frozenset[str]] = frozenset({"endpoint_url"})

    bucket: str = Field(min_length=3, max_length=222)
    project: str | None = Field(default=None, max_length=100)
    service_account_json: SecretStr | None = Field(
        default=None, description="The service account key file's JSON content."
    )
    token: SecretStr | None = Field(default=None, description="An OAuth2 access token.")
    anonymous: bool = Field(default=False, description="Unauthenticated (public buckets).")
    endpoint_url: str | None = Field(default=None, description="e.g. an emulator's URL.")

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not _BUCKET.match(value) or ".." in value:
            raise ValueError(
                "bucket names use lowercase letters, digits, '-', '_' and '.', and start and"
                " end with a letter or digit"
            )
        if any(len(part) > 63 for part in value.split(".")):
            raise ValueError("each dot-separated part of a bucket name has at most 63 characters")
        return value

    @field_validator("project")
    @classmethod
    def _project(cls, value: str | None) -> str | None:
        if value is not None and not _PROJECT.match(value):
            raise ValueError("must be a Google Cloud project id")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return check_endpoint_url(value)

    @field_validator("service_account_json")
    @classmethod
    def _service_account(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_service_account(value.get_secret_value())
        return value

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            text = value.get_secret_value()
            if not text or len(text) > 4096 or any(c.isspace() for c in text):
                raise ValueError("must be an OAuth2 access token (no spaces, at most 4096)")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> GCSConfig:
        given = [
            name
            for name, set_ in (
                ("service_account_json", self.service_account_json is not None),
                ("token", self.token is not None),
                ("anonymous", self.anonymous),
            )
            if set_
        ]
        if len(given) > 1:
            raise ValueError(f"give only one of {', '.join(given)}")
        return self


class GCSConnector(ObjectStoreConnector[GCSConfig]):
    type_key: ClassVar[str] = "gcs"
    required_packages = ("gcsfs",)
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
            return self._service_account(c.service_account_json.get_secret_value())
        if c.token is not None:
            credentials = import_optional("google.oauth2.credentials", self.type_key)
            return credentials.Credentials(c.token.get_secret_value())
        require_credentials(
            self, False, "give service_account_json or token, or set anonymous: true"
        )
        return None  # allowed by the operator: gcsfs's default chain

    def _service_account(self, text: str) -> Any:
        try:
            info = parse_service_account(text)
        except ValueError as exc:
            raise ConfigError(f"service_account_json: {exc}") from None
        token_uri = info.get("token_uri") or "https://oauth2.googleapis.com/token"
        if token_uri not in GOOGLE_TOKEN_URIS:
            self.context.endpoint_policy.check_url(token_uri, schemes=("https",))
        key = {k: info[k] for k in _PASSED_ON if k in info}
        key["token_uri"] = token_uri
        service_account = import_optional("google.oauth2.service_account", self.type_key)
        try:
            return service_account.Credentials.from_service_account_info(key, scopes=[SCOPE])
        except Exception:  # ValueError, MalformedError...: never echo the key
            raise ConfigError("service_account_json: the private key cannot be read") from None

    def _make_store(self) -> FileStore:
        token = self._token()  # refuses a config without credentials before any connection
        endpoint = None
        if self.config.endpoint_url:
            endpoint = pinned_endpoint(self.context.endpoint_policy, self.config.endpoint_url)
        core = import_optional("gcsfs.core", self.type_key)
        options: dict[str, Any] = {"token": token, "skip_instance_cache": True}
        if self.config.project:
            options["project"] = self.config.project
        if endpoint:
            options["endpoint_url"] = endpoint
        fs = core.GCSFileSystem(**options)
        return FileStore(
            fs, join_root(self.config.bucket, self.config.prefix), label=self.describe()
        )
