"""The embedded metadata database: a real PostgreSQL from the ``pgserver`` wheel.

Used when ``UZO_DATABASE_URL`` is unset. The server lives in ``UZO_HOME/pg`` and
listens on a unix socket only. UZO then talks to it exactly as to an external
server: an owner role (``uzo_owner``) runs migrations and owns the tables, the
application role is created by the migrations.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

if TYPE_CHECKING:
    from pathlib import Path

    from uzo_api.settings import Settings

OWNER_ROLE = "uzo_owner"

_lock = threading.Lock()
_servers: dict[Path, Any] = {}


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be started or prepared."""


def embedded_owner_url(settings: Settings) -> URL:
    """Start (or reuse) the embedded server and return the owner's URL."""
    pgdata = (settings.home / "pg").resolve()
    with _lock:
        server = _servers.get(pgdata)
        if server is None:
            server = _start(pgdata)
            _servers[pgdata] = server
    superuser_uri: str = server.get_uri()
    socket_dir = make_url(superuser_uri).query["host"]
    _prepare(superuser_uri, settings.database.name)
    return URL.create(
        "postgresql+psycopg",
        username=OWNER_ROLE,
        database=settings.database.name,
        query={"host": socket_dir},
    )


def stop_embedded(settings: Settings) -> None:
    """Stop this process's handle on the embedded server (it stops when no process uses it)."""
    pgdata = (settings.home / "pg").resolve()
    with _lock:
        server = _servers.pop(pgdata, None)
    if server is not None:
        _forget_dead_handles(pgdata)
        server.cleanup()


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop the processes that died without releasing their handle from pgserver's list.

    pgserver keeps the ids of the processes using a server in ``.handle_pids.json`` and
    stops it when the last one lets go; a process killed outright (a `uzo serve` worker
    that crashed and was replaced) never does, and the server would outlive the command.
    """
    handles = pgdata / ".handle_pids.json"
    with contextlib.suppress(OSError, ValueError, TypeError):
        pids = json.loads(handles.read_text())
        alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _start(pgdata: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns (at pgserver import and start) when XDG_RUNTIME_DIR is
        # unset, as on servers and in CI; pgserver then uses /tmp, which is fine
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        try:
            import pgserver
        except ImportError as exc:
            raise EmbeddedPostgresError(missing_pgserver_message()) from exc
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            return pgserver.get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:
            raise EmbeddedPostgresError(
                f"could not start the embedded PostgreSQL in {pgdata}: {exc}"
            ) from exc


def missing_pgserver_message() -> str:
    if sys.version_info >= (3, 13):
        return (
            "UZO_DATABASE_URL is not set and the embedded PostgreSQL is not available on "
            f"Python {sys.version_info.major}.{sys.version_info.minor} (the 'pgserver' package "
            "publishes wheels up to 3.12): point UZO_DATABASE_URL at a PostgreSQL server, e.g. "
            "postgresql://uzo_owner:secret@localhost:5432/uzo, or run UZO on Python 3.11 or 3.12"
        )
    return (
        "UZO_DATABASE_URL is not set and the embedded PostgreSQL needs the 'pgserver' package: "
        "install it with `pip install 'uzo[embedded]'` (`make serve` does), or point "
        "UZO_DATABASE_URL at a PostgreSQL server"
    )


def _prepare(superuser_uri: str, database: str) -> None:
    """Create the owner role and the database once (idempotent).

    The owner may create databases: ``uzo tenant provision`` makes a dedicated tenant's
    database on the same server with it.
    """
    with psycopg.connect(superuser_uri, autocommit=True) as conn:
        role = conn.execute(
            "SELECT rolcreatedb FROM pg_roles WHERE rolname = %s", [OWNER_ROLE]
        ).fetchone()
        if role is None:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB NOSUPERUSER NOBYPASSRLS").format(
                    sql.Identifier(OWNER_ROLE)
                )
            )
        elif not role[0]:  # created before dedicated tenants: `uzo tenant provision` needs it
            conn.execute(sql.SQL("ALTER ROLE {} CREATEDB").format(sql.Identifier(OWNER_ROLE)))
        has_db = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if has_db is None:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(OWNER_ROLE)
                )
            )
