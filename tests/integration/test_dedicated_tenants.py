"""Dedicated infrastructure: `uzo tenant provision | list | shutdown` and the DatabaseRouter.

Two databases on the session's server: the shared (control) one and a tenant's own,
created by `uzo tenant provision` (run as a subprocess, as an operator would), then
dropped at the end. Resources created through the API land in the dedicated database
only, RLS still applies there, and a shut-down tenant is locked out with its data kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text, update
from sqlalchemy.exc import OperationalError

from tests.conftest import TEST_SECRET_KEYS
from tests.factories import TEST_PASSWORD, auth_header, login, register, unique_email
from uzo_api.app import create_app
from uzo_api.db.models import Subscription
from uzo_api.db.router import DEDICATED_PREFIX, DedicatedTarget, dedicated_urls
from uzo_api.db.session import make_engine
from uzo_connectors.credentials import CredentialVault

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Engine

    from uzo_api.db.session import Database
    from uzo_api.settings import Settings

UZO = str(Path(sys.executable).with_name("uzo"))
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Tenant:
    subscription_id: str
    owner_id: str
    email: str
    headers: dict[str, str]


def _tenant(client: TestClient) -> Tenant:
    email = unique_email("ded")
    body: Any = register(client, email=email)
    return Tenant(
        body["subscription"]["id"],
        body["user"]["id"],
        email,
        auth_header(login(client, email)["access_token"]),
    )


def _uzo(home: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """Run `uzo ... --json` on the session's database, as its operator would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UZO_")}
    for name in ("UZO_DATABASE_URL", "UZO_DATABASE_APP_PASSWORD"):
        if name in os.environ:
            env[name] = os.environ[name]
    # the keys the API encrypts with: the CLI must write what the API can decrypt
    env.update(UZO_HOME=str(home), UZO_SECRET_KEYS=TEST_SECRET_KEYS)
    done = subprocess.run(
        [UZO, *args, "--json"], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    try:
        doc: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"not one JSON document (exit {done.returncode}): {done.stdout}{done.stderr}")
    return done.returncode, doc


def _owner_engine(settings: Settings, database: Database, name: str) -> Engine:
    urls = dedicated_urls(DedicatedTarget(database=name).owner_url(database.urls.owner), settings)
    return make_engine(urls.owner, pool_size=1)


def _count(engine: Engine, table: str, subscription_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE subscription_id = :s"),
                {"s": subscription_id},
            ).scalar_one()
        )


@pytest.fixture(scope="module")
def api(settings: Settings, database: Database) -> Iterator[TestClient]:
    """An API of this module's own, so its dedicated pools can be closed before the drop."""
    with TestClient(create_app(settings, database)) as client:
        yield client


@dataclass(frozen=True)
class Provisioned:
    tenant: Tenant
    doc: dict[str, Any]
    name: str
    engine: Engine  # owner of the dedicated database


@pytest.fixture(scope="module")
def dedicated(
    api: TestClient, uzo_home: Path, settings: Settings, database: Database
) -> Iterator[Provisioned]:
    tenant = _tenant(api)
    rc, doc = _uzo(uzo_home, "tenant", "provision", "--subscription", tenant.subscription_id)
    assert rc == 0, doc
    name = DEDICATED_PREFIX + uuid.UUID(tenant.subscription_id).hex[:12]
    engine = _owner_engine(settings, database, name)
    try:
        yield Provisioned(tenant, doc, name, engine)
    finally:
        engine.dispose()
        _uzo(uzo_home, "tenant", "shutdown", "--subscription", tenant.subscription_id)
        api.app.state.services.router.dispose()  # type: ignore[attr-defined]
        with database.owner_engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')


