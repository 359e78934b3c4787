"""The FastAPI application factory. Nothing happens at import time."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import TYPE_CHECKING

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import text

from uzo_api import __version__, api_docs, openapi
from uzo_api.admission import AdmissionMiddleware, admission_slots
from uzo_api.body_limit import BodyLimitMiddleware
from uzo_api.client_address import parse_networks
from uzo_api.db.embedded import stop_embedded
from uzo_api.db.session import Database
from uzo_api.db.urls import resolve_urls
from uzo_api.errors import install_error_handlers
from uzo_api.observability import RequestIdMiddleware
from uzo_api.routes import (
    audit as audit_routes,
)
from uzo_api.routes import (
    auth,
    connectors,
    deletions,
    features,
    groups,
    health,
    jobs,
    permissions,
    subscriptions,
    transfer,
    users,
    versions,
    workflows,
    workspaces,
)
from uzo_api.server_log_writer import SERVER_LOGS, LogBatchWriter
from uzo_api.services import audit
from uzo_api.services.container import build_services, build_throttle
from uzo_connectors.settings import ConnectorSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from uzo_api.settings import Settings

log = structlog.get_logger("uzo.api")
PARTITION_UPKEEP_SECONDS = 6 * 3600


def open_database(settings: Settings) -> Database:
    return Database(
        resolve_urls(settings),
        pool_size=settings.database.pool_size,
        statement_timeout_ms=settings.database.statement_timeout_ms,
        pool_timeout_seconds=settings.database.pool_timeout_seconds,
    )


def ensure_log_partitions(db: Database, months_ahead: int) -> int:
    """Create the coming months' log partitions; one API process (or replica) at a time."""
    with db.engine.begin() as conn:
        locked = conn.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtextextended('uzo:log-partitions', 0))")
        ).scalar_one()
        if not locked:
            return 0  # another process is at it
        created = conn.execute(
            text("SELECT uzo_ensure_log_partitions(:n)"), {"n": months_ahead}
        ).scalar_one()
    return int(created)


def create_app(
    settings: Settings,
    database: Database | None = None,
    connector_settings: ConnectorSettings | None = None,
    *,
    release_embedded: bool = False,
) -> FastAPI:
    """Build the API. A given ``database`` is used as is (and not disposed).

    ``release_embedded``: when the app stops, this process gives up its handle on the
    embedded PostgreSQL (a worker process of `uzo serve --workers N`; the server stops
    with the last handle, the command's own).
    """
    connector_settings = connector_settings or ConnectorSettings()
    _refuse_retired_settings()
    require_shared_secrets(settings)
    server = settings.server

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = database is None
        db = database if database is not None else await asyncio.to_thread(open_database, settings)
        services = build_services(
            settings, db, throttle=throttle, connector_settings=connector_settings
        )
        app.state.database = db
        app.state.services = services
        upkeep = asyncio.create_task(_partition_upkeep(db, settings))
        if server_logs is not None:
            server_logs.start(url=db.urls.app)
        try:
            yield
        finally:
            upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upkeep
            if server_logs is not None:  # what is still queued is written before we stop
                await asyncio.to_thread(server_logs.stop)
            await asyncio.to_thread(services.shutdown)
            if owned:
                db.dispose()
            if release_embedded and db.urls.embedded:
                await asyncio.to_thread(stop_embedded, settings)

    throttle = build_throttle(settings)
    audit.set_writing(settings.audit.enabled)
    server_logs = (
        LogBatchWriter(
            SERVER_LOGS,
            capacity=settings.audit.server_log_queue,
            batch_size=settings.audit.server_log_batch,
            flush_seconds=settings.audit.server_log_flush_seconds,
        )
        if settings.audit.server_logs
        else None
    )

    app = FastAPI(
        title="UZO API",
        version=__version__,
        description="Workflow automation and ETL/ELT: control API. Errors are "
        "`application/problem+json` (RFC 9457); lists are pages with a `next` cursor.",
        lifespan=lifespan,
        openapi_tags=openapi.TAGS,
        generate_unique_id_function=openapi.operation_id,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.throttle = throttle
    app.state.server_logs = server_logs
    app.state.trusted_proxies = parse_networks(server.trusted_proxies)
    install_error_handlers(app)
    # innermost: a request refused for its body or origin never takes a slot
    app.add_middleware(
        AdmissionMiddleware,
        slots=admission_slots(
            database.pool_capacity
            if database is not None
            else Database.capacity_of(settings.database.pool_size)
        ),
        wait_seconds=settings.database.pool_timeout_seconds,
    )
    if settings.server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.server.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=server.max_body_bytes)
    app.add_middleware(RequestIdMiddleware, server_logs=server_logs)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(connectors.router)
    app.include_router(features.router)
    app.include_router(subscriptions.router)
    app.include_router(workspaces.router)
    app.include_router(users.router)
    app.include_router(groups.router)
    app.include_router(permissions.router)
    app.include_router(jobs.router)
    app.include_router(workflows.router)
    app.include_router(transfer.router)
    app.include_router(deletions.router)
    app.include_router(versions.router)
    app.include_router(audit_routes.router)
    api_docs.install(app)
    openapi.install(app)
    return app


def require_shared_secrets(settings: Settings) -> None:
    """Keys generated into UZO_HOME suit one machine with its embedded database only.

    Replicas sharing an external database (or any production deployment) must share the
    JWT signing key and the credential keys: a key generated per machine would reject
    every other replica's tokens and could not decrypt their tenants' credentials.
    """
    external = settings.database.url is not None
    if settings.env != "production" and not external:
        return
    missing = []
    if settings.auth.jwt_secret is None:
        missing.append("UZO_AUTH_JWT_SECRET")
    if settings.secret_keys is None:
        missing.append("UZO_SECRET_KEYS")
    if missing:
        why = "UZO_ENV=production" if settings.env == "production" else "an external database"
        raise ValueError(
            f"{' and '.join(missing)} must be set with {why}: every API replica needs the "
            "same keys (generated keys in UZO_HOME are for the embedded single-machine setup)"
        )


def _refuse_retired_settings() -> None:
    """Settings whose meaning changed for safety: refuse to start rather than ignore them."""
    if os.environ.get("UZO_CONNECTORS_LOCAL_ROOTS"):
        raise ValueError(
            "UZO_CONNECTORS_LOCAL_ROOTS gave every tenant the same directories and is no longer "
            "read: each subscription now has its own root (UZO_HOME/files/<subscription id>, "
            "or UZO_CONNECTORS_FILES_ROOT/<subscription id>); give a subscription operator "
            "directories with UZO_CONNECTORS_SHARED_ROOTS, e.g. "
            '\'{"<subscription id>": ["/srv/shared"]}\''
        )


async def _partition_upkeep(db: Database, settings: Settings) -> None:
    months = settings.database.log_partition_months_ahead
    while True:
        try:
            created = await asyncio.to_thread(ensure_log_partitions, db, months)
            if created:
                log.info("log partitions created", count=created)
        except Exception:
            log.exception("log partition upkeep failed; retrying later")
        await asyncio.sleep(PARTITION_UPKEEP_SECONDS)
