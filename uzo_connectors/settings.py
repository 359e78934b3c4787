"""Connector settings (env prefix ``UZO_CONNECTORS_``), built on demand, never at import.

``UZO_SECRET_KEYS`` (no prefix) is read here too: the comma-separated Fernet
keys of :mod:`uzo_connectors.credentials`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from uzo_connectors.base import ConnectorContext
from uzo_connectors.ssrf import EndpointPolicy


class ConnectorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="UZO_CONNECTORS_", extra="ignore", populate_by_name=True, frozen=True
    )

    allow_loopback: bool = False
    allow_private: bool = False
    # Hosts or CIDRs always allowed, e.g. "db.internal,10.1.0.0/16" (or a JSON list).
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Where each subscription's own local files live (files, SQLite, DuckDB connectors):
    # FILES_ROOT/<subscription id>/, created on first use. Unset: UZO_HOME/files.
    files_root: Path | None = None
    # Operator directories a subscription may also use, opt-in per subscription: a JSON
    # object {"<subscription id>": ["/srv/shared/sales", ...]}. No subscription has any
    # by default.
    shared_roots: dict[str, list[str]] = Field(default_factory=dict)
    # Connector types that may use the server's own identity when a config gives no
    # credentials (instance metadata, environment, credential files, managed identity),
    # e.g. "s3,gcs" or "*". Empty (the default): tenant connectors never do.
    ambient_credentials: Annotated[list[str], NoDecode] = Field(default_factory=list)
    default_batch_size: int = Field(default=65_536, gt=0)
    secret_keys: SecretStr | None = Field(default=None, validation_alias="UZO_SECRET_KEYS")

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