def test_provision_creates_migrates_and_registers(
    dedicated: Provisioned, database: Database
) -> None:
    doc = dedicated.doc
    assert doc["ok"] is True
    assert doc["errors"] == []
    assert doc["created_database"] is True
    assert doc["already_dedicated"] is False
    assert doc["tenant"]["infrastructure_type"] == "dedicated"
    assert doc["tenant"]["database"] == dedicated.name
    assert doc["users_copied"] == 1
    # the full schema: same revision, RLS forced on the same tables
    with dedicated.engine.connect() as conn:
        assert (
            conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            == (doc["revision"])
        )
        forced = conn.execute(
            text("SELECT count(*) FROM pg_class WHERE relforcerowsecurity AND relkind IN ('r','p')")
        ).scalar_one()
    with database.owner_engine.connect() as conn:
        forced_shared = conn.execute(
            text("SELECT count(*) FROM pg_class WHERE relforcerowsecurity AND relkind IN ('r','p')")
        ).scalar_one()
        stored = conn.execute(
            text("SELECT dedicated_database_url FROM subscriptions WHERE id = :s"),
            {"s": dedicated.tenant.subscription_id},
        ).scalar_one()
    assert forced == forced_shared > 0
    assert dedicated.name not in stored  # encrypted at rest


def test_resources_land_in_the_dedicated_database_only(
    api: TestClient, dedicated: Provisioned, database: Database
) -> None:
    t = dedicated.tenant
    ws = api.post("/api/workspaces", json={"name": "Sales"}, headers=t.headers)
    assert ws.status_code == 201, ws.text
    member_email = unique_email("mem")
    member = api.post(
        "/api/users", headers=t.headers, json={"email": member_email, "password": TEST_PASSWORD}
    )
    assert member.status_code == 201, member.text
    group = api.post("/api/groups", headers=t.headers, json={"name": "analysts"})
    assert group.status_code == 201, group.text
    # the group (dedicated database) refers to the new user: its copy is there already
    added = api.post(
        f"/api/groups/{group.json()['id']}/members",
        headers=t.headers,
        json={"user_id": member.json()["id"]},
    )
    assert added.status_code == 201, added.text
    # the new user signs in through the control database
    member_headers = auth_header(login(api, member_email)["access_token"])
    me = api.get("/api/auth/me", headers=member_headers)
    assert me.status_code == 200, me.text
    assert [w["name"] for w in api.get("/api/workspaces", headers=t.headers).json()["items"]] == [
        "Sales"
    ]

    sid = t.subscription_id
    shared = database.owner_engine
    for table in ("workspaces", "groups", "user_groups"):
        assert _count(dedicated.engine, table, sid) == 1, table
        assert _count(shared, table, sid) == 0, table
    assert _count(shared, "users", sid) == 2  # identity: the control database
    with dedicated.engine.connect() as conn:
        copies = conn.execute(
            text("SELECT email, password_hash FROM users WHERE subscription_id = :s"), {"s": sid}
        ).all()
    assert sorted(e for e, _ in copies) == sorted([t.email, member_email])
    assert {h for _, h in copies} == {"!"}  # copies hold no password hash

    other = _tenant(api)  # a shared tenant
    assert api.get("/api/workspaces", headers=other.headers).json()["items"] == []
    assert api.get(f"/api/workspaces/{ws.json()['id']}", headers=other.headers).status_code == 404


def test_rls_holds_inside_the_dedicated_database(
    api: TestClient, dedicated: Provisioned, settings: Settings, database: Database
) -> None:
    t = dedicated.tenant
    assert api.post("/api/workspaces", json={"name": "RLS"}, headers=t.headers).status_code == 201
    owner_url = DedicatedTarget(database=dedicated.name).owner_url(database.urls.owner)
    app_engine = make_engine(dedicated_urls(owner_url, settings).app, pool_size=1)
    try:
        with app_engine.begin() as conn:
            role = conn.execute(text("SELECT current_user")).scalar_one()
            assert role == settings.database.app_role
            assert conn.execute(text("SELECT count(*) FROM workspaces")).scalar_one() == 0
            conn.execute(
                text("SELECT set_config('app.subscription_id', :s, true)"),
                {"s": str(uuid.uuid4())},
            )
            assert conn.execute(text("SELECT count(*) FROM workspaces")).scalar_one() == 0
            assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 0
        with app_engine.begin() as conn:
            conn.execute(
                text("SELECT set_config('app.subscription_id', :s, true)"),
                {"s": t.subscription_id},
            )
            assert conn.execute(text("SELECT count(*) FROM workspaces")).scalar_one() >= 1
    finally:
        app_engine.dispose()


