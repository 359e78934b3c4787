"""Connectors API hardening: per-tenant file roots, re-entered secrets, refusals as 422."""

from __future__ import annotations

import sqlite3
import stat
import uuid
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import make_settings
from tests.factories import auth_header, login, register, unique_email
from uzo_api.app import create_app
from uzo_connectors.settings import ConnectorSettings

if TYPE_CHECKING:
    from pathlib import Path

    from uzo_api.db.session import Database

SECRET = "wJalrXUtnFEMI-very-secret-key"
PROBLEM = "application/problem+json"


class Tenant:
    def __init__(self, client: TestClient, home: Path) -> None:
        email = unique_email("files")
        reg = register(client, email=email)
        self.subscription_id = str(reg["subscription"]["id"])  # type: ignore[index]
        self.headers = auth_header(login(client, email)["access_token"])
        self.root = home / "files" / self.subscription_id

    def create(self, client: TestClient, type_key: str, config: dict[str, object]) -> str:
        resp = client.post(
            "/api/connectors",
            json={
                "name": f"c-{uuid.uuid4().hex[:8]}",
                "connector_type": type_key,
                "config": config,
            },
            headers=self.headers,
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])


@pytest.fixture
def two(client: TestClient, uzo_home: Path) -> tuple[Tenant, Tenant]:
    return Tenant(client, uzo_home), Tenant(client, uzo_home)


def _first_use(client: TestClient, tenant: Tenant) -> None:
    """Any connector call creates the tenant's own directory."""
    cid = tenant.create(client, "file", {"root": str(tenant.root)})
    assert client.post(f"/api/connectors/{cid}/test", headers=tenant.headers).status_code == 200


def test_each_subscription_has_its_own_files(
    client: TestClient, two: tuple[Tenant, Tenant]
) -> None:
    a, b = two
    _first_use(client, a)
    assert stat.S_IMODE(a.root.stat().st_mode) == 0o700
    (a.root / "sales").mkdir()
    pacsv.write_csv(pa.table({"id": [1, 2]}), a.root / "sales" / "orders.csv")
    with sqlite3.connect(a.root / "a.sqlite") as con:
        con.execute("CREATE TABLE t (x INTEGER)")

    mine = a.create(client, "file", {"root": str(a.root / "sales")})
    found = client.get(f"/api/connectors/{mine}/discover", headers=a.headers)
    assert found.status_code == 200, found.text
    assert [d["name"] for d in found.json()["datasets"]] == ["orders.csv"]

    # tenant B names A's directory, the parent of all tenants' directories, A's database
    for type_key, config in (
        ("file", {"root": str(a.root / "sales")}),
        ("file", {"root": str(a.root.parent)}),
        ("sqlite", {"path": str(a.root / "a.sqlite")}),
        ("sqlite", {"path": f"../{a.subscription_id}/a.sqlite"}),
    ):
        theirs = b.create(client, type_key, config)
        tested = client.post(f"/api/connectors/{theirs}/test", headers=b.headers)
        assert tested.status_code == 422, (config, tested.text)
        assert tested.headers["content-type"].startswith(PROBLEM)
        found = client.get(f"/api/connectors/{theirs}/discover", headers=b.headers)
        assert found.status_code == 422, (config, found.text)
        assert "orders" not in found.text


