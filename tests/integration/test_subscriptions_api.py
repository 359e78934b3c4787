"""/api/subscriptions: platform admins manage every tenant; nobody else sees past their own.

Covers the CRUD, pagination, refusals (403 for members, 404 for foreign ids), mass
assignment, the status machine locking users out, audit rows, and the platform scope
as a hostile tenant would probe it (ADR 0013).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from tests.factories import TEST_PASSWORD, auth_header, login, register, unique_email
from uzo_api.db import platform
from uzo_api.db.models import Subscription
from uzo_api.schemas.auth import RegisterRequest
from uzo_api.services.platform_admins import create_platform_admin

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from uzo_api.db.session import Database

PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Account:
    user_id: str
    subscription_id: str
    email: str
    headers: dict[str, str]


def _admin(client: TestClient, database: Database) -> Account:
    email = unique_email("padmin")
    created = create_platform_admin(
        database,
        RegisterRequest(email=email, password=TEST_PASSWORD, company_name="Platform"),
    )
    token = login(client, email)["access_token"]
    return Account(str(created.user_id), str(created.subscription_id), email, auth_header(token))


def _tenant(client: TestClient, company: str = "Acme") -> Account:
    email = unique_email("own")
    body: Any = register(client, email=email, company=company)
    token = login(client, email)["access_token"]
    return Account(body["user"]["id"], body["subscription"]["id"], email, auth_header(token))


@pytest.fixture
def admin(client: TestClient, database: Database) -> Account:
    return _admin(client, database)


@pytest.fixture
def tenant(client: TestClient) -> Account:
    return _tenant(client)


def _create(client: TestClient, admin: Account, company: str, **extra: Any) -> dict[str, Any]:
    owner = {"email": unique_email("sub"), "password": TEST_PASSWORD}
    resp = client.post(
        "/api/subscriptions",
        headers=admin.headers,
        json={"company_name": company, "owner": owner, **extra},
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    body["owner_email"] = owner["email"]
    return body


# -- platform admin CRUD ------------------------------------------------------------------------


def test_platform_admin_creates_reads_changes_and_deletes_a_subscription(
    client: TestClient, admin: Account
) -> None:
    company = f"Globex {uuid.uuid4().hex[:8]}"
    created = _create(client, admin, company, plan_key="premium")
    sid = created["id"]
    assert (created["company_name"], created["status"], created["plan_key"]) == (
        company,
        "active",
        "premium",
    )
    assert created["infrastructure_type"] == "shared"

    # its owner signs in, owns it, and sees only it
    owner = auth_header(login(client, created["owner_email"])["access_token"])
    me = client.get("/api/auth/me", headers=owner).json()
    assert str(me["subscription"]["id"]) == sid
    assert me["user"]["is_subscription_owner"] is True
    assert client.get(f"/api/subscriptions/{sid}", headers=owner).json()["plan_key"] == "premium"

    got = client.get(f"/api/subscriptions/{sid}", headers=admin.headers)
    assert got.status_code == 200
    assert got.json()["company_name"] == company
    listed = client.get("/api/subscriptions", headers=admin.headers, params={"name": company})
    assert [s["id"] for s in listed.json()["items"]] == [sid]

    patched = client.patch(
        f"/api/subscriptions/{sid}",
        headers=admin.headers,
        json={
            "company_name": company + " Ltd",
            "plan_key": "enterprise",
            "infrastructure_type": "shared",
        },
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["company_name"], body["plan_key"], body["infrastructure_type"]) == (
        company + " Ltd",
        "enterprise",
        "shared",
    )
    # a tenant moves to its own database only with `uzo tenant provision`, never by a field
    moved = client.patch(
        f"/api/subscriptions/{sid}",
        headers=admin.headers,
        json={"infrastructure_type": "dedicated"},
    )
    assert moved.status_code == 422, moved.text
    assert "uzo tenant provision" in moved.text
    assert client.get(f"/api/subscriptions/{sid}", headers=owner).json()["plan_key"] == (
        "enterprise"
    )
    # the plan's limits apply to the tenant at once
    usage = client.get("/api/features/usage/users", headers=owner).json()
    assert (usage["plan_key"], usage["allowed"]) == ("enterprise", None)

    deleted = client.delete(f"/api/subscriptions/{sid}", headers=admin.headers)
    assert deleted.status_code == 204
    assert client.get(f"/api/subscriptions/{sid}", headers=admin.headers).status_code == 404
    assert client.delete(f"/api/subscriptions/{sid}", headers=admin.headers).status_code == 404
    listed = client.get("/api/subscriptions", headers=admin.headers, params={"name": company})
    assert listed.json()["items"] == []
    # its users are locked out
    assert client.get("/api/auth/me", headers=owner).status_code == 401
    refused = client.post(
        "/api/auth/login", json={"email": created["owner_email"], "password": TEST_PASSWORD}
    )
    assert refused.status_code == 401
    assert "deleted" in refused.json()["detail"]


def test_changes_are_audited_in_the_admins_tenant(
    client: TestClient, admin: Account, database: Database
) -> None:
    sid = _create(client, admin, f"Audited {uuid.uuid4().hex[:6]}")["id"]
    resp = client.patch(
        f"/api/subscriptions/{sid}", headers=admin.headers, json={"status": "suspended"}
    )
    assert resp.status_code == 200
    assert client.delete(f"/api/subscriptions/{sid}", headers=admin.headers).status_code == 204
    with database.tenant(uuid.UUID(admin.subscription_id)) as s:
        rows = s.execute(
            text(
                "SELECT action, user_id, changes FROM audit_logs"
                " WHERE resource_type = 'subscription' AND resource_id = :sid"
                " ORDER BY created_at"
            ),
            {"sid": sid},
        ).all()
    assert [r.action for r in rows] == [
        "subscription.create",
        "subscription.update",
        "subscription.delete",
    ]
    assert {str(r.user_id) for r in rows} == {admin.user_id}
    assert rows[1].changes == {"fields": ["status"]}


def test_an_email_with_an_account_is_a_conflict_and_leaves_nothing(
    client: TestClient, admin: Account, tenant: Account
) -> None:
    company = f"Dup {uuid.uuid4().hex[:8]}"
    resp = client.post(
        "/api/subscriptions",
        headers=admin.headers,
        json={"company_name": company, "owner": {"email": tenant.email, "password": "x" * 12}},
    )
    assert resp.status_code == 409
    assert resp.headers["content-type"].startswith(PROBLEM)
    listed = client.get("/api/subscriptions", headers=admin.headers, params={"name": company})
    assert listed.json()["items"] == []


def test_pages_follow_next_without_repeats_in_either_order(
    client: TestClient, admin: Account
) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = [_create(client, admin, f"Paged {tag} {i}")["id"] for i in range(5)]
    for sort, expected in (("company_name", ids), ("-created_at", ids[::-1])):
        seen: list[str] = []
        url: str | None = f"/api/subscriptions?name={tag}&limit=2&sort={sort}"
        pages = 0
        while url:
            resp = client.get(url, headers=admin.headers)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            seen += [s["id"] for s in body["items"]]
            if body["next"]:
                assert resp.headers["link"] == f'<{body["next"]}>; rel="next"'
            url = body["next"]
            pages += 1
        assert seen == expected, sort
        assert pages == 3
    suspended = ids[2]
    client.patch(
        f"/api/subscriptions/{suspended}", headers=admin.headers, json={"status": "suspended"}
    )
    only = client.get(
        "/api/subscriptions", headers=admin.headers, params={"name": tag, "status": "suspended"}
    )
    assert [s["id"] for s in only.json()["items"]] == [suspended]
    bad = client.get("/api/subscriptions", headers=admin.headers, params={"cursor": "nope"})
    assert bad.status_code == 422


# -- everyone else -------------------------------------------------------------------------------


def test_an_owner_reads_their_own_subscription_and_nothing_else(
    client: TestClient, admin: Account, tenant: Account
) -> None:
    other = _tenant(client, company="Other")
    own = client.get(f"/api/subscriptions/{tenant.subscription_id}", headers=tenant.headers)
    assert own.status_code == 200
    assert own.json()["id"] == tenant.subscription_id
    for foreign in (other.subscription_id, admin.subscription_id, str(uuid.uuid4())):
        resp = client.get(f"/api/subscriptions/{foreign}", headers=tenant.headers)
        assert resp.status_code == 404, foreign
        assert resp.headers["content-type"].startswith(PROBLEM)

    sid = tenant.subscription_id
    refusals = [
        client.get("/api/subscriptions", headers=tenant.headers),
        client.post(
            "/api/subscriptions",
            headers=tenant.headers,
            json={
                "company_name": "Mine",
                "owner": {"email": unique_email(), "password": TEST_PASSWORD},
            },
        ),
        client.patch(f"/api/subscriptions/{sid}", headers=tenant.headers, json={"plan_key": "x"}),
        client.delete(f"/api/subscriptions/{sid}", headers=tenant.headers),
    ]
    assert [r.status_code for r in refusals] == [403] * len(refusals)
    # another tenant's subscription is not found, as every foreign object, never a 403
    for foreign in (other.subscription_id, str(uuid.uuid4())):
        changed = client.patch(
            f"/api/subscriptions/{foreign}", headers=tenant.headers, json={"status": "suspended"}
        )
        deleted = client.delete(f"/api/subscriptions/{foreign}", headers=tenant.headers)
        assert (changed.status_code, deleted.status_code) == (404, 404), foreign
    assert "platform admin" in refusals[0].json()["detail"]
    assert client.get(f"/api/subscriptions/{sid}", headers=tenant.headers).json()["status"] == (
        "active"
    )
    assert client.get("/api/subscriptions").status_code == 401


def test_the_owners_plan_upgrade_still_works(client: TestClient, tenant: Account) -> None:
    resp = client.post(
        "/api/subscriptions/upgrade", headers=tenant.headers, json={"plan_key": "premium"}
    )
    assert resp.status_code == 200, resp.text
    got = client.get(f"/api/subscriptions/{tenant.subscription_id}", headers=tenant.headers)
    assert got.json()["plan_key"] == "premium"


@pytest.mark.parametrize(
    "body",
    [
        {"id": str(uuid.uuid4())},
        {"plan_id": str(uuid.uuid4())},
        {"subscription_id": str(uuid.uuid4())},
        {"dedicated_database_url": "postgresql://evil/db"},
        {"settings": {"x": 1}},
        {"deleted_at": None},
        {"created_at": "2020-01-01T00:00:00Z"},
        {"status": "paused"},
        {"status": None},
        {"company_name": None},
        {"company_name": ""},
        {"infrastructure_type": "on-prem"},
        {"plan_key": "Not A Key"},
    ],
)
def test_patch_refuses_mass_assignment_and_bad_values(
    client: TestClient, admin: Account, body: dict[str, Any]
) -> None:
    created = _create(client, admin, f"Mass {uuid.uuid4().hex[:6]}")
    resp = client.patch(f"/api/subscriptions/{created['id']}", headers=admin.headers, json=body)
    assert resp.status_code == 422, (body, resp.text)
    assert resp.headers["content-type"].startswith(PROBLEM)
    after = client.get(f"/api/subscriptions/{created['id']}", headers=admin.headers).json()
    assert {k: after[k] for k in ("id", "status", "company_name")} == {
        k: created[k] for k in ("id", "status", "company_name")
    }


def test_unknown_plan_and_unknown_create_fields_are_refused(
    client: TestClient, admin: Account
) -> None:
    sid = _create(client, admin, f"Plans {uuid.uuid4().hex[:6]}")["id"]
    resp = client.patch(
        f"/api/subscriptions/{sid}", headers=admin.headers, json={"plan_key": "platinum"}
    )
    assert resp.status_code == 422
    owner = {"email": unique_email(), "password": TEST_PASSWORD}
    for extra in ({"id": str(uuid.uuid4())}, {"status": "active"}, {"plan_id": sid}):
        resp = client.post(
            "/api/subscriptions",
            headers=admin.headers,
            json={"company_name": "X", "owner": owner, **extra},
        )
        assert resp.status_code == 422, extra
    resp = client.post(
        "/api/subscriptions",
        headers=admin.headers,
        json={"company_name": "X", "owner": {**owner, "is_subscription_owner": False}},
    )
    assert resp.status_code == 422


# -- the status machine locks users out ---------------------------------------------------------


def test_a_suspended_subscription_locks_its_users_out_until_reactivated(
    client: TestClient, admin: Account
) -> None:
    created = _create(client, admin, f"Suspend {uuid.uuid4().hex[:6]}")
    sid, email = created["id"], created["owner_email"]
    tokens = login(client, email)
    access = auth_header(tokens["access_token"])
    key = client.post("/api/auth/api-keys", headers=access, json={"name": "ci"}).json()["key"]
    assert client.get("/api/auth/me", headers=auth_header(key)).status_code == 200

    resp = client.patch(
        f"/api/subscriptions/{sid}", headers=admin.headers, json={"status": "suspended"}
    )
    assert resp.status_code == 200
    assert resp.json()["status"] == "suspended"
    me = client.get("/api/auth/me", headers=access)
    assert me.status_code == 401
    assert "suspended" in me.json()["detail"]
    assert client.get("/api/auth/me", headers=auth_header(key)).status_code == 401
    assert client.get("/api/workspaces", headers=access).status_code == 401
    refreshed = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401
    login_refused = client.post("/api/auth/login", json={"email": email, "password": TEST_PASSWORD})
    assert login_refused.status_code == 401

    back = client.patch(
        f"/api/subscriptions/{sid}", headers=admin.headers, json={"status": "active"}
    )
    assert back.status_code == 200
    assert client.get("/api/auth/me", headers=access).status_code == 200
    assert client.get("/api/auth/me", headers=auth_header(key)).status_code == 200

    cancel = client.patch(
        f"/api/subscriptions/{sid}", headers=admin.headers, json={"status": "cancelled"}
    )
    assert cancel.status_code == 200
    assert client.get("/api/auth/me", headers=access).status_code == 401
    again = client.patch(
        f"/api/subscriptions/{sid}", headers=admin.headers, json={"status": "active"}
    )
    assert again.status_code == 409
    assert "cancelled" in again.json()["detail"]


def test_a_platform_admin_cannot_lock_out_their_own_subscription(
    client: TestClient, admin: Account
) -> None:
    own = f"/api/subscriptions/{admin.subscription_id}"
    assert client.patch(own, headers=admin.headers, json={"status": "suspended"}).status_code == 409
    assert client.delete(own, headers=admin.headers).status_code == 409
    renamed = client.patch(own, headers=admin.headers, json={"company_name": "Operators"})
    assert renamed.status_code == 200
    assert client.get("/api/auth/me", headers=admin.headers).status_code == 200


# -- a hostile tenant and the platform scope ----------------------------------------------------


def test_no_request_input_turns_on_the_platform_scope(client: TestClient, tenant: Account) -> None:
    other = _tenant(client, company="Victim")
    assert (
        client.get(
            "/api/subscriptions", headers=tenant.headers, params={"platform_admin": tenant.user_id}
        ).status_code
        == 422
    )
    sneaky = {
        **tenant.headers,
        "X-Platform-Admin": tenant.user_id,
        "X-Uzo-Platform-Admin": "true",
    }
    assert client.get("/api/subscriptions", headers=sneaky).status_code == 403
    assert (
        client.get(f"/api/subscriptions/{other.subscription_id}", headers=sneaky).status_code == 404
    )
    for body in ({"is_platform_admin": True}, {"platform_admin": True}):
        resp = client.patch(f"/api/users/{tenant.user_id}", headers=tenant.headers, json=body)
        assert resp.status_code == 422, body
    # the company name is data, never SQL or a setting
    resp = client.post(
        "/api/auth/register",
        json={
            "email": unique_email(),
            "password": TEST_PASSWORD,
            "company_name": "x'); SELECT set_config('app.platform_admin', 'x', false); --",
        },
    )
    assert resp.status_code == 201


def test_the_setting_alone_grants_nothing(
    database: Database, client: TestClient, admin: Account, tenant: Account
) -> None:
    """As the application role, with SQL a tenant could only dream of running."""
    own = uuid.UUID(tenant.subscription_id)
    for claimed in (tenant.user_id, admin.user_id, str(uuid.uuid4())):
        with database.tenant(own) as s:
            s.execute(text("SELECT set_config('app.platform_admin', :u, true)"), {"u": claimed})
            visible = s.scalars(text("SELECT id FROM subscriptions")).all()
            assert [str(v) for v in visible] == [tenant.subscription_id], claimed
            assert s.scalar(text("SELECT uzo_platform_scope()")) is False
    # with no tenant at all, even the real admin's id shows nothing
    with database.tenant(None) as s:
        s.execute(text("SELECT set_config('app.platform_admin', :u, true)"), {"u": admin.user_id})
        assert s.scalar(text("SELECT count(*) FROM subscriptions")) == 0
    # the admin's tenant with the admin's id: every subscription, and only in that block
    with database.tenant(uuid.UUID(admin.subscription_id)) as s:
        with platform.platform_scope(s, uuid.UUID(admin.user_id)):
            assert s.scalar(text("SELECT count(*) FROM subscriptions")) > 2
        assert s.scalar(text("SELECT count(*) FROM subscriptions")) == 1
        assert s.get(Subscription, own) is None


def test_the_application_role_cannot_read_or_write_platform_admins(
    database: Database, admin: Account, tenant: Account
) -> None:
    statements = [
        ("SELECT count(*) FROM platform_admins", {}),
        (
            "INSERT INTO platform_admins (user_id, subscription_id) VALUES (:u, :s)",
            {"u": tenant.user_id, "s": tenant.subscription_id},
        ),
        ("DELETE FROM platform_admins WHERE user_id = :u", {"u": admin.user_id}),
    ]
    for sql, params in statements:
        for sid in (tenant.subscription_id, admin.subscription_id):
            with (
                pytest.raises(ProgrammingError, match="permission denied"),
                database.tenant(uuid.UUID(sid)) as s,
            ):
                s.execute(text(sql), params)
    with database.tenant(uuid.UUID(tenant.subscription_id)) as s:
        assert platform.is_platform_admin(s, uuid.UUID(tenant.user_id)) is False
        # an admin's id asked about from another tenant is no admin there
        assert platform.is_platform_admin(s, uuid.UUID(admin.user_id)) is False
    with database.tenant(uuid.UUID(admin.subscription_id)) as s:
        assert platform.is_platform_admin(s, uuid.UUID(admin.user_id)) is True


def test_the_scope_ends_with_its_block_even_when_a_statement_fails(
    database: Database, admin: Account
) -> None:
    with database.tenant(uuid.UUID(admin.subscription_id)) as s:
        with (
            pytest.raises(ProgrammingError),
            platform.platform_scope(s, uuid.UUID(admin.user_id)),
        ):
            s.execute(text("SELECT * FROM no_such_table"))
        assert s.scalar(text("SELECT count(*) FROM subscriptions")) == 1
        assert s.scalar(text("SELECT current_setting('app.platform_admin', true)")) in ("", None)
