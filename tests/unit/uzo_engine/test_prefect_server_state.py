"""server.json and leases of the local Prefect server, judged without starting one (the
integration tests in tests/integration/engine/test_shared_services.py start real ones)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from uzo_engine.runtime import prefect_server, procs
from uzo_engine.settings import EngineSettings

if TYPE_CHECKING:
    from pathlib import Path


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed on return: nothing listens there


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _record(settings: EngineSettings, pid: int, started: int | None) -> None:
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{_dead_port()}/api"
    state = {"url": url, "pid": pid, "pid_started": started}
    (settings.prefect_home / "server.json").write_text(json.dumps(state))


def test_a_server_json_whose_pid_is_dead_is_ignored_and_removed(tmp_path: Path) -> None:
    settings = EngineSettings(home=tmp_path)
    _record(settings, _dead_pid(), None)
    started = time.monotonic()
    assert prefect_server.recorded_server(settings) is None
    assert time.monotonic() - started < 10  # at once, not a start timeout
    assert not (settings.prefect_home / "server.json").exists()


def test_a_server_json_whose_pid_was_reused_is_ignored(tmp_path: Path) -> None:
    settings = EngineSettings(home=tmp_path)
    me = os.getpid()
    own = procs.start_time(me)
    assert own is not None
    _record(settings, me, own - 1)  # this pid, but another process's start time
    assert prefect_server.recorded_server(settings) is None
    _record(settings, me, None)  # an older file without start time: not a Prefect command
    assert prefect_server.recorded_server(settings) is None


def test_a_recorded_process_still_starting_is_reused(tmp_path: Path) -> None:
    settings = EngineSettings(home=tmp_path)
    me = os.getpid()
    _record(settings, me, procs.start_time(me))  # alive, same start time, port not open yet
    api = prefect_server.recorded_server(settings)
    assert api is not None
    assert api.pid == me
    assert not api.started_here


def test_stopping_never_signals_a_pid_handed_out_again(tmp_path: Path) -> None:
    settings = EngineSettings(home=tmp_path)
    me = os.getpid()
    _record(settings, me, (procs.start_time(me) or 0) - 1)
    assert prefect_server.stop_prefect_server(settings)  # it forgets the server ...
    assert procs.pid_exists(me)  # ... and this process is still here


def test_leases_of_processes_gone_do_not_count(tmp_path: Path) -> None:
    settings = EngineSettings(home=tmp_path)
    leases = settings.prefect_home / "leases"
    leases.mkdir(parents=True)
    (leases / str(_dead_pid())).write_text(json.dumps({"pid_started": None}))
    me = os.getpid()
    (leases / str(me)).write_text(json.dumps({"pid_started": (procs.start_time(me) or 0) - 1}))
    (leases / "garbage").write_text("{")
    assert prefect_server.users(settings) == []
    assert list(leases.iterdir()) == []
    # the last user out with no server recorded: nothing to stop
    assert not prefect_server.release_prefect_server(settings)
