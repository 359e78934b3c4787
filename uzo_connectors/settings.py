"""Connector settings (env prefix ``UZO_CONNECTORS_``), built on demand, never at import.

``UZO_SECRET_KEYS`` (no prefix) is read here too: the comma-separated Fernet
keys of :mod:`uzo_connectors.credentials`.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from uzo_connectors.ssrf import EndpointPolicy


class ConnectorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="UZO_CONNECTORS_", extra="ignore", populate_by_name=True, frozen=True
    )

    allow_loopback: bool = False
    allow_private: bool = False
    # Hosts or CIDRs always allowed, e.g. "db.internal,10.1.0.0/16" (or a JSON list).
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Local directories the API lets tenants' connectors use (files, SQLite, DuckDB), e.g.
    # "/srv/uzo/files" (or a JSON list). Empty: the API uses UZO_HOME/files.
    local_roots: Annotated[list[str], NoDecode] = Field(default_factory=list)
    default_batch_size: int = Field(default=65_536, gt=0)
    secret_keys: SecretStr | None = Field(default=None, validation_alias="UZO_SECRET_KEYS")

    @field_validator("allowed_hosts", "local_roots", mode="before")
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