def test_provision_refuses_a_tenant_with_resources_in_the_shared_database(
    api: TestClient, uzo_home: Path
) -> None:
    t = _tenant(api)
    assert api.post("/api/workspaces", json={"name": "x"}, headers=t.headers).status_code == 201
    rc, doc = _uzo(uzo_home, "tenant", "provision", "--subscription", t.subscription_id)
    assert rc == 1
    assert doc["ok"] is False
    assert doc["errors"][0]["code"] == "has_tenant_data"
    assert "workspaces: 1" in doc["errors"][0]["message"]
    rc, listed = _uzo(uzo_home, "tenant", "list")
    assert rc == 0
    mine = [x for x in listed["tenants"] if x["subscription_id"] == t.subscription_id]
    assert mine == [
        {
            "subscription_id": t.subscription_id,
            "company_name": "Acme",
            "status": "active",
            "infrastructure_type": "shared",
            "database": None,
        }
    ]


def test_bad_subscription_ids(uzo_home: Path) -> None:
    rc, doc = _uzo(uzo_home, "tenant", "provision", "--subscription", "nope")
    assert rc == 2
    assert doc["errors"][0]["code"] == "usage_error"
    rc, doc = _uzo(uzo_home, "tenant", "shutdown", "--subscription", str(uuid.uuid4()))
    assert rc == 1
    assert doc["errors"][0]["code"] == "not_found"


def test_an_unreachable_dedicated_database_is_a_503_never_the_shared_one(
    api: TestClient, database: Database
) -> None:
    t = _tenant(api)
    assert api.post("/api/workspaces", json={"name": "here"}, headers=t.headers).status_code == 201
    missing = DedicatedTarget(database=DEDICATED_PREFIX + "missing" + uuid.uuid4().hex[:6])
    token = missing.encrypt(CredentialVault(TEST_SECRET_KEYS))
    sid = uuid.UUID(t.subscription_id)
    with database.owner_engine.begin() as conn:
        conn.execute(
            update(Subscription)
            .where(Subscription.id == sid)
            .values(infrastructure_type="dedicated", dedicated_database_url=token)
        )
    try:
        resp = api.get("/api/workspaces", headers=t.headers)
        assert resp.status_code == 503, resp.text
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert resp.json()["type"] == "/problems/unavailable"
        assert "dedicated database" in resp.json()["detail"]
        # its identity is still served: the control database is up
        assert api.get("/api/auth/me", headers=t.headers).status_code == 200
    finally:
        with database.owner_engine.begin() as conn:
            conn.execute(
                update(Subscription)
                .where(Subscription.id == sid)
                .values(infrastructure_type="shared", dedicated_database_url=None)
            )
    assert [w["name"] for w in api.get("/api/workspaces", headers=t.headers).json()["items"]] == [
        "here"
    ]


def test_uzo_db_purge_reaches_a_dedicated_tenants_database(
    api: TestClient, dedicated: Provisioned, uzo_home: Path
) -> None:
    t = dedicated.tenant
    made = api.post("/api/workspaces", json={"name": "Purged"}, headers=t.headers)
    assert made.status_code == 201, made.text
    ws = made.json()["id"]
    assert api.delete(f"/api/workspaces/{ws}", headers=t.headers).status_code == 204
    with dedicated.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE workspaces SET deleted_at = deleted_at - interval '31 days' WHERE id = :w"
            ),
            {"w": ws},
        )
    rc, dry = _uzo(uzo_home, "db", "purge", "--dry-run")
    assert rc == 0, dry
    assert dry["removed"]["workspaces"] >= 1
    rc, doc = _uzo(uzo_home, "db", "purge")
    assert rc == 0, doc
    assert doc["removed"]["workspaces"] >= 1
    with dedicated.engine.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM workspaces WHERE id = :w"), {"w": ws}
        ).scalar_one()
        purged = conn.execute(
            text("SELECT purged_at IS NOT NULL FROM deletion_logs WHERE resource_id = :w"),
            {"w": ws},
        ).scalar_one()
    assert (left, purged) == (0, True)


