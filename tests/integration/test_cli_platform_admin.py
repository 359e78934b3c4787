"""`uzo admin create` as an operator runs it: a platform admin who can then manage every
subscription through the API; a second run with the same email is refused."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from tests.factories import TEST_PASSWORD, auth_header, login, register, unique_email
from tests.integration.test_cli_conventions import _env, _in_terminal, _run

if TYPE_CHECKING:
    from pathlib import Path

    from fastapi.testclient import TestClient

    from uzo_api.db.session import Database


def _fields(stdout: str) -> dict[str, str]:
    rows = (line.split(None, 1) for line in stdout.splitlines() if line.strip())
    return {k: v.strip() for k, v in rows}


def test_create_makes_a_platform_admin_and_refuses_a_second_time(
    uzo_home: Path, database: Database, client: TestClient
) -> None:
    email = unique_email("operator")
    env = _env(uzo_home, UZO_AUTH_REGISTRATION="closed")
    create = ["admin", "create", "--email", email]
    result = _run(*create, "--password-stdin", env=env, stdin=TEST_PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"platform admin {email}\n")
    shown = _fields(result.stdout.split("\n", 1)[1])
    assert set(shown) == {"user", "subscription"}
    assert TEST_PASSWORD not in result.stdout + result.stderr

    # the admin signs in and sees every subscription
    headers = auth_header(login(client, email)["access_token"])
    tenant: Any = register(client, company=f"Seen {uuid.uuid4().hex[:6]}")
    listed = client.get("/api/subscriptions", headers=headers, params={"limit": 200})
    assert listed.status_code == 200, listed.text
    found = client.get(f"/api/subscriptions/{tenant['subscription']['id']}", headers=headers)
    assert found.status_code == 200
    me = client.get("/api/auth/me", headers=headers).json()
    assert str(me["user"]["id"]) == shown["user"]
    assert str(me["subscription"]["id"]) == shown["subscription"]
    assert me["subscription"]["company_name"] == "UZO platform"

    again = _run(*create, "--password-stdin", env=env, stdin=TEST_PASSWORD + "\n")
    assert again.returncode == 1
    assert again.stdout == ""
    assert "a platform admin with this email already exists" in again.stderr
    as_json = _run(*create, "--password-stdin", "--json", env=env, stdin=TEST_PASSWORD + "\n")
    assert as_json.returncode == 1
    doc = json.loads(as_json.stdout)
    assert (doc["ok"], doc["user_id"], doc["email"]) == (False, None, email)
    assert doc["errors"][0]["code"] == "conflict"


def test_an_ordinary_account_is_not_promoted(uzo_home: Path, client: TestClient) -> None:
    email = unique_email("member")
    register(client, email=email)
    result = _run(
        "admin", "create", "--email", email, "--password-stdin", "--json",
        env=_env(uzo_home), stdin=TEST_PASSWORD + "\n",
    )  # fmt: skip
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert "an account with this email already exists" in doc["errors"][0]["message"]
    headers = auth_header(login(client, email)["access_token"])
    assert client.get("/api/subscriptions", headers=headers).status_code == 403


def test_bad_input_is_a_usage_error_and_no_terminal_needs_password_stdin(uzo_home: Path) -> None:
    env = _env(uzo_home)
    short = _run(
        "admin", "create", "--email", unique_email(), "--password-stdin", "--json",
        env=env, stdin="short\n",
    )  # fmt: skip
    assert short.returncode == 2
    doc = json.loads(short.stdout)
    assert doc["errors"][0]["code"] == "invalid_input"
    assert "password" in doc["errors"][0]["message"]
    bad_email = _run(
        "admin", "create", "--email", "not-an-email", "--password-stdin",
        env=env, stdin=TEST_PASSWORD + "\n",
    )  # fmt: skip
    assert bad_email.returncode == 2
    assert "--email" in bad_email.stderr
    no_tty = _run("admin", "create", "--email", unique_email(), env=env)
    assert no_tty.returncode == 2
    assert "--password-stdin" in no_tty.stderr
    assert _run("admin", "create", "-h", env=env).returncode == 0


def test_create_asks_the_password_twice_on_a_terminal(
    uzo_home: Path, database: Database, client: TestClient
) -> None:
    email = unique_email("prompted-admin")
    password = "a hidden pass phrase " + uuid.uuid4().hex[:8]
    code, shown = _in_terminal(
        ["admin", "create", "--email", email, "--company", "Ops", "--json"],
        _env(uzo_home),
        [("Password: ", password), ("Repeat for confirmation: ", password)],
    )
    assert code == 0, shown
    assert password not in shown
    doc = json.loads(shown[shown.index("{\r\n") :])
    assert (doc["ok"], doc["email"]) == (True, email)
    headers = auth_header(login(client, email, password)["access_token"])
    assert client.get("/api/subscriptions", headers=headers).status_code == 200
    own = client.get(f"/api/subscriptions/{doc['subscription_id']}", headers=headers).json()
    assert own["company_name"] == "Ops"
