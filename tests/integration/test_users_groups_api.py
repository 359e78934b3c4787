"""Users, groups and roles: who may manage them, the last-owner rule, invitations,
mass assignment, the plan's user limit under concurrency, and tenant isolation."""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import text

from tests.factories import TEST_PASSWORD, auth_header, login, register, unique_email

if TYPE_CHECKING:
    from pathlib import Path

    from fastapi.testclient import TestClient

    from uzo_api.db.session import Database

PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Tenant:
    subscription_id: str
    owner_id: str
    owner_email: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Member:
    id: str
    email: str
    headers: dict[str, str]


def _tenant(client: TestClient) -> Tenant:
    email = unique_email("own")
    body: Any = register(client, email=email)
    return Tenant(
        subscription_id=body["subscription"]["id"],
        owner_id=body["user"]["id"],
        owner_email=email,
        headers=auth_header(login(client, email)["access_token"]),
    )


def _member(client: TestClient, t: Tenant, tag: str = "m", **extra: Any) -> Member:
    email = unique_email(tag)
    resp = client.post(
        "/api/users", headers=t.headers, json={"email": email, "password": TEST_PASSWORD, **extra}
    )
    assert resp.status_code == 201, resp.text
    token = login(client, email)["access_token"]
    return Member(id=resp.json()["id"], email=email, headers=auth_header(token))


def _role(client: TestClient, t: Tenant, perms: list[dict[str, str]], to_user: str) -> str:
    role = client.post(
        "/api/roles",
        headers=t.headers,
        json={"name": f"role-{uuid.uuid4().hex[:8]}", "permissions": perms},
    )
    assert role.status_code == 201, role.text
    given = client.post(
        f"/api/roles/{role.json()['id']}/assignments", headers=t.headers, json={"user_id": to_user}
    )
    assert given.status_code == 201, given.text
    return str(role.json()["id"])


