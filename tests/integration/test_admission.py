"""Admission: a burst larger than the database pool queues instead of stalling the server.

A request's transaction holds its pooled connection between worker-thread hops. Without
admission, a burst of more requests than worker threads filled every thread with
requests waiting for a connection while the holders waited for a thread to commit on:
nothing ran until the pool timeout failed them (seen in the API benchmark at 100 req/s).
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.factories import TEST_PASSWORD, unique_email
from tests.live_server import LiveServer
from uzo_api.admission import AdmissionMiddleware, admission_slots
from uzo_api.app import create_app, open_database
from uzo_api.settings import DatabaseSettings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from uzo_api.db.session import Database


@pytest.fixture
def small_pool_server(uzo_home: Path, database: Database) -> Iterator[tuple[LiveServer, int]]:
    """The API with a one-connection pool (two with overflow), on its own engine."""
    settings = make_settings(uzo_home)
    db_settings = settings.database.model_copy(
        update={"pool_size": 1, "pool_timeout_seconds": 20.0}
    )
    settings = settings.model_copy(update={"database": db_settings})
    assert isinstance(settings.database, DatabaseSettings)
    small = open_database(settings)
    server = LiveServer(create_app(settings, small))
    try:
        yield server, small.pool_capacity
    finally:
        server.close()
        small.dispose()


def test_a_burst_beyond_the_pool_and_the_threads_is_served(
    small_pool_server: tuple[LiveServer, int],
) -> None:
    server, capacity = small_pool_server
    assert capacity == 2
    with httpx.Client(base_url=server.url, timeout=60) as http:
        email = unique_email("burst")
        registered = http.post(
            "/api/auth/register",
            json={"email": email, "password": TEST_PASSWORD, "company_name": "Burst"},
        )
        assert registered.status_code == 201, registered.text
        token = http.post("/api/auth/login", json={"email": email, "password": TEST_PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        created = http.post("/api/workspaces", json={"name": "burst"}, headers=headers)
        assert created.status_code == 201, created.text
        workspace = created.json()["id"]

    def read(_: int) -> int:
        with httpx.Client(base_url=server.url, timeout=60) as own:
            return own.get(f"/api/workspaces/{workspace}", headers=headers).status_code

    # more concurrent requests than the 40 worker threads, on a two-connection pool
    with ThreadPoolExecutor(max_workers=80) as pool:
        codes = list(pool.map(read, range(160)))
    assert codes == [200] * 160


def test_slots_follow_the_pool_and_stay_below_the_worker_threads() -> None:
    assert admission_slots(2) == 2
    assert admission_slots(20) == 20
    assert admission_slots(400) == 32  # 8 of anyio's 40 worker threads always spare
    with pytest.raises(ValueError, match="at least one slot"):
        AdmissionMiddleware(_noop, slots=0, wait_seconds=1)


async def _noop(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not called")


def _run(app: Any, path: str) -> dict[str, Any]:
    """One request through an ASGI app; its status, headers and body."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def go() -> None:
        scope = {"type": "http", "path": path, "headers": [], "state": {}}
        await app(scope, receive, send)

    return {"coroutine": go, "sent": sent}


def test_a_request_that_finds_no_slot_in_time_is_told_to_retry() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def holder_app(scope: Any, receive: Any, send: Any) -> None:
        entered.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = AdmissionMiddleware(holder_app, slots=1, wait_seconds=0.2)

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
        first = _run(middleware, "/api/workspaces")
        holding = asyncio.create_task(first["coroutine"]())
        await entered.wait()  # the only slot is taken
        second = _run(middleware, "/api/workspaces")
        await second["coroutine"]()  # waits 0.2 s, then is refused
        health = _run(middleware, "/healthz")  # outside /api: never queued
        health_task = asyncio.create_task(health["coroutine"]())
        await asyncio.sleep(0)
        release.set()
        await holding
        await health_task
        return first["sent"], second["sent"], health["sent"]

    first, second, health = asyncio.run(scenario())
    assert first[0]["status"] == 200
    start, body = second
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"retry-after"] == b"1"
    problem = json.loads(body["body"])
    assert problem["type"] == "/problems/unavailable"
    assert "no request slot came free within 0.2 s" in problem["detail"]
    assert health[0]["status"] == 200  # not queued behind the held /api slot
