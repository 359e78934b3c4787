"""Pooled connections the database dropped: replaced before use when they sat idle,
and a clear 503 (then a fresh connection) when one breaks between two close uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.factories import auth_header, login, register, unique_email
from uzo_api.app import create_app, open_database
from uzo_api.db import session as db_session

if TYPE_CHECKING:
    from collections.abc import Iterator

    from uzo_api.db.session import Database
    from uzo_api.settings import Settings


@pytest.fixture
def own_pool(settings: Settings, database: Database) -> Iterator[tuple[TestClient, Database]]:
    """An app on a pool of its own, so that dropping its connections touches nothing else."""
    db = open_database(settings)
    try:
        with TestClient(create_app(settings, db)) as client:
            yield client, db
    finally:
        db.dispose()


def _me(client: TestClient) -> dict[str, str]:
    email = unique_email("pool")
    register(client, email)
    return auth_header(login(client, email)["access_token"])


def _drop_pooled_connections(db: Database) -> set[int]:
    """Terminate the backend of every connection idle in ``db``'s pool (from a connection
    of the same role outside the pool: a role may end its own sessions)."""
    idle = db.engine.pool.checkedin()
    assert idle >= 1
    held = [db.engine.connect() for _ in range(idle)]
    pids = {int(c.execute(text("SELECT pg_backend_pid()")).scalar_one()) for c in held}
    for conn in held:
        conn.close()
    outside = create_engine(db.urls.app, poolclass=NullPool)
    try:
        with outside.connect() as conn:
            for pid in pids:
                killed = conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                assert killed.scalar() is True
    finally:
        outside.dispose()
    return pids


def test_a_connection_dropped_while_in_steady_use_is_a_503_then_replaced(
    own_pool: tuple[TestClient, Database],
) -> None:
    client, db = own_pool
    headers = _me(client)
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    _drop_pooled_connections(db)
    lost = client.get("/api/workspaces", headers=headers)
    assert lost.status_code == 503, lost.text
    assert lost.headers["content-type"].startswith("application/problem+json")
    assert lost.headers["retry-after"] == "1"
    assert "retry" in lost.json()["detail"]
    assert "Traceback" not in lost.text
    # the pool was discarded: the retry gets a fresh connection
    assert client.get("/api/workspaces", headers=headers).status_code == 200


def test_a_connection_that_sat_idle_is_checked_and_replaced_before_use(
    own_pool: tuple[TestClient, Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, db = own_pool
    headers = _me(client)
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    dropped = _drop_pooled_connections(db)
    monkeypatch.setattr(db_session, "PING_AFTER_IDLE_S", 0.0)  # every pooled one counts as idle
    assert client.get("/api/workspaces", headers=headers).status_code == 200
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() not in dropped