def _outbox_token(home: Path, email: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        for path in sorted((home / "outbox").glob("*.json"), reverse=True):
            mail = json.loads(path.read_text())
            if mail["to"] == email:
                return str(mail["body"].split("token: ", 1)[1].split()[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {email}")
        time.sleep(0.02)


@pytest.fixture
def tenant(client: TestClient) -> Tenant:
    return _tenant(client)


# -- users: who may do what ----------------------------------------------------------------------


def test_every_member_reads_users_only_admins_manage_them(
    client: TestClient, tenant: Tenant
) -> None:
    member = _member(client, tenant)
    listed = client.get("/api/users", headers=member.headers)
    assert listed.status_code == 200
    assert {u["id"] for u in listed.json()["items"]} == {tenant.owner_id, member.id}
    assert client.get(f"/api/users/{tenant.owner_id}", headers=member.headers).status_code == 200

    refused = client.post(
        "/api/users", headers=member.headers, json={"email": unique_email(), "password": "x" * 12}
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert "admin on every user" in refused.json()["detail"]
    patch = client.patch(
        f"/api/users/{member.id}", headers=member.headers, json={"full_name": "Me"}
    )
    assert patch.status_code == 403
    assert client.delete(f"/api/users/{member.id}", headers=member.headers).status_code == 403

    # a role granting admin on every user makes a user manager (not an owner manager)
    _role(client, tenant, [{"resource_type": "user", "level": "admin"}], member.id)
    made = client.post(
        "/api/users", headers=member.headers, json={"email": unique_email(), "password": "y" * 12}
    )
    assert made.status_code == 201, made.text
    assert made.json()["is_subscription_owner"] is False
    renamed = client.patch(
        f"/api/users/{made.json()['id']}", headers=member.headers, json={"full_name": "New"}
    )
    assert renamed.status_code == 200
    assert renamed.json()["full_name"] == "New"
    promote = client.patch(
        f"/api/users/{made.json()['id']}",
        headers=member.headers,
        json={"is_subscription_owner": True},
    )
    assert promote.status_code == 403
    assert promote.json()["field"] == "is_subscription_owner"
    for method, body in (("patch", {"full_name": "pwned"}), ("delete", None)):
        resp = client.request(
            method, f"/api/users/{tenant.owner_id}", headers=member.headers, json=body
        )
        assert resp.status_code == 403, (method, resp.text)
        assert "only an owner" in resp.json()["detail"]


def test_list_filters_and_pages_in_a_stable_order(client: TestClient, tenant: Tenant) -> None:
    for name in ("carol", "alice", "bob"):
        resp = client.post(
            "/api/users",
            headers=tenant.headers,
            json={
                "email": unique_email(name),
                "username": f"{name}-x",
                "full_name": f"{name.title()} Smith",
                "password": TEST_PASSWORD,
            },
        )
        assert resp.status_code == 201, resp.text
    seen: list[str] = []
    url: str | None = "/api/users?limit=2"
    while url:
        page = client.get(url, headers=tenant.headers)
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) <= 2
        seen += [u["username"] for u in page.json()["items"]]
        url = page.json()["next"]
    assert seen == sorted(seen)
    assert len(seen) == 4

    by_name = client.get("/api/users?name=SMITH", headers=tenant.headers).json()["items"]
    assert sorted(u["username"] for u in by_name) == ["alice-x", "bob-x", "carol-x"]
    assert [
        u["username"]
        for u in client.get("/api/users?name=bob", headers=tenant.headers).json()["items"]
    ] == ["bob-x"]
    by_email = client.get("/api/users?email=alice-", headers=tenant.headers).json()["items"]
    assert [u["username"] for u in by_email] == ["alice-x"]
    # LIKE wildcards are literal
    assert client.get("/api/users?name=%25", headers=tenant.headers).json()["items"] == []
    assert client.get("/api/users?name=_", headers=tenant.headers).json()["items"] == []
    assert client.get("/api/users?nme=x", headers=tenant.headers).status_code == 422


def test_duplicate_username_or_email_is_a_conflict_naming_the_field(
    client: TestClient, tenant: Tenant
) -> None:
    first = client.post(
        "/api/users",
        headers=tenant.headers,
        json={"email": unique_email(), "username": "dupe", "password": TEST_PASSWORD},
    )
    assert first.status_code == 201
    same_name = client.post(
        "/api/users",
        headers=tenant.headers,
        json={"email": unique_email(), "username": "dupe", "password": TEST_PASSWORD},
    )
    assert same_name.status_code == 409
    assert same_name.json()["field"] == "username"
    same_email = client.post(
        "/api/users",
        headers=tenant.headers,
        json={"email": tenant.owner_email.upper(), "password": TEST_PASSWORD},
    )
    assert same_email.status_code == 409
    assert same_email.json()["field"] == "email"


# -- invitations -----------------------------------------------------------------------------------


def test_a_user_without_a_password_is_invited_by_mail(
    client: TestClient, tenant: Tenant, uzo_home: Path
) -> None:
    email = unique_email("invited")
    resp = client.post("/api/users", headers=tenant.headers, json={"email": email})
    assert resp.status_code == 201, resp.text
    assert resp.json()["invitation_sent"] is True
    token = _outbox_token(uzo_home, email)
    # nobody knows the placeholder password
    assert (
        client.post("/api/auth/login", json={"email": email, "password": TEST_PASSWORD}).status_code
        == 401
    )
    chosen = "my own chosen passphrase"
    done = client.post("/api/auth/reset-password", json={"token": token, "new_password": chosen})
    assert done.status_code == 204
    login(client, email, chosen)
    again = client.post(
        "/api/auth/reset-password", json={"token": token, "new_password": "another passphrase"}
    )
    assert again.status_code == 422  # single use

    with_password = client.post(
        "/api/users", headers=tenant.headers, json={"email": unique_email(), "password": "z" * 12}
    )
    assert with_password.json()["invitation_sent"] is False


def test_a_refused_creation_mails_nothing(
    client: TestClient, tenant: Tenant, uzo_home: Path
) -> None:
    email = unique_email("never")
    client.post("/api/users", headers=tenant.headers, json={"email": email, "username": "same"})
    _outbox_token(uzo_home, email)
    other = unique_email("never2")
    dup = client.post(
        "/api/users", headers=tenant.headers, json={"email": other, "username": "same"}
    )
    assert dup.status_code == 409
    time.sleep(0.3)
    with pytest.raises(AssertionError, match="no mail"):
        _outbox_token(uzo_home, other, timeout=0.2)


# -- mass assignment -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "00000000-0000-4000-8000-000000000001"),
        ("subscription_id", "00000000-0000-4000-8000-000000000002"),
        ("email", "someone-else@example.com"),
        ("password_hash", "$argon2id$v=19$m=65536,t=3,p=4$forged"),
        ("password", "a new password here"),
        ("deleted_at", "2020-01-01T00:00:00Z"),
        ("created_at", "2020-01-01T00:00:00Z"),
    ],
)
def test_a_patch_cannot_set_protected_fields(
    client: TestClient, tenant: Tenant, database: Database, field: str, value: str
) -> None:
    member = _member(client, tenant)
    with database.owner_engine.connect() as conn:
        before = conn.execute(text("SELECT * FROM users WHERE id = :id"), {"id": member.id}).one()
    resp = client.patch(
        f"/api/users/{member.id}",
        headers=tenant.headers,
        json={field: value, "full_name": "Changed"},
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == f"body.{field}"
    with database.owner_engine.connect() as conn:
        after = conn.execute(text("SELECT * FROM users WHERE id = :id"), {"id": member.id}).one()
    assert after == before  # nothing applied, not even the allowed field


@pytest.mark.parametrize(
    "extra",
    [
        {"is_subscription_owner": True},
        {"subscription_id": "00000000-0000-4000-8000-000000000002"},
        {"password_hash": "x"},
        {"is_active": False},
    ],
)
def test_a_creation_cannot_set_protected_fields(
    client: TestClient, tenant: Tenant, extra: dict[str, Any]
) -> None:
    resp = client.post(
        "/api/users",
        headers=tenant.headers,
        json={"email": unique_email(), "password": TEST_PASSWORD, **extra},
    )
    assert resp.status_code == 422
    assert resp.json()["field"] == f"body.{next(iter(extra))}"


def test_null_is_refused_for_fields_that_cannot_be_null(client: TestClient, tenant: Tenant) -> None:
    member = _member(client, tenant)
    for field in ("username", "is_active", "is_subscription_owner"):
        resp = client.patch(f"/api/users/{member.id}", headers=tenant.headers, json={field: None})
        assert resp.status_code == 422, field
        assert resp.json()["field"] == f"body.{field}"
    cleared = client.patch(
        f"/api/users/{member.id}", headers=tenant.headers, json={"full_name": None}
    )
    assert cleared.status_code == 200
    assert cleared.json()["full_name"] is None


# -- the last owner --------------------------------------------------------------------------------


def test_the_last_owner_cannot_be_removed_deactivated_or_demoted(
    client: TestClient, tenant: Tenant
) -> None:
    me = f"/api/users/{tenant.owner_id}"
    for method, body in (
        ("patch", {"is_subscription_owner": False}),
        ("patch", {"is_active": False}),
        ("patch", {"is_active": False, "is_subscription_owner": False}),
        ("delete", None),
    ):
        resp = client.request(method, me, headers=tenant.headers, json=body)
        assert resp.status_code == 409, (method, body, resp.text)
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert "at least one active owner" in resp.json()["detail"]
    still = client.get(me, headers=tenant.headers).json()
    assert still["is_subscription_owner"] is True
    assert still["is_active"] is True

    # a second owner first: then the first may step down
    other = _member(client, tenant, "second")
    promoted = client.patch(
        f"/api/users/{other.id}", headers=tenant.headers, json={"is_subscription_owner": True}
    )
    assert promoted.status_code == 200
    assert promoted.json()["is_subscription_owner"] is True
    # an inactive owner does not count
    off = client.patch(f"/api/users/{other.id}", headers=tenant.headers, json={"is_active": False})
    assert off.status_code == 200
    assert (
        client.patch(me, headers=tenant.headers, json={"is_subscription_owner": False}).status_code
        == 409
    )
    back = client.patch(f"/api/users/{other.id}", headers=tenant.headers, json={"is_active": True})
    assert back.status_code == 200
    stepped_down = client.patch(me, headers=tenant.headers, json={"is_subscription_owner": False})
    assert stepped_down.status_code == 200, stepped_down.text
    # the new owner is now the last one
    new_owner = auth_header(login(client, other.email)["access_token"])
    last = client.delete(f"/api/users/{other.id}", headers=new_owner)
    assert last.status_code == 409
    # and the former owner has lost the owner's powers
    assert client.get(me, headers=tenant.headers).json()["is_subscription_owner"] is False
    refused = client.post(
        "/api/users", headers=tenant.headers, json={"email": unique_email(), "password": "q" * 12}
    )
    assert refused.status_code == 403


def test_two_owners_demoting_each_other_at_once_leave_one(
    client: TestClient, tenant: Tenant
) -> None:
    other = _member(client, tenant, "rival")
    client.patch(
        f"/api/users/{other.id}", headers=tenant.headers, json={"is_subscription_owner": True}
    )
    other_headers = auth_header(login(client, other.email)["access_token"])
    barrier = threading.Barrier(2)

    def demote(headers: dict[str, str], target: str) -> int:
        barrier.wait()
        body = {"is_subscription_owner": False}
        return client.patch(f"/api/users/{target}", headers=headers, json=body).status_code

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(
            pool.map(
                lambda a: demote(*a),
                [(tenant.headers, other.id), (other_headers, tenant.owner_id)],
            )
        )
    assert codes[0] == 200
    assert codes[1] in (403, 409)  # refused: the last owner, or no longer an owner at all
    owners = [
        u
        for u in client.get("/api/users", headers=tenant.headers).json()["items"]
        if u["is_subscription_owner"]
    ]
    assert len(owners) == 1


# -- deleting --------------------------------------------------------------------------------------


def test_deleting_a_user_revokes_sessions_and_api_keys(client: TestClient, tenant: Tenant) -> None:
    member = _member(client, tenant)
    tokens = login(client, member.email)
    key = client.post("/api/auth/api-keys", headers=member.headers, json={"name": "k"}).json()
    assert client.get("/api/auth/me", headers=auth_header(key["key"])).status_code == 200

    gone = client.delete(f"/api/users/{member.id}", headers=tenant.headers)
    assert gone.status_code == 204
    assert client.get("/api/auth/me", headers=member.headers).status_code == 401
    assert client.get("/api/auth/me", headers=auth_header(key["key"])).status_code == 401
    refresh = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401
    login_again = client.post(
        "/api/auth/login", json={"email": member.email, "password": TEST_PASSWORD}
    )
    assert login_again.status_code == 401
    assert client.get(f"/api/users/{member.id}", headers=tenant.headers).status_code == 404
    assert client.delete(f"/api/users/{member.id}", headers=tenant.headers).status_code == 404
    listed = client.get("/api/users", headers=tenant.headers).json()["items"]
    assert member.id not in {u["id"] for u in listed}


def test_deactivating_a_user_ends_their_sessions(client: TestClient, tenant: Tenant) -> None:
    member = _member(client, tenant)
    tokens = login(client, member.email)
    off = client.patch(f"/api/users/{member.id}", headers=tenant.headers, json={"is_active": False})
    assert off.status_code == 200
    assert off.json()["is_active"] is False
    assert client.get("/api/auth/me", headers=member.headers).status_code == 401
    refresh = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401
    client.patch(f"/api/users/{member.id}", headers=tenant.headers, json={"is_active": True})
    login(client, member.email)  # reactivated: a new login works


# -- the plan's user limit -------------------------------------------------------------------------


def test_the_last_free_user_slot_goes_to_exactly_one_of_many_concurrent_creations(
    client: TestClient, tenant: Tenant
) -> None:
    # Standard allows 5 users; the owner is one of them
    for _ in range(3):
        _member(client, tenant)
    n = 8
    barrier = threading.Barrier(n)

    def create(_: int) -> Any:
        barrier.wait()
        return client.post(
            "/api/users",
            headers=tenant.headers,
            json={"email": unique_email("race"), "password": TEST_PASSWORD},
        )

    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(create, range(n)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [403] * (n - 1), [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 403).json()
    assert refused["type"] == "/problems/plan-limit"
    assert refused["limit"] == {
        "name": "max_users",
        "allowed": 5,
        "used": 5,
        "plan": "standard",
        "upgrade_to": "premium",
    }
    users = client.get("/api/users", headers=tenant.headers).json()["items"]
    assert len(users) == 5
    # a deleted user frees the slot
    victim = next(u for u in users if not u["is_subscription_owner"])
    assert client.delete(f"/api/users/{victim['id']}", headers=tenant.headers).status_code == 204
    _member(client, tenant, "after")


# -- groups ----------------------------------------------------------------------------------------


def test_groups_and_members(client: TestClient, tenant: Tenant) -> None:
    member = _member(client, tenant)
    made = client.post(
        "/api/groups", headers=tenant.headers, json={"name": "analysts", "description": "d"}
    )
    assert made.status_code == 201, made.text
    group = made.json()
    assert group["name"] == "analysts"
    assert group["created_by"] == tenant.owner_id
    dup = client.post("/api/groups", headers=tenant.headers, json={"name": "analysts"})
    assert dup.status_code == 409
    assert dup.json()["field"] == "name"
    base = f"/api/groups/{group['id']}"
    renamed = client.patch(base, headers=tenant.headers, json={"name": "data", "description": None})
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["description"]) == ("data", None)
    assert client.patch(base, headers=tenant.headers, json={"name": None}).status_code == 422

    added = client.post(f"{base}/members", headers=tenant.headers, json={"user_id": member.id})
    assert added.status_code == 201, added.text
    assert added.json()["user_id"] == member.id
    assert added.json()["added_by"] == tenant.owner_id
    twice = client.post(f"{base}/members", headers=tenant.headers, json={"user_id": member.id})
    assert twice.status_code == 409
    client.post(f"{base}/members", headers=tenant.headers, json={"user_id": tenant.owner_id})
    members = client.get(f"{base}/members?limit=1", headers=tenant.headers)
    assert members.status_code == 200
    first = members.json()["items"]
    rest = client.get(members.json()["next"], headers=tenant.headers).json()["items"]
    assert {m["user_id"] for m in first + rest} == {member.id, tenant.owner_id}
    nobody = client.post(
        f"{base}/members", headers=tenant.headers, json={"user_id": str(uuid.uuid4())}
    )
    assert nobody.status_code == 404

    # members read, only group admins manage
    assert client.get("/api/groups", headers=member.headers).status_code == 200
    assert client.get(f"{base}/members", headers=member.headers).status_code == 200
    for method, url, body in (
        ("post", "/api/groups", {"name": "mine"}),
        ("patch", base, {"name": "x"}),
        ("delete", base, None),
        ("post", f"{base}/members", {"user_id": member.id}),
        ("delete", f"{base}/members/{member.id}", None),
    ):
        resp = client.request(method, url, headers=member.headers, json=body)
        assert resp.status_code == 403, (method, url, resp.text)

    removed = client.delete(f"{base}/members/{member.id}", headers=tenant.headers)
    assert removed.status_code == 204
    again = client.delete(f"{base}/members/{member.id}", headers=tenant.headers)
    assert again.status_code == 404
    assert client.delete(base, headers=tenant.headers).status_code == 204
    assert client.get(base, headers=tenant.headers).status_code == 404


# -- roles -----------------------------------------------------------------------------------------


def test_roles_permissions_and_assignments(client: TestClient, tenant: Tenant) -> None:
    member = _member(client, tenant)
    group = client.post("/api/groups", headers=tenant.headers, json={"name": "g"}).json()
    made = client.post(
        "/api/roles",
        headers=tenant.headers,
        json={
            "name": "operator",
            "permissions": [
                {"resource_type": "workflow", "level": "execute"},
                {"resource_type": "connector", "level": "read"},
            ],
        },
    )
    assert made.status_code == 201, made.text
    role = made.json()
    assert role["is_system"] is False
    assert role["permissions"] == [
        {"resource_type": "connector", "level": "read"},
        {"resource_type": "workflow", "level": "execute"},
    ]
    base = f"/api/roles/{role['id']}"
    assert (
        client.post("/api/roles", headers=tenant.headers, json={"name": "operator"}).status_code
        == 409
    )
    replaced = client.put(
        f"{base}/permissions",
        headers=tenant.headers,
        json={"permissions": [{"resource_type": "*", "level": "read"}]},
    )
    assert replaced.status_code == 200
    assert replaced.json()["permissions"] == [{"resource_type": "*", "level": "read"}]
    for bad in (
        [{"resource_type": "job", "level": "read"}, {"resource_type": "job", "level": "admin"}],
        [{"resource_type": "spaceship", "level": "read"}],
        [{"resource_type": "job", "level": "god"}],
    ):
        resp = client.put(f"{base}/permissions", headers=tenant.headers, json={"permissions": bad})
        assert resp.status_code == 422, bad
    renamed = client.patch(base, headers=tenant.headers, json={"name": "ops"})
    assert renamed.json()["name"] == "ops"

    to_user = client.post(
        f"{base}/assignments", headers=tenant.headers, json={"user_id": member.id}
    )
    assert to_user.status_code == 201, to_user.text
    to_group = client.post(
        f"{base}/assignments", headers=tenant.headers, json={"group_id": group["id"]}
    )
    assert to_group.status_code == 201
    assert to_group.json()["group_id"] == group["id"]
    dup = client.post(f"{base}/assignments", headers=tenant.headers, json={"user_id": member.id})
    assert dup.status_code == 409
    both = client.post(
        f"{base}/assignments",
        headers=tenant.headers,
        json={"user_id": member.id, "group_id": group["id"]},
    )
    assert both.status_code == 422
    assert client.post(f"{base}/assignments", headers=tenant.headers, json={}).status_code == 422
    page = client.get(f"{base}/assignments?limit=1", headers=tenant.headers).json()
    rest = client.get(page["next"], headers=tenant.headers).json()
    assert [a["id"] for a in page["items"] + rest["items"]] == [
        to_user.json()["id"],
        to_group.json()["id"],
    ]
    assert rest["next"] is None

    # members read roles, only role admins manage them
    assert client.get("/api/roles", headers=member.headers).status_code == 200
    assert client.get(base, headers=member.headers).status_code == 200
    assert client.post("/api/roles", headers=member.headers, json={"name": "x"}).status_code == 403
    assert client.delete(base, headers=member.headers).status_code == 403

    gone = client.delete(f"{base}/assignments/{to_user.json()['id']}", headers=tenant.headers)
    assert gone.status_code == 204
    again = client.delete(f"{base}/assignments/{to_user.json()['id']}", headers=tenant.headers)
    assert again.status_code == 404
    assert client.delete(base, headers=tenant.headers).status_code == 204
    assert client.get(base, headers=tenant.headers).status_code == 404


def test_a_role_manager_cannot_hand_out_more_than_they_hold(
    client: TestClient, tenant: Tenant
) -> None:
    manager = _member(client, tenant, "mgr")
    other = _member(client, tenant, "other")
    _role(
        client,
        tenant,
        [
            {"resource_type": "role", "level": "admin"},
            {"resource_type": "group", "level": "admin"},
            {"resource_type": "workflow", "level": "execute"},
        ],
        manager.id,
    )
    h = manager.headers
    for perms in (
        [{"resource_type": "*", "level": "owner"}],
        [{"resource_type": "workflow", "level": "admin"}],
        [{"resource_type": "user", "level": "admin"}],
    ):
        resp = client.post("/api/roles", headers=h, json={"name": "grab", "permissions": perms})
        assert resp.status_code == 403, perms
        assert "cannot hand out" in resp.json()["detail"]
    fine = client.post(
        "/api/roles",
        headers=h,
        json={"name": "runner", "permissions": [{"resource_type": "workflow", "level": "read"}]},
    )
    assert fine.status_code == 201, fine.text
    widen = client.put(
        f"/api/roles/{fine.json()['id']}/permissions",
        headers=h,
        json={"permissions": [{"resource_type": "workflow", "level": "owner"}]},
    )
    assert widen.status_code == 403
    # a role made by the owner with more than the manager holds cannot be handed out by them
    strong = client.post(
        "/api/roles",
        headers=tenant.headers,
        json={"name": "strong", "permissions": [{"resource_type": "workspace", "level": "admin"}]},
    ).json()
    assign = client.post(
        f"/api/roles/{strong['id']}/assignments", headers=h, json={"user_id": manager.id}
    )
    assert assign.status_code == 403
    # nor through a group that holds it
    group = client.post("/api/groups", headers=tenant.headers, json={"name": "strong-g"}).json()
    client.post(
        f"/api/roles/{strong['id']}/assignments",
        headers=tenant.headers,
        json={"group_id": group["id"]},
    )
    join = client.post(
        f"/api/groups/{group['id']}/members", headers=h, json={"user_id": manager.id}
    )
    assert join.status_code == 403
    weak = client.post(
        f"/api/roles/{fine.json()['id']}/assignments", headers=h, json={"user_id": other.id}
    )
    assert weak.status_code == 201


# -- tenant isolation ------------------------------------------------------------------------------


def test_another_tenants_users_groups_and_roles_are_not_found(client: TestClient) -> None:
    a, b = _tenant(client), _tenant(client)
    b_member = _member(client, b)
    b_group = client.post("/api/groups", headers=b.headers, json={"name": "secret"}).json()
    b_role = client.post("/api/roles", headers=b.headers, json={"name": "secret"}).json()
    a_group = client.post("/api/groups", headers=a.headers, json={"name": "mine"}).json()
    a_role = client.post("/api/roles", headers=a.headers, json={"name": "mine"}).json()

    for method, url, body in (
        ("get", f"/api/users/{b_member.id}", None),
        ("patch", f"/api/users/{b_member.id}", {"full_name": "pwned"}),
        ("delete", f"/api/users/{b_member.id}", None),
        ("delete", f"/api/users/{b.owner_id}", None),
        ("get", f"/api/groups/{b_group['id']}", None),
        ("patch", f"/api/groups/{b_group['id']}", {"name": "pwned"}),
        ("delete", f"/api/groups/{b_group['id']}", None),
        ("get", f"/api/groups/{b_group['id']}/members", None),
        ("post", f"/api/groups/{b_group['id']}/members", {"user_id": a.owner_id}),
        ("post", f"/api/groups/{a_group['id']}/members", {"user_id": b_member.id}),
        ("get", f"/api/roles/{b_role['id']}", None),
        ("delete", f"/api/roles/{b_role['id']}", None),
        ("put", f"/api/roles/{b_role['id']}/permissions", {"permissions": []}),
        ("post", f"/api/roles/{a_role['id']}/assignments", {"user_id": b_member.id}),
        ("post", f"/api/roles/{a_role['id']}/assignments", {"group_id": b_group["id"]}),
        ("post", f"/api/roles/{b_role['id']}/assignments", {"user_id": a.owner_id}),
    ):
        resp = client.request(method, url, headers=a.headers, json=body)
        assert resp.status_code == 404, (method, url, resp.text)
        text_ = resp.text
        assert b_member.email not in text_
        assert "secret" not in text_

    users = client.get("/api/users", headers=a.headers).json()["items"]
    assert {u["id"] for u in users} == {a.owner_id}
    assert [g["name"] for g in client.get("/api/groups", headers=a.headers).json()["items"]] == [
        "mine"
    ]
    assert [r["name"] for r in client.get("/api/roles", headers=a.headers).json()["items"]] == [
        "mine"
    ]
    found = client.get(f"/api/users?email={b_member.email}", headers=a.headers).json()
    assert found["items"] == []
    # B is untouched
    assert client.get(f"/api/users/{b_member.id}", headers=b.headers).json()["full_name"] is None
    assert client.get(f"/api/groups/{b_group['id']}", headers=b.headers).status_code == 200
