"""Dedicated infrastructure: provision a tenant's own database, shut a tenant down, list.

Operator work (``uzo tenant ...``), done as the owner role, across tenants, outside any
request. See uzo_api.db.router for how requests reach a dedicated database and
docs/adr/0014-dedicated-tenant-databases.md for what lives where.

Provisioning a subscription (``provision``):

1. refuses one that already has resources in the shared database (moving a live
   tenant's rows between databases is not supported: provision before it creates any);
2. creates the database ``uzo_t_<12 hex digits of the id>`` on the control server with
   the owner connection (or takes the empty database of ``--database-url``);
3. migrates it with the same Alembic path as ``uzo db upgrade`` (same tables, RLS,
   policies, application role and grants), and takes CONNECT away from PUBLIC;
4. copies the identity rows its resources refer to (the subscription, its users);
5. registers it: ``infrastructure_type = 'dedicated'`` and the encrypted address; then
   copies again, for a user created meanwhile (copies are upserts by id).

Run again on a dedicated subscription, it migrates its database and copies again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from psycopg import sql
from sqlalchemy import func, insert, select, table, text, update
from sqlalchemy.exc import DBAPIError

from uzo_api.db import migrate
from uzo_api.db.mirror import MIRRORED_TABLES, upsert
from uzo_api.db.models import (
    ApiKey,
    AuditLog,
    Base,
    RefreshToken,
    Subscription,
    User,
    tenant_tables,
)
from uzo_api.db.router import DEDICATED_PREFIX, DedicatedTarget, dedicated_urls
from uzo_api.db.session import make_engine
from uzo_api.services.auth import ACTIVE, DEDICATED
from uzo_connectors.credentials import CredentialError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Connection, Engine, Table

    from uzo_api.db.session import Database
    from uzo_api.settings import Settings
    from uzo_connectors.credentials import CredentialVault

SUSPENDED = "suspended"
#: identity and control plane: stay in the control database (login reads them first)
IDENTITY_TABLES = frozenset(
    {
        "subscriptions",
        "users",
        "api_keys",
        "refresh_tokens",
        "password_reset_tokens",
        "subscription_feature_overrides",
        "usage_counters",
    }
)


def resource_tables() -> list[str]:
    """The tenant tables a dedicated database holds the rows of."""
    return [t for t in tenant_tables(Base.metadata) if t not in IDENTITY_TABLES]


class TenantError(Exception):
    """An operation refused or failed; ``code`` is the CLI's error code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class TenantInfo:
    subscription_id: uuid.UUID
    company_name: str
    status: str
    infrastructure_type: str
    database: str | None  # the dedicated database, for people (no password)


@dataclass(frozen=True)
class Provisioned:
    tenant: TenantInfo
    created_database: bool
    already_dedicated: bool
    revision: str | None
    users_copied: int


@dataclass(frozen=True)
class ShutDown:
    tenant: TenantInfo
    was: str
    sessions_revoked: int
    api_keys_revoked: int
    warnings: list[str] = field(default_factory=list)


SUBS = cast("Table", Subscription.__table__)
TOKENS = cast("Table", RefreshToken.__table__)
KEYS = cast("Table", ApiKey.__table__)


def _subscription(conn: Connection, subscription_id: uuid.UUID) -> Any:
    row = conn.execute(
        select(SUBS).where(SUBS.c.id == subscription_id, SUBS.c.deleted_at.is_(None))
    ).first()
    if row is None:
        raise TenantError(f"no subscription {subscription_id}", "not_found")
    return row


def _target(vault: CredentialVault, row: Any) -> DedicatedTarget | None:
    if row.infrastructure_type != DEDICATED or not row.dedicated_database_url:
        return None
    try:
        return DedicatedTarget.decrypt(vault, row.dedicated_database_url)
    except CredentialError as exc:
        raise TenantError(
            f"the dedicated database address of subscription {row.id} does not decrypt with "
            "UZO_SECRET_KEYS",
            "undecryptable",
        ) from exc


def _info(vault: CredentialVault, row: Any) -> TenantInfo:
    try:
        target = _target(vault, row)
        where = target.describe() if target else None
    except TenantError:
        where = "(undecryptable)"
    return TenantInfo(row.id, row.company_name, row.status, row.infrastructure_type, where)


def list_tenants(control: Database, vault: CredentialVault) -> list[TenantInfo]:
    with control.owner_engine.connect() as conn:
        rows = conn.execute(
            select(SUBS).where(SUBS.c.deleted_at.is_(None)).order_by(SUBS.c.created_at, SUBS.c.id)
        ).all()
    return [_info(vault, r) for r in rows]


