"""GET /api/audit/logs, /server and /changes: filters, newest-first cursor pages, who may
read (owner, a role with read on audit, the plan's feature), tenant isolation and a
platform admin's view across tenants; and the server_logs batch writer behind them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from tests.factories import TEST_PASSWORD, auth_header, login, register, unique_email
from uzo_api.schemas.auth import RegisterRequest
from uzo_api.server_log_writer import (
    EXECUTION_LOGS,
    SERVER_LOGS,
    LogBatchWriter,
    request_record,
)
from uzo_api.services.platform_admins import create_platform_admin

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from uzo_api.db.session import Database


class Tenant:
    def __init__(self, client: TestClient, *, premium: bool = True) -> None:
        email = unique_email("aud")
        body: Any = register(client, email=email)
        self.subscription_id = body["subscription"]["id"]
        self.owner_id = body["user"]["id"]
        self.headers = auth_header(login(client, email)["access_token"])
        if premium:
            up = client.post(
                "/api/subscriptions/upgrade", headers=self.headers, json={"plan_key": "premium"}
            )
            assert up.status_code == 200, up.text


def _groups(client: TestClient, t: Tenant, n: int) -> list[str]:
    out = []
    for i in range(n):
        made = client.post("/api/groups", headers=t.headers, json={"name": f"g{i}"})
        assert made.status_code == 201, made.text
        out.append(made.json()["id"])
    return out


def _all(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> list[Any]:
    items: list[Any] = []
    url: str | None = path
    query: dict[str, Any] | None = params
    while url is not None:
        page = client.get(url, headers=headers, params=query)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        url, query = page.json()["next"], None
    return items


def test_audit_logs_filter_and_page_newest_first(client: TestClient) -> None:
    t = Tenant(client)
    groups = _groups(client, t, 5)
    listed = _all(
        client, "/api/audit/logs", t.headers, resource_type="group", action="group.create", limit=2
    )
    assert [r["resource_id"] for r in listed] == list(reversed(groups))
    stamps = [(r["created_at"], r["id"]) for r in listed]
    assert stamps == sorted(stamps, reverse=True)
    one = client.get(
        "/api/audit/logs", headers=t.headers, params={"resource_id": groups[2]}
    ).json()["items"]
    assert [(r["action"], r["user_id"]) for r in one] == [("group.create", t.owner_id)]
    assert one[0]["request_id"]

    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    empty = client.get(
        "/api/audit/logs", headers=t.headers, params={"from": later.isoformat()}
    ).json()
    assert empty["items"] == []
    before = client.get(
        "/api/audit/logs",
        headers=t.headers,
        params={"to": later.isoformat(), "user_id": t.owner_id, "resource_type": "group"},
    ).json()["items"]
    assert len(before) == 5
    backwards = client.get(
        "/api/audit/logs",
        headers=t.headers,
        params={"from": later.isoformat(), "to": dt.datetime.now(dt.UTC).isoformat()},
    )
    assert backwards.status_code == 422


def test_change_history_shows_before_and_after(client: TestClient) -> None:
    t = Tenant(client)
    (gid,) = _groups(client, t, 1)
    renamed = client.patch(f"/api/groups/{gid}", headers=t.headers, json={"name": "renamed"})
    assert renamed.status_code == 200
    rows = client.get(
        "/api/audit/changes", headers=t.headers, params={"table": "groups", "record_id": gid}
    ).json()["items"]
    assert [r["operation"] for r in rows] == ["update", "insert"]
    assert rows[0]["old_data"]["group_name"] == "g0"
    assert rows[0]["new_data"]["group_name"] == "renamed"
    assert rows[1]["old_data"] is None


def test_a_tenant_reads_only_its_own_rows(client: TestClient) -> None:
    a, b = Tenant(client), Tenant(client)
    (gid,) = _groups(client, a, 1)
    for path in ("/api/audit/logs", "/api/audit/changes"):
        seen = _all(client, path, b.headers)
        assert {r["subscription_id"] for r in seen} == {b.subscription_id}
        assert gid not in str(seen)
    asked = client.get(
        "/api/audit/logs", headers=b.headers, params={"subscription_id": a.subscription_id}
    )
    assert asked.json()["items"] == []


def test_who_may_read_the_audit_trail(client: TestClient) -> None:
    standard = Tenant(client, premium=False)
    refused = client.get("/api/audit/logs", headers=standard.headers)
    assert refused.status_code == 403
    assert "audit_logs" in refused.json()["detail"]

    t = Tenant(client)
    email = unique_email("mem")
    made = client.post(
        "/api/users", headers=t.headers, json={"email": email, "password": TEST_PASSWORD}
    )
    member = auth_header(login(client, email)["access_token"])
    assert client.get("/api/audit/logs", headers=member).status_code == 403
    role = client.post(
        "/api/roles",
        headers=t.headers,
        json={"name": "auditor", "permissions": [{"resource_type": "audit", "level": "read"}]},
    ).json()
    given = client.post(
        f"/api/roles/{role['id']}/assignments",
        headers=t.headers,
        json={"user_id": made.json()["id"]},
    )
    assert given.status_code == 201, given.text
    for path in ("/api/audit/logs", "/api/audit/server", "/api/audit/changes"):
        assert client.get(path, headers=member).status_code == 200, path
    # reading is all the role gives: all_tenants stays a platform admin's
    for who in (member, t.headers):
        every = client.get("/api/audit/logs", headers=who, params={"all_tenants": True})
        assert every.status_code == 403


def test_a_platform_admin_reads_every_tenant(client: TestClient, database: Database) -> None:
    email = unique_email("padmin")
    create_platform_admin(
        database, RegisterRequest(email=email, password=TEST_PASSWORD, company_name="Platform")
    )
    admin = auth_header(login(client, email)["access_token"])
    a, b = Tenant(client), Tenant(client)
    (ga,) = _groups(client, a, 1)
    (gb,) = _groups(client, b, 1)
    everyone = client.get(
        "/api/audit/logs",
        headers=admin,
        params={"all_tenants": True, "resource_type": "group", "limit": 200},
    ).json()["items"]
    assert {ga, gb} <= {r["resource_id"] for r in everyone}
    only_b = client.get(
        "/api/audit/changes",
        headers=admin,
        params={"all_tenants": True, "subscription_id": b.subscription_id},
    ).json()["items"]
    assert only_b
    assert {r["subscription_id"] for r in only_b} == {b.subscription_id}
    # without all_tenants the admin is a tenant like any other (a standard plan here)
    assert client.get("/api/audit/logs", headers=admin).status_code == 403


# -- server_logs ------------------------------------------------------------------------


def test_each_request_leaves_a_server_log_row(client: TestClient, database: Database) -> None:
    t = Tenant(client)
    (gid,) = _groups(client, t, 1)
    seen = client.get(f"/api/groups/{gid}", headers=t.headers)
    missing = client.get(f"/api/groups/{uuid.uuid4()}", headers=t.headers)
    anonymous = client.get("/api/users")
    writer = client.app.state.server_logs  # type: ignore[attr-defined]
    writer.flush()
    with database.owner_engine.connect() as conn:
        rows = {
            r.request_id: r
            for r in conn.execute(
                text(
                    "SELECT request_id, method, endpoint, response_status, response_time_ms, "
                    "subscription_id, user_id, ip_address FROM server_logs "
                    "WHERE request_id = ANY(:ids)"
                ),
                {"ids": [x.headers["x-request-id"] for x in (seen, missing, anonymous)]},
            )
        }
    row = rows[seen.headers["x-request-id"]]
    assert (row.method, row.endpoint, row.response_status) == ("GET", "/api/groups/{group_id}", 200)
    assert (str(row.subscription_id), str(row.user_id)) == (t.subscription_id, t.owner_id)
    assert row.response_time_ms >= 0
    assert row.ip_address
    assert rows[missing.headers["x-request-id"]].response_status == 404
    assert gid not in rows[missing.headers["x-request-id"]].endpoint
    unauthenticated = rows[anonymous.headers["x-request-id"]]
    assert (unauthenticated.response_status, unauthenticated.subscription_id) == (401, None)

    listed = client.get(
        "/api/audit/server",
        headers=t.headers,
        params={"route": "/api/groups/{group_id}", "status": 200, "method": "get"},
    ).json()["items"]
    assert [r["request_id"] for r in listed] == [seen.headers["x-request-id"]]
    assert listed[0]["duration_ms"] == row.response_time_ms


def test_the_writer_drops_beyond_its_queue_and_counts_failures(database: Database) -> None:
    writer = LogBatchWriter(SERVER_LOGS, capacity=2, batch_size=10, flush_seconds=60)

    def record(subscription_id: uuid.UUID | None) -> tuple[Any, ...]:
        return request_record(
            request_id=uuid.uuid4().hex, method="GET", endpoint="/x", status=200,
            duration_ms=1.0, subscription_id=subscription_id, user_id=None, ip=None,
        )  # fmt: skip

    writer.start(url=database.urls.app)
    try:
        # a row naming a subscription that does not exist fails its batch (the writer
        # connection's first, which also made its scratch table): counted, not raised
        assert writer.put(record(uuid.uuid4()))
        assert writer.flush() == 1
        assert (writer.stats.failed, writer.stats.written) == (1, 0)
        assert writer.put(record(None))
        assert writer.put(record(None))
        assert not writer.put(record(None))  # the queue holds two: dropped, never waited for
        assert writer.stats.dropped == 1
        assert writer.flush() == 2
        assert (writer.stats.failed, writer.stats.written) == (1, 2)
    finally:
        writer.stop()
    assert not writer.put(record(None))  # stopped: refused, never blocking


def test_one_batch_holds_rows_of_several_tenants(client: TestClient, database: Database) -> None:
    """Each tenant's rows go in under that tenant (RLS checks every row against it)."""
    a, b = Tenant(client, premium=False), Tenant(client, premium=False)
    execution = uuid.uuid4()
    now = dt.datetime.now(dt.UTC)
    rows = [
        (now, uuid.UUID(sid), execution, uuid.uuid4(), f"n{i}", "INFO", "line", '{"i": 1}', None)
        for i, sid in enumerate([a.subscription_id, b.subscription_id, a.subscription_id])
    ]
    writer = LogBatchWriter(EXECUTION_LOGS)
    writer.start(url=database.urls.app)
    try:
        for row in rows:
            writer.put(row)
        writer.flush()
    finally:
        writer.stop()
    assert writer.stats.written == 3
    with database.owner_engine.connect() as conn:
        counts = dict(
            conn.execute(
                text(
                    "SELECT subscription_id::text, count(*) FROM execution_logs "
                    "WHERE execution_id = :e GROUP BY 1"
                ),
                {"e": execution},
            ).all()
        )
        details = conn.execute(
            text("SELECT DISTINCT log_details->>'i' FROM execution_logs WHERE execution_id = :e"),
            {"e": execution},
        ).scalar_one()
    assert counts == {a.subscription_id: 2, b.subscription_id: 1}
    assert details == "1"
