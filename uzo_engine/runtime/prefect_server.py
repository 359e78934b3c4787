"""One Prefect API per machine: an external one from settings, or a shared local server.

The local server is a ``prefect server start`` process on 127.0.0.1 (port
``UZO_PREFECT_SERVER_PORT``, or a free one) with its home under
``UZO_HOME/prefect`` and its data in SQLite there, or in a ``prefect`` database
when UZO uses an external PostgreSQL (:mod:`.prefect_db`). It serves Prefect's
UI at its root (:func:`ui_url`), where operators see the mirrored runs (measured:
the UI starts no slower and takes no more memory). The first process to
need it starts it under a file lock, without waiting for it to answer, and
writes ``server.json`` (url, pid, the pid's start time); every other process
reuses it if what answers on its port is Prefect (``/api/health``) or its
process is still starting (same pid *and* start time). A stale file (pid dead
or handed out again, nothing answering) is ignored at once.

The server is shared by reference count: each process using it holds a lease
(``leases/<pid>``, with the pid's start time), and :func:`release_prefect_server`
stops it only when no other live process holds one, so a ``uzo run`` that
ends never stops the server that ``uzo serve`` or another run still uses.
Leases of processes gone (crashed, ``--keep-services``) do not count (ADR 0019).
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

from uzo_engine.runtime import prefect_db, procs

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from uzo_engine.settings import EngineSettings


@dataclass(frozen=True)
class PrefectApi:
    url: str  # ends with /api
    pid: int | None  # the local server process; None for an external API
    started_here: bool
    pid_started: int | None = None  # the server process's start time (procs.start_time)


class PrefectServerError(RuntimeError):
    pass


def _state_file(settings: EngineSettings) -> Path:
    return settings.prefect_home / "server.json"


def _lease_dir(settings: EngineSettings) -> Path:
    return settings.prefect_home / "leases"


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
        started = data.get("pid_started")
        return PrefectApi(
            url=str(data["url"]),
            pid=int(data["pid"]),
            started_here=False,
            pid_started=int(started) if started is not None else None,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_state(settings: EngineSettings, api: PrefectApi) -> None:
    path = _state_file(settings)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": api.url, "pid": api.pid, "pid_started": api.pid_started}))
    tmp.replace(path)


def _is_server_process(api: PrefectApi) -> bool:
    """``api.pid`` is still the server process recorded (not a pid handed out again)."""
    if api.pid is None or not procs.same_process(api.pid, api.pid_started):
        return False
    if api.pid_started is not None:
        return True
    # recorded without a start time: at least the command must be a Prefect server's
    argv = procs.cmdline(api.pid)
    if not argv and procs.start_time(os.getpid()) is None:
        return True  # no /proc (macOS): that the pid exists is all there is to know
    is_prefect = any(os.path.basename(arg) == "prefect" for arg in argv)
    return is_prefect and "server" in argv and "start" in argv


def _recorded(settings: EngineSettings) -> PrefectApi | None:
    """The server recorded in server.json, if it is one: what answers on its port is Prefect,
    or its process (same pid *and* start time) is still starting. Else the file is stale and
    is removed at once: a dead pid, a pid reused by another process, a port nobody serves."""
    state = _read_state(settings)
    if state is None:
        return None
    if healthy(state.url, timeout=1.0) or _is_server_process(state):
        return state
    _state_file(settings).unlink(missing_ok=True)
    return None


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
    api = PrefectApi(
        url=url, pid=proc.pid, started_here=True, pid_started=procs.start_time(proc.pid)
    )
    _write_state(settings, api)
    return api


def recorded_server(settings: EngineSettings) -> PrefectApi | None:
    """The local server ``server.json`` records, if it is live (a stale file is removed)."""
    with _locked(settings):
        return _recorded(settings)


# -- leases: one per process using the local server; the last one out stops it ------------


def _take_lease(settings: EngineSettings) -> None:
    leases = _lease_dir(settings)
    leases.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    (leases / str(pid)).write_text(json.dumps({"pid_started": procs.start_time(pid)}))


def _live_leases(settings: EngineSettings) -> list[int]:
    """Pids of the processes holding a lease; the leases of processes gone are removed."""
    live = []
    leases = _lease_dir(settings)
    for path in leases.glob("*") if leases.is_dir() else ():
        try:
            pid = int(path.name)
            started = json.loads(path.read_text()).get("pid_started")
        except (OSError, ValueError, AttributeError):
            path.unlink(missing_ok=True)
            continue
        if procs.same_process(pid, started):
            live.append(pid)
        else:
            path.unlink(missing_ok=True)
    return live


def users(settings: EngineSettings) -> list[int]:
    """Pids of the live processes using the local server of ``settings``' UZO_HOME."""
    with _locked(settings):
        return _live_leases(settings)


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
            if not _is_server_process(api):
                raise PrefectServerError(f"prefect server exited; see {log_path}")
        time.sleep(0.2)
    if api.started_here and api.pid is not None:
        stop_prefect_server(settings)
    raise PrefectServerError(f"prefect server did not answer {api.url}/health; see {log_path}")


def ensure_prefect_api(settings: EngineSettings, *, wait: bool = True) -> PrefectApi:
    """The Prefect API to use: external from settings, the shared local server, or a new one.

    Using the local server takes a lease for this process: :func:`release_prefect_server`
    stops the server only when no other live process holds one. With ``wait=False`` a
    newly started server may not answer yet (its URL is already final): the runtime does
    not wait, its mirror retries until it answers.
    """
    if settings.prefect_api_url:
        api = PrefectApi(url=settings.prefect_api_url.rstrip("/"), pid=None, started_here=False)
    else:
        with _locked(settings):
            api = _recorded(settings) or _start(settings)
            _take_lease(settings)
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


def _terminate(api: PrefectApi, timeout: float = 10.0) -> None:
    """Stop the server's process group, if ``api.pid`` is still that server (a pid handed
    out again to another process is never signalled)."""
    pid = api.pid
    if pid is None or not _is_server_process(api):
        return
    try:
        if os.getpgid(pid) != pid:  # not the session leader started with the server
            return
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not procs.pid_exists(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _stop_locked(settings: EngineSettings) -> bool:
    state = _read_state(settings)
    _state_file(settings).unlink(missing_ok=True)
    if state is None or not state.pid:
        return False
    _terminate(state)
    return True


def release_prefect_server(settings: EngineSettings) -> bool:
    """This process no longer uses the local server: drop its lease, and stop the server
    if no other live process holds one. Returns whether it was stopped."""
    if settings.prefect_api_url:
        return False
    with _locked(settings):
        (_lease_dir(settings) / str(os.getpid())).unlink(missing_ok=True)
        if _live_leases(settings):
            return False
        return _stop_locked(settings)


def stop_prefect_server(settings: EngineSettings) -> bool:
    """Stop the shared local server recorded in UZO_HOME whoever uses it (tests, admin)."""
    with _locked(settings):
        for path in _lease_dir(settings).glob("*"):
            path.unlink(missing_ok=True)
        return _stop_locked(settings)
