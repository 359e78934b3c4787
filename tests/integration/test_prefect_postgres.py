"""The local Prefect server on UZO's external PostgreSQL keeps its data in a `prefect` database.

Needs a PostgreSQL with the pg_trgm extension, which the embedded pgserver build lacks
(docs/adr/0001-embedded-postgresql.md): these tests run in the Debian PostgreSQL passes
(CI's Python 3.13 pass, `make test-high-python`, or `make test-debian-pg`), where
UZO_DATABASE_URL names that server.
"""

from __future__ import annotations

import os
import secrets
import uuid
from typing import TYPE_CHECKING

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from uzo_engine.runtime import prefect_server
from uzo_engine.runtime.prefect_db import PrefectDatabaseError, ensure_database
from uzo_engine.settings import EngineSettings

if TYPE_CHECKING:
    from pathlib import Path

EXTERNAL = os.environ.get("UZO_DATABASE_URL")
pytestmark = [
    pytest.mark.db,
    pytest.mark.integration,
    pytest.mark.skipif(
        EXTERNAL is None,
        reason="needs an external PostgreSQL with pg_trgm (the embedded pgserver has none); "
        "runs in the Debian PostgreSQL pass",
    ),
]


def _dsn(database: str) -> str:
    assert EXTERNAL is not None
    url = make_url(EXTERNAL).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


@pytest.mark.slow
def test_local_prefect_server_keeps_its_data_in_a_prefect_database(tmp_path: Path) -> None:
    settings = EngineSettings(home=tmp_path, prefect_database_url=None)
    assert settings.database_url is not None
    api = prefect_server.ensure_prefect_api(settings)
    try:
        assert api.started_here
        created = httpx.post(f"{api.url}/flows/", json={"name": "uzo-on-postgres"}, timeout=30)
        assert created.status_code in (200, 201), created.text
        with psycopg.connect(_dsn("prefect")) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM flow").fetchall()]
            extensions = [r[0] for r in conn.execute("SELECT extname FROM pg_extension")]
        assert "uzo-on-postgres" in names
        assert "pg_trgm" in extensions
        assert not (tmp_path / "prefect" / "prefect.db").exists()  # not SQLite
    finally:
        prefect_server.stop_prefect_server(settings)


def test_a_database_the_role_may_not_create_gets_a_clear_error(tmp_path: Path) -> None:
    assert EXTERNAL is not None
    # a role without CREATEDB (UZO's owner role has it: it creates dedicated tenants' databases)
    role, password = f"uzo_nocreatedb_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    with psycopg.connect(_dsn(make_url(EXTERNAL).database or "uzo"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOCREATEDB PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
    try:
        missing = make_url(EXTERNAL).set(
            username=role, password=password, database="prefect_not_there"
        )
        settings = EngineSettings(
            home=tmp_path, prefect_database_url=missing.render_as_string(hide_password=False)
        )
        with pytest.raises(PrefectDatabaseError) as info:
            ensure_database(settings)
        message = str(info.value)
        assert "CREATE DATABASE prefect_not_there" in message
        assert password not in message  # the password is never shown
    finally:
        with psycopg.connect(_dsn(make_url(EXTERNAL).database or "uzo"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
