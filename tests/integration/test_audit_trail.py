"""The audit trail is written with the change: one row per successful change route (with
the request id of the response), none for a change that rolls back at commit, and no
secret in any audit row or before/after image."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.factories import TEST_PASSWORD, auth_header, login, register, unique_email
from uzo_api.app import create_app

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from uzo_api.db.session import Database
    from uzo_api.settings import Settings

SECRET = "wJalrXUtnFEMI-audit-secret-value"
NEW_SECRET = "second-secret-after-edit-42"
MASK = "********"

#: change operations of the services this trail covers, and why a few write no row
COVERED_TAGS = {"users", "groups", "permissions", "connectors", "features"}
NOT_CHANGES = {"testConnector"}  # a connection test changes nothing of the tenant's
AUTH_CHANGES = {"createApiKey", "revokeApiKey"}


class Tenant:
    def __init__(self, client: TestClient) -> None:
        email = unique_email("audit")
        body: Any = register(client, email=email)
        self.subscription_id = body["subscription"]["id"]
        self.owner_id = body["user"]["id"]
        self.headers = auth_header(login(client, email)["access_token"])


def _rows(database: Database, request_id: str) -> list[Any]:
    with database.owner_engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT action, resource_type, resource_id, subscription_id, user_id "
                    "FROM audit_logs WHERE request_id = :r"
                ),
                {"r": request_id},
            ).all()
        )


def test_every_change_route_leaves_exactly_one_audit_row_with_its_request_id(
    client: TestClient, database: Database
) -> None:
    t = Tenant(client)
    h = t.headers
    walked: set[str] = set()
    ids: dict[str, str] = {}

    def step(op: str, method: str, path: str, action: str, rtype: str, **kw: Any) -> Any:
        resp = client.request(method, path.format(**ids), headers=h, **kw)
        assert resp.status_code in (200, 201, 204), (op, resp.text)
        body = resp.json() if resp.content else {}
        rows = _rows(database, resp.headers["x-request-id"])
        assert len(rows) == 1, (op, rows)
        got_action, got_type, resource_id, sid, uid = rows[0]
        assert (got_action, got_type) == (action, rtype), op
        assert str(sid) == t.subscription_id, op
        assert str(uid) == t.owner_id, op
        walked.add(op)
        return body, resource_id

    ws = client.post("/api/workspaces", headers=h, json={"name": "w"}).json()
    ids["ws"] = ws["id"]
    user, rid = step(
        "createUser", "POST", "/api/users", "user.create", "user",
        json={"email": unique_email("u"), "password": TEST_PASSWORD},
    )  # fmt: skip
    ids["user"] = user["id"]
    assert str(rid) == user["id"]
    step("updateUser", "PATCH", "/api/users/{user}", "user.update", "user",
         json={"full_name": "Ada"})  # fmt: skip
    step("updateUser", "PATCH", "/api/users/{user}", "user.deactivate", "user",
         json={"is_active": False})  # fmt: skip
    step("updateUser", "PATCH", "/api/users/{user}", "user.activate", "user",
         json={"is_active": True})  # fmt: skip
    group, rid = step("createGroup", "POST", "/api/groups", "group.create", "group",
                      json={"name": "g"})  # fmt: skip
    ids["group"] = group["id"]
    step("updateGroup", "PATCH", "/api/groups/{group}", "group.update", "group",
         json={"description": "d"})  # fmt: skip
    step("addGroupMember", "POST", "/api/groups/{group}/members", "group.member_add", "group",
         json={"user_id": ids["user"]})  # fmt: skip
    step("removeGroupMember", "DELETE", "/api/groups/{group}/members/{user}",
         "group.member_remove", "group")  # fmt: skip
    perms = [{"resource_type": "workflow", "level": "read"}]
    role, _ = step("createRole", "POST", "/api/roles", "role.create", "role",
                   json={"name": "r", "permissions": perms})  # fmt: skip
    ids["role"] = role["id"]
    step("updateRole", "PATCH", "/api/roles/{role}", "role.update", "role",
         json={"description": "d"})  # fmt: skip
    step("setRolePermissions", "PUT", "/api/roles/{role}/permissions", "role.permissions_set",
         "role", json={"permissions": [{"resource_type": "job", "level": "read"}]})  # fmt: skip
    assignment, _ = step("createRoleAssignment", "POST", "/api/roles/{role}/assignments",
                         "role.assign", "role", json={"user_id": ids["user"]})  # fmt: skip
    ids["assignment"] = assignment["id"]
    step("deleteRoleAssignment", "DELETE", "/api/roles/{role}/assignments/{assignment}",
         "role.unassign", "role")  # fmt: skip
    step("deleteRole", "DELETE", "/api/roles/{role}", "role.delete", "role")
    grant, rid = step("grantPermission", "POST", "/api/permissions", "permission.grant",
                      "permission", json={"object_type": "workspace", "object_id": ids["ws"],
                                          "user_id": ids["user"], "level": "read"})  # fmt: skip
    ids["grant"] = grant["id"]
    assert str(rid) == grant["id"]
    step("revokePermission", "DELETE", "/api/permissions/{grant}", "permission.revoke",
         "permission")  # fmt: skip
    step("deleteGroup", "DELETE", "/api/groups/{group}", "group.delete", "group")
    step("deleteUser", "DELETE", "/api/users/{user}", "user.delete", "user")
    step("createUser", "POST", "/api/users", "user.invite", "user",
         json={"email": unique_email("inv")})  # fmt: skip
    connector, _ = step("createConnector", "POST", "/api/connectors", "connector.create",
                        "connector", json=_s3("c"))  # fmt: skip
    ids["conn"] = connector["id"]
    step("updateConnector", "PATCH", "/api/connectors/{conn}", "connector.update", "connector",
         json={"description": "x"})  # fmt: skip
    step("deleteConnector", "DELETE", "/api/connectors/{conn}", "connector.delete", "connector")
    key, _ = step("createApiKey", "POST", "/api/auth/api-keys", "api_key.create", "api_key",
                  json={"name": "k"})  # fmt: skip
    ids["key"] = key["id"]
    step("revokeApiKey", "DELETE", "/api/auth/api-keys/{key}", "api_key.revoke", "api_key")
    step("upgradeSubscription", "POST", "/api/subscriptions/upgrade", "subscription.upgrade",
         "subscription", json={"plan_key": "premium"})  # fmt: skip

    # every change operation of these services was walked (a new one must be added here)
    expected = AUTH_CHANGES | {
        op["operationId"]
        for ops in client.app.openapi()["paths"].values()  # type: ignore[attr-defined]
        for method, op in ops.items()
        if method in {"post", "patch", "put", "delete"} and COVERED_TAGS & set(op["tags"])
    }
    assert expected - NOT_CHANGES - walked == set()


def _s3(name: str, secret: str = SECRET) -> dict[str, Any]:
    return {
        "name": name,
        "connector_type": "s3",
        "config": {
            "bucket": "lake",
            "endpoint_url": "https://storage.example.com",
            "access_key_id": "AKIAEXAMPLE",
            "secret_access_key": secret,
        },
    }


# -- committed exactly when the change is -------------------------------------------------


@pytest.fixture
def failing_commit(database: Database) -> Iterator[Callable[[str], str]]:
    """A deferred constraint trigger that fails the commit of a row named ``boom-...``:
    the change and its audit row are in the session by then, only the commit fails."""
    with database.owner_engine.begin() as conn:
        conn.execute(
            text(
                "CREATE OR REPLACE FUNCTION test_boom() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'boom at commit'; END $$"
            )
        )
        for table, column in (("groups", "group_name"), ("users", "full_name")):
            conn.execute(
                text(
                    f"CREATE CONSTRAINT TRIGGER test_boom AFTER INSERT OR UPDATE ON {table} "
                    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                    f"WHEN (NEW.{column} LIKE 'boom-%') EXECUTE FUNCTION test_boom()"
                )
            )
    try:
        yield lambda tag: f"boom-{tag}-{uuid.uuid4().hex[:6]}"
    finally:
        with database.owner_engine.begin() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS test_boom ON groups"))
            conn.execute(text("DROP TRIGGER IF EXISTS test_boom ON users"))
            conn.execute(text("DROP FUNCTION IF EXISTS test_boom()"))


@pytest.fixture
def lenient(settings: Settings, database: Database) -> Iterator[TestClient]:
    """A client that answers a server error instead of raising it into the test."""
    with TestClient(create_app(settings, database), raise_server_exceptions=False) as c:
        yield c


def test_a_change_that_fails_at_commit_leaves_no_audit_row(
    lenient: TestClient, database: Database, failing_commit: Callable[[str], str]
) -> None:
    t = Tenant(lenient)
    boom = failing_commit("g")
    request_id = f"test-{uuid.uuid4().hex}"
    failed = lenient.post(
        "/api/groups", headers={**t.headers, "X-Request-Id": request_id}, json={"name": boom}
    )
    assert failed.status_code >= 500
    assert request_id in failed.headers["x-request-id"]
    assert _rows(database, request_id) == []
    with database.owner_engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM groups WHERE group_name = :n"), {"n": boom}
            ).scalar_one()
            == 0
        )
        assert (
            conn.execute(
                text("SELECT count(*) FROM data_change_history WHERE new_data->>'group_name' = :n"),
                {"n": boom},
            ).scalar_one()
            == 0
        )

    # an identity change (audited in the control transaction) rolls back with its row too
    user = lenient.post(
        "/api/users",
        headers=t.headers,
        json={"email": unique_email("b"), "password": TEST_PASSWORD},
    ).json()
    request_id = f"test-{uuid.uuid4().hex}"
    failed = lenient.patch(
        f"/api/users/{user['id']}",
        headers={**t.headers, "X-Request-Id": request_id},
        json={"full_name": failing_commit("u")},
    )
    assert failed.status_code >= 500
    assert _rows(database, request_id) == []

    # the same change that commits has its row
    ok = lenient.post("/api/groups", headers=t.headers, json={"name": "fine"})
    assert ok.status_code == 201
    assert [r.action for r in _rows(database, ok.headers["x-request-id"])] == ["group.create"]


# -- no secret in audit data ------------------------------------------------------------


def test_no_secret_reaches_audit_rows_or_change_history(
    client: TestClient, database: Database
) -> None:
    t = Tenant(client)
    h = t.headers
    made = client.post("/api/connectors", headers=h, json=_s3("secretive"))
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    blobs = []
    with database.owner_engine.connect() as conn:
        blobs.append(
            conn.execute(
                text("SELECT encrypted_credentials FROM connectors WHERE id = :i"), {"i": cid}
            ).scalar_one()
        )
    edits = [
        {"config": {"secret_access_key": NEW_SECRET}},
        {"config": {"bucket": "lake2", "secret_access_key": MASK}},  # a masked one: kept
        {"config": {"endpoint_url": "https://moved.example.com"}, "keep_secrets": True},
        {"name": "renamed"},
    ]
    for body in edits:
        resp = client.patch(f"/api/connectors/{cid}", headers=h, json=body)
        assert resp.status_code == 200, resp.text
        with database.owner_engine.connect() as conn:
            blobs.append(
                conn.execute(
                    text("SELECT encrypted_credentials FROM connectors WHERE id = :i"), {"i": cid}
                ).scalar_one()
            )
    user = client.post(
        "/api/users", headers=h, json={"email": unique_email("p"), "password": TEST_PASSWORD}
    ).json()
    key = client.post("/api/auth/api-keys", headers=h, json={"name": "k"}).json()
    assert client.delete(f"/api/connectors/{cid}", headers=h).status_code == 204
    assert client.patch(f"/api/users/{user['id']}", headers=h, json={"full_name": "P"}).is_success

    with database.owner_engine.connect() as conn:
        password_hash, key_hash = conn.execute(
            text(
                "SELECT u.password_hash, k.key_hash FROM users u, api_keys k "
                "WHERE u.id = :u AND k.id = :k"
            ),
            {"u": user["id"], "k": key["id"]},
        ).one()
        audit_rows = conn.execute(
            text("SELECT to_jsonb(a) FROM audit_logs a WHERE subscription_id = :s"),
            {"s": t.subscription_id},
        ).scalars()
        changes = conn.execute(
            text(
                "SELECT table_name, operation, old_data, new_data FROM data_change_history "
                "WHERE subscription_id = :s"
            ),
            {"s": t.subscription_id},
        ).all()
    dumped = json.dumps([*audit_rows, *[list(c) for c in changes]], default=str)
    forbidden = [
        SECRET,
        NEW_SECRET,
        MASK,
        password_hash,
        key_hash,
        key["key"],
        *filter(None, blobs),
    ]
    for value in forbidden:
        assert value not in dumped
    assert "encrypted_credentials" not in dumped
    assert "password_hash" not in dumped
    connector_images = [c for c in changes if c.table_name == "connectors"]
    assert [c.operation for c in connector_images].count("update") == len(edits)
    # the images still say which secrets are set and what the public config is
    last = next(c.old_data for c in connector_images if c.operation == "delete")
    assert last["secret_fields"] == ["secret_access_key"]
    assert last["connection_config"]["endpoint_url"] == "https://moved.example.com"
    assert "secret_access_key" not in last["connection_config"]
    assert last["connector_name"] == "renamed"
