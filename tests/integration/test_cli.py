"""The `uzo` command line, run as a user would run it (subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET_KEYS
from tests.factories import TEST_PASSWORD, unique_email

UZO = str(Path(sys.executable).with_name("uzo"))


def _env(home: Path, embedded: bool = False, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UZO_")}
    if not embedded and "UZO_DATABASE_URL" in os.environ:
        env["UZO_DATABASE_URL"] = os.environ["UZO_DATABASE_URL"]
        if "UZO_DATABASE_APP_PASSWORD" in os.environ:
            env["UZO_DATABASE_APP_PASSWORD"] = os.environ["UZO_DATABASE_APP_PASSWORD"]
    env["UZO_HOME"] = str(home)
    env.update(extra)
    return env


def _has_pgserver() -> bool:
    import importlib.util

    return importlib.util.find_spec("pgserver") is not None


def _own_database_env(home: Path, **extra: str) -> dict[str, str]:
    """A database of the command's own: the embedded one in ``home``, or, where pgserver
    has no wheel (Python 3.13), the spare database .ci/debian-postgres.sh creates."""
    if _has_pgserver():
        return _env(home, embedded=True, **extra)
    spare = os.environ.get("UZO_TEST_SPARE_DATABASE_URL")
    if not spare:
        pytest.fail("no pgserver and no UZO_TEST_SPARE_DATABASE_URL (see .ci/debian-postgres.sh)")
    return _env(
        home,
        embedded=True,
        UZO_DATABASE_URL=spare,
        UZO_DATABASE_APP_ROLE="uzo_app_spare",
        UZO_DATABASE_APP_PASSWORD="spare-app-pw",
        # an external database needs the shared keys an operator would set
        UZO_SECRET_KEYS=TEST_SECRET_KEYS,
        UZO_AUTH_JWT_SECRET="cli-test-" + "j" * 48,
        **extra,
    )


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [UZO, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _postgres_running(pgdata: Path) -> bool:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return any(str(pgdata) in line and "postgres" in line for line in out.splitlines())


def test_version(tmp_path: Path) -> None:
    result = _run("version", env=_env(tmp_path))
    assert result.returncode == 0
    assert result.stdout.startswith("uzo 0.")


def test_db_current_on_the_session_database(uzo_home: Path, database: object) -> None:
    result = _run("db", "current", env=_env(uzo_home))
    assert result.returncode == 0, result.stderr
    assert "database: 0005" in result.stdout
    assert "code:     0005" in result.stdout


@pytest.mark.slow
def test_db_downgrade_and_upgrade_round_trip(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)
    tmp_path.chmod(0o755)
    env = _own_database_env(home)
    up = _run("db", "upgrade", env=env)
    assert up.returncode == 0, up.stderr
    assert "database at 0005" in up.stdout
    down = _run("db", "downgrade", "base", "--yes", env=env)
    assert down.returncode == 0, down.stderr
    assert "database at base" in down.stdout
    again = _run("db", "upgrade", env=env)
    assert again.returncode == 0, again.stderr
    assert not _postgres_running(home / "pg")  # each command stops what it started


@pytest.mark.slow
def test_serve_starts_with_no_external_service_and_stops_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "serve"
    home.mkdir()
    home.chmod(0o755)
    tmp_path.chmod(0o755)
    port = _free_port()
    if not _has_pgserver():
        # no embedded PostgreSQL on this Python: `uzo serve` says so and what to set instead
        refused = _run("serve", env=_env(home, embedded=True, UZO_SERVER_PORT=str(port)))
        assert refused.returncode == 1
        assert "UZO_DATABASE_URL" in refused.stderr
        assert "Traceback" not in refused.stderr
    env = _own_database_env(home, UZO_SERVER_PORT=str(port))
    started = time.perf_counter()
    proc = subprocess.Popen(
        [UZO, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        ready = None
        while time.perf_counter() - started < 90:
            try:
                ready = httpx.get(f"{base}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "uzo serve exited early"
            time.sleep(0.2)
        assert ready is not None
        assert ready.status_code == 200
        email = unique_email("serve")
        reg = httpx.post(
            f"{base}/api/auth/register",
            json={"email": email, "password": TEST_PASSWORD, "company_name": "Served"},
        )
        assert reg.status_code == 201
        tok = httpx.post(
            f"{base}/api/auth/login", json={"email": email, "password": TEST_PASSWORD}
        ).json()["access_token"]
        me = httpx.get(f"{base}/api/auth/me", headers={"Authorization": f"Bearer {tok}"})
        assert me.json()["user"]["email"] == email
        assert httpx.get(f"{base}/docs").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"{base}/docs" in out
    assert not _postgres_running(home / "pg")
    # JSON log lines; every request's line carries its request id
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    requests = [r for r in records if r.get("event") == "request"]
    assert any(r["path"] == "/api/auth/register" and r["status"] == 201 for r in requests)
    assert all(len(r["request_id"]) == 32 for r in requests)
    assert TEST_PASSWORD not in out
