"""Editions: feature flags (override > plan > default), usage, plan changes, and plan
limits that hold when many requests race for the last free slot."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import make_settings
from tests.factories import auth_header, login, register
from tests.integration.test_api_limits import LiveServer
from uzo_api.app import create_app

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

    from uzo_api.db.session import Database

PROBLEM = "application/problem+json"


def _tenant(client: TestClient) -> tuple[str, dict[str, str]]:
    tenant = register(client)
    subscription = tenant["subscription"]
    assert isinstance(subscription, dict)
    token = login(client, str(tenant["email"]))["access_token"]
    return str(subscription["id"]), auth_header(token)


def _connector(name: str) -> dict[str, object]:
    return {"name": name, "connector_type": "file", "config": {"root": "."}}


def test_a_feature_follows_the_plan_then_an_override(
    client: TestClient, database: Database
) -> None:
    subscription_id, headers = _tenant(client)
    lineage = client.get("/api/features/check/lineage", headers=headers).json()
    assert lineage["enabled"] is False
    assert lineage["source"] == "default"  # Standard has no lineage: the default (off)
    enabled = client.get("/api/features/enabled", headers=headers).json()
    assert enabled["plan_key"] == "standard"
    assert "workflow_builder" in enabled["features"]
    assert "lineage" not in enabled["features"]

    with database.owner_engine.begin() as conn:  # an operator's override for this tenant
        conn.execute(
            text(
                "INSERT INTO subscription_feature_overrides "
                "(id, subscription_id, feature_id, is_enabled, expires_at) "
                "SELECT gen_random_uuid(), :sid, id, true, :until FROM features "
                "WHERE feature_key = 'lineage'"
            ),
            {"sid": subscription_id, "until": dt.datetime.now(dt.UTC) + dt.timedelta(days=1)},
        )
    lineage = client.get("/api/features/check/lineage", headers=headers).json()
    assert lineage["enabled"] is True
    assert lineage["source"] == "override"
    missing = client.get("/api/features/check/teleport", headers=headers)
    assert missing.status_code == 404


def test_upgrade_turns_on_the_plan_features_at_once(client: TestClient) -> None:
    _, headers = _tenant(client)
    upgraded = client.post(
        "/api/subscriptions/upgrade", headers=headers, json={"plan_key": "premium"}
    )
    assert upgraded.status_code == 200, upgraded.text
    assert upgraded.json()["max_connectors"] == 50
    assert client.get("/api/features/check/lineage", headers=headers).json()["enabled"] is True
    usage = client.get("/api/features/usage/connectors", headers=headers).json()
    assert usage == {"name": "max_connectors", "allowed": 50, "used": 0, "plan_key": "premium"}
    bogus = client.post("/api/subscriptions/upgrade", headers=headers, json={"plan_key": "gold"})
    assert bogus.status_code == 422
    assert bogus.json()["field"] == "plan_key"
    assert client.get("/api/features/usage/rockets", headers=headers).status_code == 404


def test_features_of_another_tenant_are_not_affected(client: TestClient) -> None:
    _, a = _tenant(client)
    _, b = _tenant(client)
    client.post("/api/subscriptions/upgrade", headers=a, json={"plan_key": "premium"})
    assert client.get("/api/features/check/lineage", headers=b).json()["enabled"] is False


@pytest.fixture
def live(uzo_home: Path, database: Database) -> Iterator[LiveServer]:
    server = LiveServer(create_app(make_settings(uzo_home), database))
    yield server
    server.close()


@pytest.mark.slow
def test_racing_for_the_last_connector_slot_lets_exactly_one_in(
    client: TestClient, live: LiveServer
) -> None:
    """Standard allows 10 connectors: with 9 made, 12 concurrent creations race for the
    last slot. The old count-then-insert let several through; now exactly one passes."""
    _, headers = _tenant(client)
    for i in range(9):
        made = client.post("/api/connectors", headers=headers, json=_connector(f"c{i}"))
        assert made.status_code == 201, made.text
    start = threading.Barrier(12)

    def create(i: int) -> httpx.Response:
        with httpx.Client(base_url=live.url, timeout=30) as http:
            start.wait()
            return http.post("/api/connectors", headers=headers, json=_connector(f"race{i}"))

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(create, range(12)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [403] * 11, codes
    refused = next(a for a in answers if a.status_code == 403)
    assert refused.headers["content-type"].startswith(PROBLEM)
    body = refused.json()
    assert body["type"] == "/problems/plan-limit"
    assert body["limit"] == {
        "name": "max_connectors",
        "allowed": 10,
        "used": 10,
        "plan": "standard",
        "upgrade_to": "premium",
    }
    listed = client.get("/api/connectors?limit=200", headers=headers).json()["items"]
    assert len(listed) == 10

    # the upgrade lifts the limit for the very next request
    client.post("/api/subscriptions/upgrade", headers=headers, json={"plan_key": "premium"})
    after = client.post("/api/connectors", headers=headers, json=_connector("after-upgrade"))
    assert after.status_code == 201
