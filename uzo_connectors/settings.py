"""Connector settings (env prefix ``UZO_CONNECTORS_``), built on demand, never at import.

``UZO_SECRET_KEYS`` (no prefix) is read here too: the comma-separated Fernet
keys of :mod:`uzo_connectors.credentials`.

:class:`UzoSettings` is the base of every UZO settings model (this package is
the one the API and the engine both import): values come from the arguments,
then environment variables, then a dotenv file (``.env`` in the current
directory, or the file ``UZO_ENV_FILE`` names), read when a settings object is
built, never at import time.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, DotEnvSettingsSource, NoDecode, SettingsConfigDict

from uzo_connectors.base import ConnectorContext
from uzo_connectors.ssrf import EndpointPolicy

if TYPE_CHECKING:
    from pydantic_settings import PydanticBaseSettingsSource

ENV_FILE_VARIABLE = "UZO_ENV_FILE"


def env_file() -> Path:
    """The dotenv file settings read: ``UZO_ENV_FILE`` if set (it must exist), else
    ``.env`` in the current directory (read only if it exists)."""
    named = os.environ.get(ENV_FILE_VARIABLE, "").strip()
    if not named:
        return Path(".env")
    path = Path(named).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{ENV_FILE_VARIABLE}={named!r}: no such file")
    return path


class UzoSettings(BaseSettings):
    """Base of UZO's settings models: arguments, then environment variables, then the
    dotenv file of :func:`env_file` (so a variable set in the environment wins over the
    same line in the file), then the models' defaults."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        dotenv = DotEnvSettingsSource(settings_cls, env_file=env_file())
        return (init_settings, env_settings, dotenv, file_secret_settings)


class ConnectorSettings(UzoSettings):
    """Where tenant connectors may connect, local file roots, credential keys."""

    model_config = SettingsConfigDict(
        env_prefix="UZO_CONNECTORS_", extra="ignore", populate_by_name=True, frozen=True
    )

    allow_loopback: bool = Field(
        default=False,
        description="Let connectors reach loopback addresses (127.0.0.0/8, ::1).",
    )
    allow_private: bool = Field(
        default=False,
        description="Let connectors reach private and shared (CGNAT) addresses: 10/8, "
        "172.16/12, 192.168/16, 100.64/10, fc00::/7.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts or CIDRs connectors may always reach, comma-separated or a JSON "
        "list, e.g. `db.internal,10.1.0.0/16`.",
    )
    files_root: Path | None = Field(
        default=None,
        description="Parent of each subscription's own files directory (`file`, `sqlite`, "
        "`duckdb` connectors): `<root>/<subscription id>/`, created 0700 on first use. "
        "Unset: UZO_HOME/files.",
    )
    shared_roots: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Operator directories a subscription may also use, a JSON object `{"<'
        'subscription id>": ["/srv/shared/sales", ...]}`. None by default.',
    )
    ambient_credentials: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Connector types that may use the server's own identity when a config "
        "gives no credentials (instance metadata, environment, credential files, managed "
        "identity), e.g. `s3,gcs` or `*`. Empty: tenant connectors never do.",
    )
    secret_keys: SecretStr | None = Field(
        default=None,
        validation_alias="UZO_SECRET_KEYS",
        description="Comma-separated Fernet keys of connector credentials, newest first.",
    )

    @field_validator("shared_roots")
    @classmethod
    def _absolute_roots(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        import uuid

        out: dict[str, list[str]] = {}
        for subscription, roots in value.items():
            try:
                key = str(uuid.UUID(subscription))
            except ValueError:
                raise ValueError(f"{subscription!r} is not a subscription id") from None
            for root in roots:
                if not Path(root).is_absolute():
                    raise ValueError(f"shared root {root!r} must be an absolute path")
            out[key] = list(roots)
        return out

    @field_validator("allowed_hosts", "ambient_credentials", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [h.strip() for h in text.split(",") if h.strip()]
        return value

    def endpoint_policy(self) -> EndpointPolicy:
        return EndpointPolicy(
            allow_loopback=self.allow_loopback,
            allow_private=self.allow_private,
            allowed=tuple(self.allowed_hosts),
        )

    def operator_context(self) -> ConnectorContext:
        """The context of the operator's own runs (the CLI): no local-root limit, this
        process's endpoint policy and ambient-credential types."""
        return ConnectorContext(
            endpoint_policy=self.endpoint_policy(),
            ambient_credentials=frozenset(self.ambient_credentials),
        )

    def tenant_context(self, subscription_id: str, files_root: Path) -> ConnectorContext:
        """The connector context of one subscription: its own file root (created 0700 on
        first use), the shared roots it opted into, the endpoint policy, ambient types."""
        base = self.files_root or files_root
        own = base / subscription_id
        own.mkdir(parents=True, exist_ok=True, mode=0o700)
        own.chmod(0o700)
        shared = tuple(self.shared_roots.get(subscription_id, ()))
        return ConnectorContext(
            endpoint_policy=self.endpoint_policy(),
            local_roots=(str(own), *shared),
            ambient_credentials=frozenset(self.ambient_credentials),
        )

    def secret_key_list(self) -> list[str]:
        if self.secret_keys is None:
            return []
        raw = self.secret_keys.get_secret_value()
        return [k.strip() for k in raw.split(",") if k.strip()]


@functools.cache
def get_settings() -> ConnectorSettings:
    """The process-wide settings (``get_settings.cache_clear()`` re-reads the environment)."""
    return ConnectorSettings()


def endpoint_policy() -> EndpointPolicy:
    """The SSRF policy configured for this process."""
    return get_settings().endpoint_policy()