def _resource_counts(conn: Connection, subscription_id: uuid.UUID) -> dict[str, int]:
    counts = {}
    for name in resource_tables():
        t = table(name)
        n = conn.execute(
            select(func.count())
            .select_from(t)
            .where(text("subscription_id = :sid").bindparams(sid=subscription_id))
        ).scalar_one()
        if n:
            counts[name] = int(n)
    return counts


def _copy_identity(control: Connection, dedicated: Connection, subscription_id: uuid.UUID) -> int:
    """Upsert the subscription and its users into the dedicated database (as the owner)."""
    users = 0
    for t in MIRRORED_TABLES:
        key = t.c.id if t is SUBS else t.c.subscription_id
        rows = [dict(r._mapping) for r in control.execute(select(t).where(key == subscription_id))]
        upsert(dedicated, t, rows)
        if t is User.__table__:
            users = len(rows)
    return users


def _dedicated_engine(settings: Settings, control: Database, target: DedicatedTarget) -> Engine:
    urls = dedicated_urls(target.owner_url(control.urls.owner), settings)
    return make_engine(
        urls.owner,
        pool_size=1,
        connect_timeout_seconds=settings.database.dedicated_connect_timeout_seconds,
    )


def _create_database(control: Database, name: str) -> None:
    with control.owner_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists.first() is not None:
            raise TenantError(
                f"a database {name} exists already (left by an earlier attempt?): drop it, or "
                "pass --database-url",
                "conflict",
            )
        try:
            conn.exec_driver_sql(f"CREATE DATABASE {_ident(conn, name)}")
        except DBAPIError as exc:
            raise TenantError(
                f"the owner role cannot create the database {name} ({exc.orig}): grant it "
                "CREATEDB, or create an empty database yourself and pass --database-url",
                "cannot_create_database",
            ) from exc


def _drop_database(control: Database, name: str) -> None:
    with control.owner_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {_ident(conn, name)}")


def _ident(conn: Connection, name: str) -> str:
    raw = conn.connection.driver_connection
    return sql.Identifier(name).as_string(raw)


def _revoke_connect(conn: Connection, *roles: str) -> None:
    name = conn.execute(text("SELECT current_database()")).scalar_one()
    for role in roles:
        conn.exec_driver_sql(f"REVOKE CONNECT ON DATABASE {_ident(conn, name)} FROM {role}")


def provision(
    settings: Settings,
    control: Database,
    vault: CredentialVault,
    subscription_id: uuid.UUID,
    database_url: str | None = None,
) -> Provisioned:
    with control.owner_engine.connect() as conn:
        row = _subscription(conn, subscription_id)
        current = _target(vault, row)
        if row.status != ACTIVE:
            raise TenantError(f"subscription {subscription_id} is {row.status}", "conflict")
        if current is not None and database_url and DedicatedTarget(url=database_url) != current:
            raise TenantError(
                f"subscription {subscription_id} is dedicated already, in {current.describe()}",
                "conflict",
            )
        counts = {} if current is not None else _resource_counts(conn, subscription_id)
    if counts:
        listed = ", ".join(f"{name}: {n}" for name, n in sorted(counts.items()))
        raise TenantError(
            f"subscription {subscription_id} already has resources in the shared database "
            f"({listed}); moving them is not supported: provision a dedicated database "
            "before the tenant creates any",
            "has_tenant_data",
        )
    target = current
    created = False
    if target is None:
        if database_url:
            target = DedicatedTarget(url=database_url)
        else:
            target = DedicatedTarget(database=DEDICATED_PREFIX + subscription_id.hex[:12])
            _create_database(control, str(target.database))
            created = True
    engine = _dedicated_engine(settings, control, target)
    try:
        try:
            migrate.upgrade(engine, settings)
        except DBAPIError as exc:
            raise TenantError(
                f"cannot migrate the dedicated database {target.describe()}: {exc.orig}",
                "unreachable",
            ) from exc
        with engine.begin() as conn:
            _revoke_connect(conn, "PUBLIC")  # the migration granted the application role
        revision = migrate.current_revision(engine)
        with control.owner_engine.begin() as src, engine.begin() as dst:
            users = _copy_identity(src, dst, subscription_id)
        if current is None:
            registered = {
                "infrastructure_type": DEDICATED,
                "dedicated_database_url": target.encrypt(vault),
            }
            with control.owner_engine.begin() as conn:
                conn.execute(update(SUBS).where(SUBS.c.id == subscription_id).values(registered))
                _audit(
                    conn, subscription_id, "subscription.provision",
                    {"database": target.describe(), "created_database": created},
                )  # fmt: skip
            with control.owner_engine.begin() as src, engine.begin() as dst:
                users = _copy_identity(src, dst, subscription_id)
    except BaseException:
        engine.dispose()
        if created:
            _drop_database(control, str(target.database))
        raise
    engine.dispose()
    with control.owner_engine.connect() as conn:
        info = _info(vault, _subscription(conn, subscription_id))
    return Provisioned(info, created, current is not None, revision, users)


