"""The DatabaseRouter: which database holds a tenant's resources.

A shared tenant's resources live in the control database, with every other shared
tenant's, kept apart by Row-Level Security. A subscription whose
``infrastructure_type`` is ``dedicated`` has a database of its own (made by
``uzo tenant provision``), migrated with the full schema, so RLS, its policies and
the application role are the same there. Identity (subscriptions, plans, users and
their credentials) stays in the control database: login and principal loading read
it before the tenant is known. See docs/adr/0014-dedicated-tenant-databases.md.

``subscriptions.dedicated_database_url`` holds, encrypted with the credential vault
(UZO_SECRET_KEYS), either the name of a database on the control database's server
(``{"database": "uzo_t_..."}``: the control server's address and roles apply, so a
moved socket or a changed password does not strand it) or an owner URL of its own
(``{"url": "postgresql://..."}``). The application role connects with the control
database's application credentials.

A dedicated tenant whose database cannot be reached is answered 503, never served
from the shared database.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from uzo_api.db.session import Database
from uzo_api.db.urls import DatabaseUrls, with_driver
from uzo_api.errors import ServiceUnavailable
from uzo_connectors.credentials import CredentialError

if TYPE_CHECKING:
    import uuid
    from collections.abc import Iterator

    from sqlalchemy.orm import Session

    from uzo_api.auth.principal import Principal
    from uzo_api.settings import Settings
    from uzo_connectors.credentials import CredentialVault

log = structlog.get_logger("uzo.db")
DEDICATED_PREFIX = "uzo_t_"
UNREACHABLE = (
    "this subscription's dedicated database cannot be reached; try again later, or ask the "
    "server's operator"
)


@dataclass(frozen=True)
class DedicatedTarget:
    """Where a dedicated tenant's database is: by name on the control server, or a URL."""

    database: str | None = None
    url: str | None = None

    def owner_url(self, control_owner: URL) -> URL:
        if self.url is not None:
            return with_driver(make_url(self.url))
        return control_owner.set(database=self.database)

    def describe(self) -> str:
        """For people and logs: the database name, or the URL without its password."""
        if self.url is not None:
            return make_url(self.url).render_as_string(hide_password=True)
        return str(self.database)

    def encrypt(self, vault: CredentialVault) -> str:
        fields = {"database": self.database} if self.url is None else {"url": self.url}
        return vault.encrypt(fields)

    @classmethod
    def decrypt(cls, vault: CredentialVault, token: str) -> DedicatedTarget:
        fields = vault.decrypt(token)
        url, database = fields.get("url"), fields.get("database")
        return cls(
            database=str(database) if database is not None else None,
            url=str(url) if url is not None else None,
        )


def dedicated_urls(owner: URL, settings: Settings) -> DatabaseUrls:
    """The owner and application URLs of a dedicated database (the control's app credentials)."""
    db = settings.database
    password = db.app_password.get_secret_value() if db.app_password else None
    if password is None and db.app_url is not None:
        password = make_url(db.app_url.get_secret_value()).password
    return DatabaseUrls(
        owner=owner, app=owner.set(username=db.app_role, password=password), embedded=False
    )


def require_connection(session: Session, subscription_id: uuid.UUID) -> None:
    """Connect now, so an unreachable dedicated database is a 503 before any work starts."""
    try:
        session.connection()
    except DBAPIError as exc:
        log.error(
            "dedicated database unreachable",
            subscription_id=str(subscription_id),
            error=type(exc.orig).__name__,
        )
        raise ServiceUnavailable(UNREACHABLE) from exc


class DatabaseRouter:
    """The control database, and one bounded pool per dedicated database in use."""

    def __init__(self, control: Database, settings: Settings, vault: CredentialVault) -> None:
        self.control = control
        self.settings = settings
        self.vault = vault
        self._lock = threading.Lock()
        # keyed by the encrypted target: a re-provisioned tenant gets a new pool
        self._open: OrderedDict[str, Database] = OrderedDict()

    def database_for(self, principal: Principal) -> Database:
        if principal.dedicated_database is None:
            return self.control
        return self.dedicated(principal.dedicated_database, principal.subscription_id)

    def dedicated(self, token: str, subscription_id: uuid.UUID) -> Database:
        with self._lock:
            found = self._open.get(token)
            if found is not None:
                self._open.move_to_end(token)
                return found
        try:
            target = DedicatedTarget.decrypt(self.vault, token)
        except CredentialError as exc:
            log.error("dedicated database URL undecryptable", subscription_id=str(subscription_id))
            raise ServiceUnavailable(
                "this subscription's dedicated database cannot be located on this server (its "
                "address does not decrypt); an administrator must restore the key "
                "(UZO_SECRET_KEYS)"
            ) from exc
        cfg = self.settings.database
        db = Database(
            dedicated_urls(target.owner_url(self.control.urls.owner), self.settings),
            pool_size=cfg.dedicated_pool_size,
            statement_timeout_ms=cfg.statement_timeout_ms,
            pool_timeout_seconds=cfg.pool_timeout_seconds,
            connect_timeout_seconds=cfg.dedicated_connect_timeout_seconds,
        )
        evicted: list[Database] = []
        with self._lock:
            raced = self._open.get(token)
            if raced is not None:
                evicted.append(db)
                db = raced
            else:
                self._open[token] = db
                while len(self._open) > cfg.dedicated_max_open:
                    evicted.append(self._open.popitem(last=False)[1])
        for old in evicted:  # connections still checked out close when they are returned
            old.dispose()
        return db

    @contextmanager
    def tenant(self, principal: Principal) -> Iterator[Session]:
        """A unit of work in the principal's tenant database, for the services that must
        open their own around a remote call (see uzo_api.context)."""
        db = self.database_for(principal)
        with db.tenant(principal.subscription_id) as s:
            if db is not self.control:
                require_connection(s, principal.subscription_id)
            yield s

    def dispose(self) -> None:
        """Close the dedicated pools (the control database belongs to whoever opened it)."""
        with self._lock:
            open_dbs = list(self._open.values())
            self._open.clear()
        for db in open_dbs:
            db.dispose()