def test_uzo_db_retention_reaches_a_dedicated_tenants_database(
    dedicated: Provisioned, uzo_home: Path
) -> None:
    # a server_logs month long past its 90 days, in the tenant's own database
    with dedicated.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE server_logs_p200001 PARTITION OF server_logs "
                "FOR VALUES FROM ('2000-01-01') TO ('2000-02-01')"
            )
        )
    rc, dry = _uzo(uzo_home, "db", "retention", "--dry-run")
    assert rc == 0, dry
    mine = [p for p in dry["partitions"] if p["partition"] == "server_logs_p200001"]
    assert [p["database"] for p in mine] == [f"tenant {dedicated.tenant.subscription_id}"]
    rc, doc = _uzo(uzo_home, "db", "retention")
    assert rc == 0, doc
    with dedicated.engine.connect() as conn:
        left = conn.execute(text("SELECT to_regclass('server_logs_p200001')")).scalar_one()
    assert left is None


def test_provision_again_migrates_and_copies_again(dedicated: Provisioned, uzo_home: Path) -> None:
    t = dedicated.tenant
    rc, doc = _uzo(uzo_home, "tenant", "provision", "--subscription", t.subscription_id)
    assert rc == 0, doc
    assert doc["already_dedicated"] is True
    assert doc["created_database"] is False
    rc, listed = _uzo(uzo_home, "tenant", "list")
    mine = [x for x in listed["tenants"] if x["subscription_id"] == t.subscription_id]
    assert mine[0]["database"] == dedicated.name


def test_shutdown_locks_the_tenant_out_and_keeps_its_data(
    api: TestClient, dedicated: Provisioned, uzo_home: Path, settings: Settings, database: Database
) -> None:
    t = dedicated.tenant
    key = api.post("/api/auth/api-keys", headers=t.headers, json={"name": "ci"})
    assert key.status_code == 201, key.text
    assert api.post("/api/workspaces", json={"name": "Kept"}, headers=t.headers).status_code == 201
    kept = _count(dedicated.engine, "workspaces", t.subscription_id)

    rc, doc = _uzo(uzo_home, "tenant", "shutdown", "--subscription", t.subscription_id)
    assert rc == 0, doc
    assert doc["tenant"]["status"] == "suspended"
    assert doc["was"] == "active"
    assert doc["api_keys_revoked"] == 1
    assert doc["sessions_revoked"] >= 1

    for headers in (t.headers, auth_header(key.json()["key"])):
        resp = api.get("/api/workspaces", headers=headers)
        assert resp.status_code == 401, resp.text
        assert resp.headers["content-type"].startswith(PROBLEM)
    refused = api.post("/api/auth/login", json={"email": t.email, "password": TEST_PASSWORD})
    assert refused.status_code == 401
    assert "suspended" in refused.json()["detail"]

    assert _count(dedicated.engine, "workspaces", t.subscription_id) == kept  # data stays
    # both operator actions are audited in the control database, with no user (the CLI)
    with database.owner_engine.begin() as conn:
        conn.execute(
            text("SELECT set_config('app.subscription_id', :s, true)"), {"s": t.subscription_id}
        )
        audited = conn.execute(
            text(
                "SELECT action, user_id, changes FROM audit_logs "
                "WHERE resource_id = :s AND action LIKE 'subscription.%' ORDER BY created_at"
            ),
            {"s": t.subscription_id},
        ).all()
    by_action = {row.action: row for row in audited}
    assert {"subscription.provision", "subscription.shutdown"} <= set(by_action)
    assert by_action["subscription.shutdown"].user_id is None
    assert by_action["subscription.shutdown"].changes["api_keys_revoked"] == 1
    assert by_action["subscription.provision"].changes["created_database"] is True
    owner_url = DedicatedTarget(database=dedicated.name).owner_url(database.urls.owner)
    app_engine = make_engine(dedicated_urls(owner_url, settings).app, pool_size=1)
    try:
        with pytest.raises(OperationalError), app_engine.connect():
            pass  # the application role may no longer connect to it
    finally:
        app_engine.dispose()
