"""One Prefect API per machine: an external one from settings, or a shared local server.

The local server is a ``prefect server start`` process on 127.0.0.1 (port
``UZO_PREFECT_SERVER_PORT``, or a free one) with its home under
``UZO_HOME/prefect`` and its data in SQLite there, or in a ``prefect`` database
when UZO uses an external PostgreSQL (:mod:`.prefect_db`). It serves Prefect's
UI at its root (:func:`ui_url`), where operators see the mirrored runs (measured:
the UI starts no slower and takes no more memory). The first process to
need it starts it under a file lock, without waiting for it to answer, and
writes ``server.json`` (url, pid); every other process reuses a live one.
Nothing of it is shipped to Ray workers: the mirror runs in the driver.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from uzo_engine.runtime import prefect_db

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from uzo_engine.settings import EngineSettings


@dataclass(frozen=True)
class PrefectApi:
    url: str  # ends with /api
    pid: int | None  # the local server process; None for an external API
    started_here: bool


class PrefectServerError(RuntimeError):
    pass


def _state_file(settings: EngineSettings) -> Path:
    return settings.prefect_home / "server.json"


@contextlib.contextmanager
def _locked(settings: EngineSettings) -> Iterator[None]:
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    with open(settings.prefect_home / "server.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def healthy(url: str, timeout: float = 2.0) -> bool:
    import httpx

    try:
        resp = httpx.get(f"{url}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(settings: EngineSettings) -> dict[str, str]:
    """Environment of the server process (also the client side's PREFECT_HOME)."""
    home = settings.prefect_home
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "true",
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db.connection_url(settings),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }


def _read_state(settings: EngineSettings) -> PrefectApi | None:
    path = _state_file(settings)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return PrefectApi(url=str(data["url"]), pid=int(data["pid"]), started_here=False)


def _start(settings: EngineSettings) -> PrefectApi:
    """Launch the server process (detached: other processes share it) and record it."""
    prefect_db.ensure_database(settings)
    port = settings.prefect_server_port or _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(server_env(settings))
    prefect_bin = os.path.join(os.path.dirname(sys.executable), "prefect")
    cmd = [prefect_bin] if os.path.exists(prefect_bin) else [sys.executable, "-m", "prefect"]
    cmd += ["server", "start", "--host", "127.0.0.1", "--port", str(port), "--analytics-off"]
    cmd += ["--ui", "--no-scheduler", "--no-late-runs"]
    nice = shutil.which("nice")
    if settings.prefect_nice and nice:  # bookkeeping yields the CPU to node work
        cmd = [nice, "-n", str(settings.prefect_nice), *cmd]
    with open(settings.prefect_home / "server.log", "ab") as log_fh:
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # shared by other processes: outlives its starter
        )
    _state_file(settings).write_text(json.dumps({"url": url, "pid": proc.pid}))
    return PrefectApi(url=url, pid=proc.pid, started_here=True)


def wait_until_healthy(api: PrefectApi, settings: EngineSettings) -> PrefectApi:
    """Block until ``api`` answers /health (a local server may still be migrating)."""
    deadline = time.monotonic() + settings.prefect_server_start_timeout_seconds
    log_path = settings.prefect_home / "server.log"
    while time.monotonic() < deadline:
        if healthy(api.url, timeout=1.0):
            return api
        if api.pid is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(api.pid, os.WNOHANG)
            if not _pid_alive(api.pid):
                raise PrefectServerError(f"prefect server exited; see {log_path}")
        time.sleep(0.2)
    if api.started_here and api.pid is not None:
        stop_prefect_server(settings)
    raise PrefectServerError(f"prefect server did not answer {api.url}/health; see {log_path}")


def ensure_prefect_api(settings: EngineSettings, *, wait: bool = True) -> PrefectApi:
    """The Prefect API to use: external from settings, the shared local server, or a new one.

    With ``wait=False`` a newly started server may not answer yet (its URL is
    already final): the runtime does not wait, its mirror retries until it answers.
    """
    if settings.prefect_api_url:
        api = PrefectApi(url=settings.prefect_api_url.rstrip("/"), pid=None, started_here=False)
    else:
        with _locked(settings):
            state = _read_state(settings)
            if state is not None and state.pid and _pid_alive(state.pid):
                api = state
            else:
                api = _start(settings)
    return wait_until_healthy(api, settings) if wait else api


def prepare_client(settings: EngineSettings) -> None:
    """Before this process imports Prefect: its client keeps its home in UZO_HOME (else it
    creates ~/.prefect). The API URL is not exported: the mirror is given it, and no Ray
    worker needs it (no Prefect code runs there)."""
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(settings.prefect_home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def ui_url(api: PrefectApi) -> str:
    """Where Prefect's UI is: the server's root (the API is under /api)."""
    return api.url.removesuffix("/api") + "/"


def _terminate(pid: int, timeout: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def stop_prefect_server(settings: EngineSettings) -> bool:
    """Stop the shared local server recorded in UZO_HOME (whoever started it)."""
    with _locked(settings):
        state = _read_state(settings)
        if state is None or not state.pid:
            return False
        _terminate(state.pid)
        _state_file(settings).unlink(missing_ok=True)
        return True
