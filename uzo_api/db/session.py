"""Engines and sessions. Every session runs as the application role.

The tenant of a session is kept in ``session.info["subscription_id"]`` and
set on each transaction with ``set_config('app.subscription_id', ..., true)``
(transaction-local, so a pooled connection never carries it to the next
request). Row-Level Security does the filtering.
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import URL

    from uzo_api.db.urls import DatabaseUrls

_SET_TENANT = text("SELECT set_config('app.subscription_id', :sid, true)")
TENANT_KEY = "subscription_id"
#: a pooled connection idle for longer than this is checked before use (see ping_when_idle)
PING_AFTER_IDLE_S = 10.0


def make_engine(
    url: URL,
    *,
    pool_size: int = 5,
    statement_timeout_ms: int = 0,
    connect_timeout_seconds: int | None = None,
    **kw: Any,
) -> Engine:
    connect_args: dict[str, Any] = {}
    if statement_timeout_ms:
        connect_args["options"] = f"-c statement_timeout={statement_timeout_ms}"
    if connect_timeout_seconds is not None:
        connect_args["connect_timeout"] = connect_timeout_seconds
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args=connect_args,
        **kw,
    )
    ping_when_idle(engine)
    return engine


def ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it has been idle a while.

    SQLAlchemy's ``pool_pre_ping`` costs a round trip on every checkout, i.e. on every
    request. A connection in steady use is known good; one that sat in the pool (the
    server may have restarted or dropped it meanwhile) gets a ``SELECT 1`` first, and a
    failed one is replaced before the request sees it. A connection that breaks between
    two close uses fails its statement: SQLAlchemy then discards the whole pool, and the
    request answers 503 (uzo_api.errors).
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return  # fresh from connect, or in steady use
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.rollback()
        except Exception as error:
            raise exc.DisconnectionError(f"pooled connection failed its ping: {error}") from error


class Database:
    """The metadata store: an app-role engine for requests, an owner engine for upkeep."""

    def __init__(
        self,
        urls: DatabaseUrls,
        *,
        pool_size: int = 10,
        statement_timeout_ms: int = 0,
        pool_timeout_seconds: float = 10.0,
        connect_timeout_seconds: int | None = None,
    ):
        self.urls = urls
        #: connections the request pool can hand out at once (its size, as many in overflow)
        self.pool_capacity = self.capacity_of(pool_size)
        self.engine = make_engine(
            urls.app,
            pool_size=pool_size,
            statement_timeout_ms=statement_timeout_ms,
            connect_timeout_seconds=connect_timeout_seconds,
            pool_timeout=pool_timeout_seconds,
        )
        self._owner_engine: Engine | None = None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self._sessions, "after_begin", _apply_tenant)

    @staticmethod
    def capacity_of(pool_size: int) -> int:
        """Connections a pool of ``pool_size`` hands out at once (as many in overflow)."""
        return 2 * pool_size

    @property
    def owner_engine(self) -> Engine:
        """Engine of the owner role: migrations and partition upkeep only, never requests."""
        if self._owner_engine is None:
            self._owner_engine = make_engine(self.urls.owner, pool_size=2)
        return self._owner_engine

    def session(self, subscription_id: uuid.UUID | None = None) -> Session:
        s = self._sessions()
        if subscription_id is not None:
            set_tenant(s, subscription_id)
        return s

    @contextmanager
    def tenant(self, subscription_id: uuid.UUID | None) -> Iterator[Session]:
        """A unit of work for one tenant: commits on success, rolls back on error."""
        with self.session(subscription_id) as s, s.begin():
            yield s

    def dispose(self) -> None:
        self.engine.dispose()
        if self._owner_engine is not None:
            self._owner_engine.dispose()


def set_tenant(session: Session, subscription_id: uuid.UUID | None) -> None:
    """Bind the session to a tenant, for the current and every later transaction."""
    session.info[TENANT_KEY] = subscription_id
    if subscription_id is not None and session.in_transaction():
        session.execute(_SET_TENANT, {"sid": str(subscription_id)})


def current_tenant(session: Session) -> uuid.UUID | None:
    value = session.info.get(TENANT_KEY)
    return value if isinstance(value, uuid.UUID) else None


def _apply_tenant(session: Session, transaction: SessionTransaction, connection: Any) -> None:
    sid = session.info.get(TENANT_KEY)
    if sid is not None:
        connection.execute(_SET_TENANT, {"sid": str(sid)})