def test_shared_roots_are_opt_in_per_subscription(
    uzo_home: Path, database: Database, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    pacsv.write_csv(pa.table({"k": [1]}), shared / "ref.csv")
    with TestClient(create_app(make_settings(uzo_home), database)) as plain:
        a, b = Tenant(plain, uzo_home), Tenant(plain, uzo_home)
    settings = ConnectorSettings(shared_roots={a.subscription_id: [str(shared)]})
    with TestClient(create_app(make_settings(uzo_home), database, settings)) as client:
        cid = a.create(client, "file", {"root": str(shared)})
        found = client.get(f"/api/connectors/{cid}/discover", headers=a.headers)
        assert found.status_code == 200, found.text
        assert [d["name"] for d in found.json()["datasets"]] == ["ref.csv"]
        other = b.create(client, "file", {"root": str(shared)})
        assert client.get(f"/api/connectors/{other}/discover", headers=b.headers).status_code == 422


def test_discover_on_a_missing_root_is_a_clear_4xx(
    client: TestClient, two: tuple[Tenant, Tenant]
) -> None:
    a, _ = two
    _first_use(client, a)
    cid = a.create(client, "file", {"root": str(a.root / "not-there")})
    found = client.get(f"/api/connectors/{cid}/discover", headers=a.headers)
    assert 400 <= found.status_code < 500, found.text
    assert found.headers["content-type"].startswith(PROBLEM)
    assert "not-there" in found.json()["detail"]


# -- PATCH: moving a connector needs its secrets again ---------------------------------


@pytest.fixture
def s3(client: TestClient, two: tuple[Tenant, Tenant]) -> tuple[Tenant, str]:
    a, _ = two
    cid = a.create(
        client,
        "s3",
        {
            "bucket": "lake",
            "endpoint_url": "https://storage.example.com",
            "access_key_id": "AKIAEXAMPLE",
            "secret_access_key": SECRET,
        },
    )
    return a, cid


def _stored(database: Database, cid: str) -> tuple[dict[str, object], str | None]:
    with database.owner_engine.connect() as conn:
        row = conn.execute(
            text("SELECT connection_config, encrypted_credentials FROM connectors WHERE id = :i"),
            {"i": cid},
        ).one()
    return row.connection_config, row.encrypted_credentials


def test_changing_the_endpoint_requires_the_secrets_again(
    client: TestClient, s3: tuple[Tenant, str], database: Database
) -> None:
    a, cid = s3
    before = _stored(database, cid)
    moved = client.patch(
        f"/api/connectors/{cid}",
        json={"config": {"endpoint_url": "https://attacker.example.net"}},
        headers=a.headers,
    )
    assert moved.status_code == 422, moved.text
    assert moved.json()["field"] == "config.secret_access_key"
    assert "endpoint_url" in moved.json()["detail"]
    assert _stored(database, cid) == before  # nothing changed
    # a masked secret sent back is "left out", not re-entered
    masked = client.patch(
        f"/api/connectors/{cid}",
        json={
            "config": {
                "endpoint_url": "https://attacker.example.net",
                "secret_access_key": "********",
            }
        },
        headers=a.headers,
    )
    assert masked.status_code == 422
    # changing a field that does not choose the endpoint keeps the secret as before
    renamed = client.patch(
        f"/api/connectors/{cid}", json={"config": {"prefix": "raw"}}, headers=a.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["secrets_set"] == ["secret_access_key"]
    # re-entering the secret moves it
    ok = client.patch(
        f"/api/connectors/{cid}",
        json={"config": {"endpoint_url": "https://other.example.com", "secret_access_key": "new"}},
        headers=a.headers,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["config"]["endpoint_url"] == "https://other.example.com"


def test_keeping_secrets_on_a_move_is_explicit_and_audited(
    client: TestClient, s3: tuple[Tenant, str], database: Database
) -> None:
    a, cid = s3
    moved = client.patch(
        f"/api/connectors/{cid}",
        json={"config": {"endpoint_url": "https://new.example.com"}, "keep_secrets": True},
        headers=a.headers,
    )
    assert moved.status_code == 200, moved.text
    with database.owner_engine.connect() as conn:
        audit = conn.execute(
            text(
                "SELECT action, resource_type, changes, request_id FROM audit_logs "
                "WHERE resource_id = :i AND action = 'connector.keep_secrets'"
            ),
            {"i": cid},
        ).all()
    assert len(audit) == 1
    action, resource_type, changes, request_id = audit[0]
    assert (action, resource_type) == ("connector.keep_secrets", "connector")
    assert changes == {"endpoint_fields": ["endpoint_url"], "kept_secrets": ["secret_access_key"]}
    assert request_id == moved.headers["x-request-id"]
    assert SECRET not in str(changes)


# -- /test: UZO's own refusals are 422, the remote side's failures a failed result -----


def test_a_refused_endpoint_is_a_422_problem(
    client: TestClient, two: tuple[Tenant, Tenant]
) -> None:
    a, _ = two
    cid = a.create(
        client,
        "s3",
        {
            "bucket": "lake",
            "endpoint_url": "http://127.0.0.1:9",
            "access_key_id": "AKIAEXAMPLE",
            "secret_access_key": SECRET,
        },
    )
    tested = client.post(f"/api/connectors/{cid}/test", headers=a.headers)
    assert tested.status_code == 422, tested.text
    assert tested.headers["content-type"].startswith(PROBLEM)
    assert "loopback" in tested.json()["detail"]
    assert SECRET not in tested.text


def test_an_unreachable_endpoint_is_a_failed_test(uzo_home: Path, database: Database) -> None:
    with TestClient(
        create_app(make_settings(uzo_home), database, ConnectorSettings(allow_loopback=True))
    ) as client:
        a = Tenant(client, uzo_home)
        cid = a.create(
            client,
            "http",
            {"base_url": "http://127.0.0.1:9", "timeout": 2, "retries": {"max_attempts": 1}},
        )
        tested = client.post(f"/api/connectors/{cid}/test", headers=a.headers)
    assert tested.status_code == 200, tested.text
    assert tested.json()["status"] == "failed"
