"""The connectors API: catalogue, CRUD with encrypted secrets, test, discover, isolation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from tests.factories import auth_header, login, register, unique_email

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from uzo_api.db.session import Database
    from uzo_api.settings import Settings

SECRET = "wJalrXUtnFEMI-very-secret-key"


@pytest.fixture
def tenant(client: TestClient) -> tuple[str, dict[str, str]]:
    email = unique_email("conn")
    subscription = register(client, email=email)["subscription"]
    assert isinstance(subscription, dict)
    return str(subscription["id"]), auth_header(login(client, email)["access_token"])


@pytest.fixture
def headers(tenant: tuple[str, dict[str, str]]) -> dict[str, str]:
    return tenant[1]


@pytest.fixture
def data_dir(uzo_home: Path, tmp_path: Path, tenant: tuple[str, dict[str, str]]) -> Path:
    # the API confines a tenant's local files to UZO_HOME/files/<subscription id>
    folder = uzo_home / "files" / tenant[0] / tmp_path.name
    folder.mkdir(parents=True)
    pacsv.write_csv(pa.table({"id": [1, 2, 3], "name": ["a", "b", None]}), folder / "people.csv")
    return folder


def _s3(name: str = "lake") -> dict[str, object]:
    return {
        "name": name,
        "connector_type": "s3",
        "config": {
            "bucket": "lake",
            "endpoint_url": "http://127.0.0.1:9",
            "access_key_id": "AKIAEXAMPLE",
            "secret_access_key": SECRET,
        },
    }


def test_catalogue_lists_types_with_schemas(client: TestClient, headers: dict[str, str]) -> None:
    types = client.get("/api/connector-types", headers=headers)
    assert types.status_code == 200
    by_name = {t["connector_type"]: t for t in types.json()["items"]}
    assert {"file", "s3"} <= set(by_name)
    assert by_name["s3"]["installed"] is True
    assert by_name["s3"]["extra"] == "s3"
    assert by_name["file"]["extra"] is None
    assert by_name["file"]["missing_packages"] == []
    s3 = client.get("/api/connector-types/s3", headers=headers).json()
    assert s3["category"] == "cloud storage"
    assert "secret_access_key" in s3["secret_fields"]
    prop = s3["config_schema"]["properties"]["secret_access_key"]
    assert prop.get("writeOnly") is True
    missing = client.get("/api/connector-types/nope", headers=headers)
    assert missing.status_code == 404
    assert client.get("/api/connector-types").status_code == 401


def test_secrets_are_encrypted_and_never_returned(
    client: TestClient, headers: dict[str, str], database: Database
) -> None:
    created = client.post("/api/connectors", json=_s3(), headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert SECRET not in created.text
    assert body["config"]["secret_access_key"] == "********"
    assert body["secrets_set"] == ["secret_access_key"]
    assert SECRET not in client.get(f"/api/connectors/{body['id']}", headers=headers).text
    assert SECRET not in client.get("/api/connectors", headers=headers).text
    with database.owner_engine.connect() as conn:
        row = conn.execute(
            text("SELECT connection_config, encrypted_credentials FROM connectors WHERE id = :i"),
            {"i": body["id"]},
        ).one()
    assert SECRET not in json.dumps(row.connection_config)
    assert SECRET not in row.encrypted_credentials
    assert row.encrypted_credentials.startswith("gAAAA")  # a Fernet token


def test_update_keeps_omitted_and_masked_secrets(
    client: TestClient, headers: dict[str, str], settings: Settings, database: Database
) -> None:
    created = client.post("/api/connectors", json=_s3("keep"), headers=headers).json()
    patched = client.patch(
        f"/api/connectors/{created['id']}",
        json={
            "description": "raw zone",
            "config": {"bucket": "lake2", "secret_access_key": "********"},
        },
        headers=headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["config"]["bucket"] == "lake2"
    assert patched.json()["secrets_set"] == ["secret_access_key"]
    from uzo_connectors.credentials import CredentialVault

    with database.owner_engine.connect() as conn:
        token = conn.execute(
            text("SELECT encrypted_credentials FROM connectors WHERE id = :i"), {"i": created["id"]}
        ).scalar_one()
    assert CredentialVault(settings.credential_keys()).decrypt(token) == {
        "secret_access_key": SECRET
    }


def test_invalid_config_names_the_field(client: TestClient, headers: dict[str, str]) -> None:
    bad = client.post(
        "/api/connectors",
        json={"name": "x", "connector_type": "s3", "config": {"buckett": "typo"}},
        headers=headers,
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "config"
    assert "buckett" in bad.json()["detail"]
    unknown = client.post(
        "/api/connectors",
        json={"name": "x", "connector_type": "nosuch", "config": {}},
        headers=headers,
    )
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "connector_type"


def test_duplicate_name_conflicts(client: TestClient, headers: dict[str, str]) -> None:
    assert client.post("/api/connectors", json=_s3("dup"), headers=headers).status_code == 201
    again = client.post("/api/connectors", json=_s3("dup"), headers=headers)
    assert again.status_code == 409
    assert again.json()["field"] == "name"


def test_file_connector_test_and_discover(
    client: TestClient, headers: dict[str, str], data_dir: Path
) -> None:
    created = client.post(
        "/api/connectors",
        json={
            "name": "local",
            "connector_type": "file",
            "config": {"root": str(data_dir)},
        },
        headers=headers,
    ).json()
    tested = client.post(f"/api/connectors/{created['id']}/test", headers=headers)
    assert tested.status_code == 200
    assert tested.json()["status"] == "ok"
    found = client.get(f"/api/connectors/{created['id']}/discover", headers=headers)
    assert found.status_code == 200
    datasets = {d["name"]: d for d in found.json()["datasets"]}
    assert [c["name"] for c in datasets["people.csv"]["columns"]] == ["id", "name"]
    again = client.get(f"/api/connectors/{created['id']}", headers=headers).json()
    assert again["last_test_status"] == "ok"


@pytest.mark.parametrize(
    "root", ["/etc", "file:///etc", "memory://x", "zip::file:///etc/passwd", "/tmp/../etc"]
)
def test_local_files_outside_the_allowed_roots_are_refused(
    client: TestClient, headers: dict[str, str], root: str
) -> None:
    created = client.post(
        "/api/connectors",
        json={
            "name": f"x{abs(hash(root))}",
            "connector_type": "file",
            "config": {"root": root},
        },
        headers=headers,
    )
    if created.status_code == 422:  # refused by the config model (not a local path)
        assert created.json()["field"] == "config"
        return
    assert created.status_code == 201, created.text
    tested = client.post(f"/api/connectors/{created.json()['id']}/test", headers=headers)
    assert tested.status_code == 422  # UZO's own refusal, not a failed connection
    found = client.get(f"/api/connectors/{created.json()['id']}/discover", headers=headers)
    assert found.status_code == 422
    assert "passwd" not in found.text


def test_internal_endpoints_are_refused_without_leaking_secrets(
    client: TestClient, headers: dict[str, str]
) -> None:
    created = client.post("/api/connectors", json=_s3("ssrf"), headers=headers).json()
    tested = client.post(f"/api/connectors/{created['id']}/test", headers=headers)
    assert tested.status_code == 422  # UZO refuses to try: a problem, not a failed test
    assert "loopback" in tested.json()["detail"]
    assert SECRET not in tested.text


def test_foreign_tenant_connector_is_a_404(client: TestClient, headers: dict[str, str]) -> None:
    created = client.post("/api/connectors", json=_s3("mine"), headers=headers).json()
    other_email = unique_email("other")
    register(client, email=other_email)
    other = auth_header(login(client, other_email)["access_token"])
    for method, suffix in (("get", ""), ("delete", ""), ("post", "/test"), ("get", "/discover")):
        resp = client.request(method, f"/api/connectors/{created['id']}{suffix}", headers=other)
        assert resp.status_code == 404, (method, suffix)
    assert (
        client.patch(
            f"/api/connectors/{created['id']}", json={"description": "x"}, headers=other
        ).status_code
        == 404
    )
    assert client.get("/api/connectors", headers=other).json()["items"] == []
    assert client.get(f"/api/connectors/{created['id']}", headers=headers).status_code == 200


def test_delete(client: TestClient, headers: dict[str, str]) -> None:
    created = client.post("/api/connectors", json=_s3("gone"), headers=headers).json()
    assert client.delete(f"/api/connectors/{created['id']}", headers=headers).status_code == 204
    assert client.get(f"/api/connectors/{created['id']}", headers=headers).status_code == 404


def test_plan_limit(client: TestClient, headers: dict[str, str]) -> None:
    for i in range(10):  # the Standard plan allows 10
        resp = client.post("/api/connectors", json=_s3(f"c{i}"), headers=headers)
        assert resp.status_code == 201, resp.text
    over = client.post("/api/connectors", json=_s3("c10"), headers=headers)
    assert over.status_code == 403
    assert over.json()["type"] == "/problems/plan-limit"


def test_secrets_rotate_cli(
    client: TestClient,
    headers: dict[str, str],
    database: Database,
    settings: Settings,
    uzo_home: Path,
) -> None:
    created = client.post("/api/connectors", json=_s3("rotating"), headers=headers).json()
    old_keys = settings.credential_keys()
    new_key = Fernet.generate_key().decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("UZO_")}
    for k in ("UZO_DATABASE_URL", "UZO_DATABASE_APP_PASSWORD"):
        if k in os.environ:
            env[k] = os.environ[k]
    env["UZO_HOME"] = str(uzo_home)
    env["UZO_SECRET_KEYS"] = ",".join([new_key, *old_keys])
    uzo = str(Path(sys.executable).with_name("uzo"))
    done = subprocess.run(
        [uzo, "secrets", "rotate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "re-encrypted" in done.stdout
    with database.owner_engine.connect() as conn:
        token = conn.execute(
            text("SELECT encrypted_credentials FROM connectors WHERE id = :i"), {"i": created["id"]}
        ).scalar_one()
    from uzo_connectors.credentials import CredentialVault

    # only the new key is needed now
    assert CredentialVault([new_key]).decrypt(token) == {"secret_access_key": SECRET}
    assert SECRET not in done.stdout + done.stderr


def test_nested_secrets_are_encrypted_too(
    client: TestClient, headers: dict[str, str], database: Database
) -> None:
    token = "ghp_nested-secret-token-value"
    created = client.post(
        "/api/connectors",
        json={
            "name": "api",
            "connector_type": "http",
            "config": {
                "base_url": "https://api.example.com",
                "auth": {"type": "bearer", "token": token},
                "resources": [{"name": "items", "path": "/items"}],
            },
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert token not in created.text
    assert created.json()["config"]["auth"] == "********"
    assert token not in client.get("/api/connectors", headers=headers).text
    with database.owner_engine.connect() as conn:
        public = conn.execute(
            text("SELECT connection_config FROM connectors WHERE id = :i"),
            {"i": created.json()["id"]},
        ).scalar_one()
    assert token not in json.dumps(public)
    assert public["base_url"] == "https://api.example.com"


def test_listing_never_decrypts(
    client: TestClient, headers: dict[str, str], database: Database
) -> None:
    created = client.post("/api/connectors", json=_s3("opaque"), headers=headers).json()
    with database.owner_engine.begin() as conn:  # a token no key can decrypt
        conn.execute(
            text("UPDATE connectors SET encrypted_credentials = 'not-a-token' WHERE id = :i"),
            {"i": created["id"]},
        )
    shown = client.get(f"/api/connectors/{created['id']}", headers=headers)
    assert shown.status_code == 200
    assert shown.json()["secrets_set"] == ["secret_access_key"]
    assert client.get("/api/connectors", headers=headers).status_code == 200
