"""`uzo` as a user runs it (subprocesses, a real terminal where one is needed).

--json output is pure JSON on a real stdout, `db downgrade` asks before it drops
data, `admin create-subscription` works whatever the registration setting says.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.conftest import TEST_SECRET_KEYS
from tests.factories import TEST_PASSWORD, auth_header, login, unique_email
from uzo_api import __version__
from uzo_api.app import create_app
from uzo_api.db import migrate
from uzo_api.settings import AuthSettings, Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from uzo_api.db.session import Database

UZO = str(Path(sys.executable).with_name("uzo"))


def _env(home: Path, **extra: str) -> dict[str, str]:
    """The test session's database (external or embedded in ``home``), nothing else of UZO's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UZO_")}
    for name in ("UZO_DATABASE_URL", "UZO_DATABASE_APP_PASSWORD"):
        if name in os.environ:
            env[name] = os.environ[name]
    env["UZO_HOME"] = str(home)
    env.update(extra)
    return env


def _run(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [UZO, *args],
        env=env,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,  # never the terminal pytest runs in
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _in_terminal(
    args: list[str], env: dict[str, str], answers: list[tuple[str, str]], timeout: float = 90
) -> tuple[int, str]:
    """Run ``uzo`` on a pseudo-terminal; type each answer once its prompt shows."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        try:
            os.execve(UZO, [UZO, *args], env)
        finally:
            os._exit(127)
    output = b""
    seen = 0
    pending = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"uzo {' '.join(args)} timed out; output so far: {output!r}"
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child is gone and closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if pending and (at := output.find(pending[0][0].encode(), seen)) >= 0:
                prompt, answer = pending.pop(0)
                seen = at + len(prompt)
                os.write(fd, answer.encode() + b"\n")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def _workflow(tmp_path: Path, condition: str) -> str:
    doc = {
        "nodes": [
            {
                "id": "src",
                "type": "default",
                "position": {"x": 0, "y": 0},
                "data": {"nodeType": "values", "config": {"rows": [{"id": 1, "amount": 2.5}]}},
            },
            {
                "id": "big",
                "type": "default",
                "position": {"x": 200, "y": 0},
                "data": {"nodeType": "filter", "config": {"condition": condition}},
            },
        ],
        "edges": [{"id": "e1", "source": "src", "target": "big"}],
        "viewport": {"x": 0, "y": 0, "zoom": 1},
    }
    path = tmp_path / f"flow-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(doc))
    return str(path)


# -- conventions, through the installed entry point ---------------------------------------------


def test_version_option_of_the_entry_point(tmp_path: Path) -> None:
    result = _run("--version", env=_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"uzo {__version__}\n"
    assert _run("-h", env=_env(tmp_path)).returncode == 0


def test_json_stdout_is_exactly_one_document(tmp_path: Path) -> None:
    env = _env(tmp_path)
    bad = _run("validate", "--json", _workflow(tmp_path, "nope > 1"), env=env)
    assert bad.returncode == 1
    doc = json.loads(bad.stdout)
    assert doc["ok"] is False
    assert [(e["node_id"], "nope" in e["message"]) for e in doc["errors"]] == [("big", True)]
    ran = _run("run", "--local", "--json", _workflow(tmp_path, "amount > 1"), env=env)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["status"] == "succeeded"
    human = _run("validate", _workflow(tmp_path, "nope > 1"), env=env)
    assert human.returncode == 1
    assert human.stdout == ""
    assert "nope" in human.stderr


@pytest.mark.slow
def test_json_on_ray_keeps_ray_and_prefect_output_off_stdout(tmp_path: Path) -> None:
    env = _env(tmp_path)
    path = _workflow(tmp_path, "amount > 1")
    ran = _run("run", "--json", path, env=env)
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    assert (doc["ok"], doc["runtime"], doc["status"]) == (True, "ray", "succeeded")
    assert [n["status"] for n in doc["nodes"]] == ["succeeded", "succeeded"]
    assert "Ray: " in ran.stderr  # the notes for people went to stderr
    shown = _run("preview", "--json", path, "big", env=env)
    assert shown.returncode == 0, shown.stderr
    preview = json.loads(shown.stdout)
    assert preview["rows"] == [{"id": 1, "amount": 2.5}]
    assert preview["profile"]["row_count"] == 1


# -- db downgrade asks first ------------------------------------------------------------------


def test_downgrade_without_yes_and_without_terminal_keeps_the_schema(
    uzo_home: Path, database: Database
) -> None:
    before = migrate.current_revision(database.owner_engine)
    assert before is not None
    result = _run("db", "downgrade", "base", env=_env(uzo_home))
    assert result.returncode == 1
    assert "drops data" in result.stderr
    assert "--yes" in result.stderr
    assert result.stdout == ""
    assert migrate.current_revision(database.owner_engine) == before


def test_downgrade_on_a_terminal_asks_and_a_no_keeps_the_schema(
    uzo_home: Path, database: Database
) -> None:
    before = migrate.current_revision(database.owner_engine)
    code, shown = _in_terminal(
        ["db", "downgrade", "base"], _env(uzo_home), [("Continue? [y/N]", "n")]
    )
    assert code == 1, shown
    assert f"from {before} to base drops data" in " ".join(shown.split())
    assert "Aborted" in shown
    assert migrate.current_revision(database.owner_engine) == before


# -- admin create-subscription ----------------------------------------------------------------


@pytest.fixture(scope="module")
def closed_client(uzo_home: Path, database: Database) -> Iterator[TestClient]:
    """The API of a server whose registration is closed."""
    auth = AuthSettings(
        jwt_secret=SecretStr("test-secret-" + "x" * 40),
        registration="closed",
        login_limit_per_account="1000/minute",
        login_limit_per_ip="10000/minute",
    )
    settings = Settings(
        home=uzo_home,
        env="test",
        log_json=True,
        auth=auth,
        secret_keys=SecretStr(TEST_SECRET_KEYS),  # type: ignore[call-arg]
    )
    with TestClient(create_app(settings, database)) as client:
        yield client


def _created(result: subprocess.CompletedProcess[str] | tuple[int, str]) -> dict[str, str]:
    shown = result.stdout if isinstance(result, subprocess.CompletedProcess) else result[1]
    fields = dict(
        line.split(None, 1) for line in shown.splitlines() if line[:6] in {"subscr", "owner "}
    )
    return {k: v.strip() for k, v in fields.items()}


def _me(client: TestClient, email: str, password: str = TEST_PASSWORD) -> dict[str, Any]:
    token = login(client, email, password)["access_token"]
    me = client.get("/api/auth/me", headers=auth_header(token))
    assert me.status_code == 200, me.text
    body: dict[str, Any] = me.json()
    return body


def test_create_subscription_with_registration_closed(
    uzo_home: Path, closed_client: TestClient
) -> None:
    email = unique_email("admin")
    refused = closed_client.post(
        "/api/auth/register",
        json={"email": email, "password": TEST_PASSWORD, "company_name": "Closed Co"},
    )
    assert refused.status_code == 403
    env = _env(uzo_home, UZO_AUTH_REGISTRATION="closed")
    create = ["admin", "create-subscription", "--email", email, "--company", "Closed Co"]
    result = _run(*create, "--password-stdin", env=env, stdin=TEST_PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    created = _created(result)
    assert created["owner"] == email
    me = _me(closed_client, email)
    assert me["user"]["email"] == email
    assert str(me["user"]["subscription_id"]) == created["subscription"]
    assert TEST_PASSWORD not in result.stdout + result.stderr

    again = _run(*create, "--password-stdin", env=env, stdin=TEST_PASSWORD + "\n")
    assert again.returncode == 1
    assert again.stdout == ""
    assert "already exists" in again.stderr
    as_json = _run(*create, "--password-stdin", "--json", env=env, stdin=TEST_PASSWORD + "\n")
    assert as_json.returncode == 1
    doc = json.loads(as_json.stdout)
    assert doc["ok"] is False
    assert doc["errors"][0]["code"] == "conflict"
    assert "already exists" in doc["errors"][0]["message"]


def test_create_subscription_asks_the_password_twice_on_a_terminal(
    uzo_home: Path, closed_client: TestClient
) -> None:
    email = unique_email("prompted")
    password = "a hidden pass phrase " + uuid.uuid4().hex[:8]
    code, shown = _in_terminal(
        ["admin", "create-subscription", "--email", email, "--company", "Prompted", "--json"],
        _env(uzo_home, UZO_AUTH_REGISTRATION="invite"),
        [("Password: ", password), ("Repeat for confirmation: ", password)],
    )
    assert code == 0, shown
    assert password not in shown  # not echoed
    # stdout and stderr (the log) share the terminal: the document is the indented object
    doc = json.loads(shown[shown.index("{\r\n") :])
    assert (doc["ok"], doc["email"], doc["plan"]) == (True, email, "standard")
    assert _me(closed_client, email, password)["user"]["subscription_id"] == doc["subscription_id"]
