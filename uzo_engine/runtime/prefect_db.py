"""Where the local Prefect server keeps its data.

- UZO on its embedded PostgreSQL: SQLite under ``UZO_HOME/prefect`` (the pgserver
  build lacks the pg_trgm extension Prefect's migrations need: ADR 0001).
- UZO on an external PostgreSQL (``UZO_DATABASE_URL``): a ``prefect`` database
  on that server, created on first use when the role may (else a clear error
  says what to run). ``UZO_PREFECT_DATABASE_URL`` names another one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from uzo_engine.settings import EngineSettings

PREFECT_DATABASE = "prefect"


class PrefectDatabaseError(RuntimeError):
    pass


def postgres_url(settings: EngineSettings) -> URL | None:
    """The PostgreSQL database of the local Prefect server, or None (SQLite)."""
    if settings.prefect_database_url is not None:
        url = make_url(settings.prefect_database_url.get_secret_value())
    elif settings.database_url is not None:
        url = make_url(settings.database_url.get_secret_value()).set(database=PREFECT_DATABASE)
    else:
        return None
    if url.get_backend_name() != "postgresql":
        raise PrefectDatabaseError(
            f"the Prefect database must be PostgreSQL, not {url.get_backend_name()!r}"
        )
    return url.set(drivername="postgresql+asyncpg")


def connection_url(settings: EngineSettings) -> str:
    """``PREFECT_API_DATABASE_CONNECTION_URL`` of the local server (contains a password)."""
    url = postgres_url(settings)
    if url is None:
        return f"sqlite+aiosqlite:///{settings.prefect_home / 'prefect.db'}"
    return url.render_as_string(hide_password=False)


def ensure_database(settings: EngineSettings) -> None:
    """Create the Prefect database (and its pg_trgm extension) when missing."""
    import psycopg
    from psycopg import sql

    url = postgres_url(settings)
    if url is None:
        return
    name = url.database or PREFECT_DATABASE
    maintenance = url.set(drivername="postgresql", database="postgres")
    target = url.set(drivername="postgresql")
    hint = (
        f"as a superuser: CREATE DATABASE {name} OWNER {url.username}; "
        f"then in it: CREATE EXTENSION IF NOT EXISTS pg_trgm"
    )
    try:
        with psycopg.connect(_dsn(maintenance), autocommit=True, connect_timeout=10) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if found is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with psycopg.connect(_dsn(target), autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except psycopg.errors.InsufficientPrivilege as e:
        raise PrefectDatabaseError(
            f"cannot prepare Prefect's database {name!r} on {url.host}: {str(e).strip()} ({hint})"
        ) from None
    except psycopg.Error as e:
        raise PrefectDatabaseError(
            f"cannot reach Prefect's database {name!r} on {url.host}:{url.port}: "
            f"{type(e).__name__} ({hint} if it does not exist)"
        ) from None


def _dsn(url: URL) -> str:
    return url.render_as_string(hide_password=False)