def shutdown(
    settings: Settings, control: Database, vault: CredentialVault, subscription_id: uuid.UUID
) -> ShutDown:
    """Suspend a subscription: no login, no token or API key accepted; every row stays.

    Its sessions and API keys are revoked, and a dedicated database no longer accepts the
    application role's connections (the owner still connects, for backups and exports).
    """
    now = dt.datetime.now(dt.UTC)
    with control.owner_engine.begin() as conn:
        row = _subscription(conn, subscription_id)
        conn.execute(
            update(SUBS)
            .where(SUBS.c.id == subscription_id, SUBS.c.status == row.status)
            .values(status=SUSPENDED)
        )
        sessions = conn.execute(
            update(TOKENS)
            .where(
                TOKENS.c.subscription_id == subscription_id,
                TOKENS.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        ).rowcount
        keys = conn.execute(
            update(KEYS)
            .where(
                KEYS.c.subscription_id == subscription_id,
                KEYS.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        ).rowcount
        target = _target(vault, row)
        _audit(
            conn, subscription_id, "subscription.shutdown",
            {"previous_status": row.status, "sessions_revoked": int(sessions or 0),
             "api_keys_revoked": int(keys or 0)},
        )  # fmt: skip
    warnings = []
    if target is not None:
        engine = _dedicated_engine(settings, control, target)
        try:
            with control.owner_engine.begin() as src, engine.begin() as dst:
                _copy_identity(src, dst, subscription_id)
                _revoke_connect(dst, "PUBLIC", settings.database.app_role)
        except DBAPIError as exc:
            warnings.append(
                f"the dedicated database {target.describe()} could not be reached ({exc.orig}); "
                "the subscription is suspended all the same"
            )
        finally:
            engine.dispose()
    with control.owner_engine.connect() as conn:
        info = _info(vault, _subscription(conn, subscription_id))
    return ShutDown(info, row.status, int(sessions or 0), int(keys or 0), warnings)


def _audit(
    conn: Connection, subscription_id: uuid.UUID, action: str, changes: dict[str, Any]
) -> None:
    """The operator's audit row, in the transaction of the change (the control database:
    a subscription's state is identity), with no user: it came from the command line."""
    tenant = {"s": str(subscription_id)}
    conn.execute(text("SELECT set_config('app.subscription_id', :s, true)"), tenant)
    conn.execute(
        insert(AuditLog).values(
            id=uuid.uuid4(),
            subscription_id=subscription_id,
            action=action,
            resource_type="subscription",
            resource_id=subscription_id,
            changes=changes,
            ip_address="cli",
            status="success",
        )
    )


def dedicated_engines(
    settings: Settings, control: Database, vault: CredentialVault
) -> Iterator[tuple[TenantInfo, Engine | None, str | None]]:
    """Every active dedicated tenant with an owner engine on its database (disposed when
    the caller moves on), or the reason there is none."""
    with control.owner_engine.connect() as conn:
        rows = conn.execute(
            select(SUBS).where(
                SUBS.c.infrastructure_type == DEDICATED,
                SUBS.c.status == ACTIVE,
                SUBS.c.deleted_at.is_(None),
            )
        ).all()
    for row in rows:
        info = _info(vault, row)
        try:
            target = _target(vault, row)
        except TenantError as exc:
            yield info, None, str(exc)
            continue
        if target is None:
            yield info, None, "no dedicated database registered"
            continue
        engine = _dedicated_engine(settings, control, target)
        try:
            yield info, engine, None
        finally:
            engine.dispose()


def upgrade_dedicated(
    settings: Settings, control: Database, vault: CredentialVault
) -> list[tuple[TenantInfo, str | None, str | None]]:
    """Migrate every active dedicated database: (tenant, revision, error) each."""
    out: list[tuple[TenantInfo, str | None, str | None]] = []
    for info, engine, error in dedicated_engines(settings, control, vault):
        if engine is None:
            out.append((info, None, error))
            continue
        try:
            migrate.upgrade(engine, settings)
            out.append((info, migrate.current_revision(engine), None))
        except DBAPIError as exc:
            out.append((info, None, str(exc)))
    return out
