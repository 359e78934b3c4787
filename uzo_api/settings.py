"""API settings: one root composed of per-concern groups, built on demand.

Each group reads its own environment prefix, so the variables are
``UZO_DATABASE_URL``, ``UZO_AUTH_ACCESS_TTL_SECONDS``, ``UZO_REDIS_URL`` and so
on, also from a ``.env`` file (in the current directory, or the one
``UZO_ENV_FILE`` names; environment variables win: :class:`UzoSettings`).
Nothing is read at import time: call :func:`get_settings`. Every field has a
description: ``python -m uzo_api.config_docs`` writes docs/configuration.md.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from uzo_connectors.settings import UzoSettings

if TYPE_CHECKING:
    from collections.abc import Callable


def _group(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore")


class DatabaseSettings(UzoSettings):
    """Metadata database. With no URL, UZO runs an embedded PostgreSQL."""

    model_config = _group("UZO_DATABASE_")

    url: SecretStr | None = Field(
        default=None,
        description="Owner connection (runs migrations), e.g. "
        "`postgresql://uzo_owner:...@db-host:5432/uzo`. Unset: an embedded PostgreSQL in "
        "UZO_HOME/pg (the `embedded` extra).",
    )
    app_url: SecretStr | None = Field(
        default=None,
        description="Connection of the application role (NOBYPASSRLS, owns no table). "
        "Unset: the owner URL with the user replaced by `app_role`.",
    )
    app_role: str = Field(
        default="uzo_app",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="Name of the application role the migrations create and requests use.",
    )
    app_password: SecretStr | None = Field(
        default=None, description="Password given to the application role by migrations."
    )
    name: str = Field(
        default="uzo",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="Metadata database on the embedded PostgreSQL (an external server's is "
        "named in UZO_DATABASE_URL).",
    )
    pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Connections the application role's pool keeps (as many again may "
        "overflow). The `/api` requests in flight are bounded by the same number, twice "
        "`pool_size` and at most 32; more wait their turn (uzo_api/admission.py).",
    )
    pool_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Longest a request waits for a pooled connection, or for its turn among "
        "the `/api` requests in flight, before it fails (503 with `Retry-After`).",
    )
    statement_timeout_ms: int = Field(
        default=30_000,
        ge=0,
        description="PostgreSQL statement_timeout of the application role's connections (0: none).",
    )
    dedicated_pool_size: int = Field(
        default=2,
        ge=1,
        le=50,
        description="Connections the pool of each dedicated tenant database keeps (as many "
        "again may overflow); see `uzo tenant provision`.",
    )
    dedicated_max_open: int = Field(
        default=32,
        ge=1,
        le=1000,
        description="Dedicated tenant databases one API process keeps a pool for; beyond "
        "that the least recently used pool is closed.",
    )
    dedicated_connect_timeout_seconds: int = Field(
        default=5,
        ge=1,
        le=60,
        description="Longest a request waits to connect to a dedicated tenant database "
        "before it is answered 503.",
    )
    log_partition_months_ahead: int = Field(
        default=3,
        ge=1,
        le=24,
        description="Monthly partitions of the log tables created ahead (by the migrations, "
        "then every 6 hours by the API).",
    )


class AuthSettings(UzoSettings):
    """Tokens, passwords and login throttling."""

    model_config = _group("UZO_AUTH_")

    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 signing key of access tokens. Unset: generated once in UZO_HOME.",
        json_schema_extra={"doc_default": "generated"},
    )
    jwt_issuer: str = Field(
        default="uzo", description="`iss` claim of access tokens, checked on every request."
    )
    access_ttl_seconds: int = Field(
        default=900, ge=30, le=86_400, description="Lifetime of an access token."
    )
    refresh_ttl_seconds: int = Field(
        default=14 * 86_400,
        ge=300,
        description="Lifetime of a refresh token (each refresh issues a new one).",
    )
    reset_ttl_seconds: int = Field(
        default=3600, ge=60, le=86_400, description="Lifetime of a password reset token."
    )
    login_limit_per_account: str = Field(
        default="5/minute",
        description="Login attempts per account, a rate such as `5/minute` or `100/hour`.",
    )
    login_limit_per_ip: str = Field(
        default="20/minute", description="Login attempts per client address."
    )
    registration: Literal["open", "invite", "closed"] = Field(
        default="open",
        description="Who may create a subscription with POST /api/auth/register: 'open' "
        "anyone who reaches the port, 'invite' only holders of an invitation token "
        "(UZO_AUTH_INVITE_TOKENS), 'closed' nobody (subscriptions are made with `uzo admin`).",
    )
    invite_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated invitation tokens accepted when registration is 'invite'.",
    )
    register_limit_per_ip: str = Field(
        default="10/hour", description="New subscriptions per client address."
    )
    mail_sender: Literal["outbox"] = Field(
        default="outbox", description="'outbox' writes each mail as a file in UZO_HOME/outbox."
    )

    @field_validator("invite_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    @field_validator("invite_tokens")
    @classmethod
    def _long_enough(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(t.get_secret_value()) < 16 for t in value):
            raise ValueError("each invitation token needs at least 16 characters")
        return value


class RedisSettings(UzoSettings):
    """Optional Redis: rate limits and pub/sub across API replicas."""

    model_config = _group("UZO_REDIS_")

    url: SecretStr | None = Field(
        default=None,
        description="Redis (`redis://host:6379/0`) that keeps login and register throttling "
        "for every API replica. Unset: each process keeps its own, in memory.",
    )


class HistorySettings(UzoSettings):
    """History of objects: how long a deletion stays restorable."""

    model_config = _group("UZO_HISTORY_")

    restore_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Days a soft delete (of a workspace, folder, job, workflow or job "
        "package and what it cascaded to) can be restored; `uzo db purge` removes the rows "
        "of older ones for good.",
    )


class ServerSettings(UzoSettings):
    """HTTP server."""

    model_config = _group("UZO_SERVER_")

    host: str = Field(default="127.0.0.1", description="Address `uzo serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65_535, description="Port `uzo serve` listens on.")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="API processes `uzo serve` runs on the one port (uvicorn's supervisor "
        "restarts one that dies). More than one needs `UZO_REDIS_URL`, so that login and "
        "register throttling is shared; each process has its own database pool "
        "(`UZO_DATABASE_POOL_SIZE`, as many again in overflow).",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins a browser may call the API from (CORS), a JSON list such as "
        '`["https://app.example.com"]`. Empty: no CORS headers.',
    )
    public_url: str | None = Field(
        default=None, description="Base URL used in links sent by mail (reset password)."
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=1 << 30,
        description="Largest request body accepted (413 beyond it, before parsing).",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or CIDRs of reverse proxies whose X-Forwarded-For is believed. "
        "Empty (the default): the client address is the peer's.",
    )
    connector_call_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Longest a connector test or discovery may take before it is answered as "
        "timed out.",
    )
    connector_calls_max: int = Field(
        default=16, ge=1, le=1024, description="Connector tests/discoveries running at once."
    )
    connector_calls_per_tenant: int = Field(
        default=4,
        ge=1,
        le=1024,
        description="Connector tests/discoveries one subscription may run at once.",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [p.strip() for p in text.split(",") if p.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR") from None
        return value


class VersionsSettings(UzoSettings):
    """Workflow versions and check-outs."""

    model_config = _group("UZO_VERSIONS_")

    checkout_ttl_minutes: int = Field(
        default=60,
        ge=1,
        le=43_200,
        description="How long a workflow check-out holds (minutes): after that others may "
        "save, check out or roll back the workflow as if it were not checked out. The "
        "holder checking out again restarts the time.",
    )


class AuditSettings(UzoSettings):
    """Audit trail, request logs and log retention (docs/audit.md)."""

    model_config = _group("UZO_AUDIT_")

    enabled: bool = Field(
        default=True,
        description="Benchmark switch only (`python -m benchmarks audit` turns it off for its "
        "baseline rounds): false writes no audit rows at all. Never turn it off on a server.",
    )
    server_logs: bool = Field(
        default=True,
        description="Write one server_logs row per HTTP request, batched off the request path.",
    )
    server_log_queue: int = Field(
        default=50_000,
        ge=100,
        le=1_000_000,
        description="Request-log records held in memory awaiting their batch; beyond it a "
        "record is dropped (and counted), never waited for.",
    )
    server_log_batch: int = Field(
        default=5_000,
        ge=1,
        le=100_000,
        description="Most request-log rows written by one COPY.",
    )
    server_log_flush_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="Longest a request-log record waits in memory before its batch is written.",
    )
    server_log_retention_days: int = Field(
        default=90,
        ge=1,
        description="`uzo db retention` drops server_logs partitions older than this.",
    )
    execution_log_retention_days: int = Field(
        default=365,
        ge=1,
        description="`uzo db retention` drops execution_logs partitions older than this.",
    )
    change_history_retention_days: int = Field(
        default=0,
        ge=0,
        description="`uzo db retention` drops data_change_history partitions older than this; "
        "0 (the default): kept forever, like audit_logs (user actions are permanent).",
    )


class Settings(UzoSettings):
    """Root settings of the API process."""

    model_config = SettingsConfigDict(env_prefix="UZO_", extra="ignore", populate_by_name=True)

    home: Path = Field(
        default_factory=lambda: Path.home() / ".uzo",
        description="Local state: the embedded PostgreSQL (pg/), generated secrets (secrets/), "
        "the mail outbox (outbox/), each subscription's files (files/), the local Prefect "
        "server (prefect/), the Ray token and the local cluster's session folders (ray/).",
        json_schema_extra={"doc_default": "~/.uzo"},
    )
    env: str = Field(
        default="development",
        pattern=r"^(development|test|production)$",
        description="Name of the deployment's environment; no behaviour depends on it yet.",
    )
    log_level: str = Field(
        default="INFO",
        pattern=r"^(DEBUG|INFO|WARNING|ERROR)$",
        description="Least severe level that is logged.",
    )
    log_json: bool = Field(
        default=True,
        description="One JSON object per log line (true) or human-readable lines (false).",
    )
    database: DatabaseSettings = Field(
        default_factory=DatabaseSettings, description="The UZO_DATABASE_* group."
    )
    auth: AuthSettings = Field(default_factory=AuthSettings, description="The UZO_AUTH_* group.")
    redis: RedisSettings = Field(
        default_factory=RedisSettings, description="The UZO_REDIS_* group."
    )
    server: ServerSettings = Field(
        default_factory=ServerSettings, description="The UZO_SERVER_* group."
    )
    history: HistorySettings = Field(
        default_factory=HistorySettings, description="The UZO_HISTORY_* group."
    )
    versions: VersionsSettings = Field(
        default_factory=VersionsSettings, description="The UZO_VERSIONS_* group."
    )
    audit: AuditSettings = Field(
        default_factory=AuditSettings, description="The UZO_AUDIT_* group."
    )

    secret_keys: SecretStr | None = Field(
        default=None,
        validation_alias="UZO_SECRET_KEYS",
        description="Comma-separated Fernet keys for connector credentials, newest first. "
        "Unset: one key generated once in UZO_HOME.",
        json_schema_extra={"doc_default": "generated"},
    )

    def credential_keys(self) -> list[str]:
        """Keys of the credential vault: configured, or generated once and kept in UZO_HOME."""
        if self.secret_keys is not None:
            raw = self.secret_keys.get_secret_value()
        else:
            from cryptography.fernet import Fernet

            raw = _local_secret(
                self.home / "secrets" / "fernet_keys", lambda: Fernet.generate_key().decode()
            )
        return [k.strip() for k in raw.split(",") if k.strip()]

    def jwt_secret(self) -> str:
        """The signing key: configured, or generated once and kept in UZO_HOME (0600)."""
        if self.auth.jwt_secret is not None:
            return self.auth.jwt_secret.get_secret_value()
        return _local_secret(self.home / "secrets" / "jwt_secret")


def _local_secret(path: Path, make: Callable[[], str] = lambda: secrets.token_urlsafe(48)) -> str:
    """Read a generated secret, creating it once; concurrent first users agree on one value."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(make())
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)  # fails if another process created it first: theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
