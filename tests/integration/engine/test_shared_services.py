"""Services shared by the UZO processes of one UZO_HOME: the local Prefect server (reference
counted by leases) and the local Ray cluster (its folders under the home).

The session's runtime (tests/integration/engine/conftest.py) serves the tests that only
look; the ones that must see a server stop start one of their own, on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.integration.engine.test_attach import UZO, _workflow
from uzo_engine.runtime import cluster, prefect_server, procs
from uzo_engine.settings import EngineSettings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from uzo_engine.runtime.engine import Runtime

pytestmark = [pytest.mark.integration]


def _uzo_run(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``uzo run`` of test_attach's one-node workflow in a process of its own (bounded)."""
    return subprocess.run(
        [UZO, "run", str(_workflow(tmp_path / "wf.json"))],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnServer:
    def __init__(self, settings: EngineSettings, api: prefect_server.PrefectApi, took: float):
        self.settings = settings
        self.api = api
        self.took = took  # seconds ensure_prefect_api took past the stale server.json


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnServer]:
    """A Prefect server of this module's own, started over a stale server.json that points
    at this very process (a pid handed out again) and at a port nothing listens on."""
    settings = EngineSettings(
        home=tmp_path_factory.mktemp("shared-home"),
        prefect_server_port=_free_port(),
        prefect_server_start_timeout_seconds=240,  # a loaded machine starts it slowly
    )
    settings.prefect_home.mkdir(parents=True)
    stale = {
        "url": f"http://127.0.0.1:{_free_port()}/api",
        "pid": os.getpid(),
        "pid_started": (procs.start_time(os.getpid()) or 1) - 1,
    }
    (settings.prefect_home / "server.json").write_text(json.dumps(stale))
    started = time.monotonic()
    api = prefect_server.ensure_prefect_api(settings, wait=False)
    took = time.monotonic() - started
    try:
        prefect_server.wait_until_healthy(api, settings)
        yield OwnServer(settings, api, took)
    finally:
        prefect_server.stop_prefect_server(settings)


@pytest.mark.slow
def test_a_stale_server_json_with_a_reused_pid_is_ignored_at_once(own_server: OwnServer) -> None:
    api = own_server.api
    assert api.started_here
    assert api.pid is not None
    assert api.pid != os.getpid()
    assert api.url.endswith(f":{own_server.settings.prefect_server_port}/api")
    assert own_server.took < 30  # it hung for the start timeout (99 s) before
    assert prefect_server.healthy(api.url)


_USER = textwrap.dedent(
    """
    import json, sys
    from uzo_engine.runtime import prefect_server
    from uzo_engine.settings import EngineSettings

    settings = EngineSettings(home=sys.argv[1], prefect_server_start_timeout_seconds=240)
    api = prefect_server.ensure_prefect_api(settings)
    print(json.dumps({"url": api.url, "started_here": api.started_here}), flush=True)
    sys.stdin.readline()
    print(json.dumps({"stopped": prefect_server.release_prefect_server(settings)}), flush=True)
    """
)


@pytest.mark.slow
def test_the_first_process_to_finish_does_not_stop_the_server_another_uses(
    own_server: OwnServer,
) -> None:
    settings, api = own_server.settings, own_server.api
    other = subprocess.Popen(
        [sys.executable, "-c", _USER, str(settings.home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None
        assert other.stdin is not None
        joined = json.loads(other.stdout.readline())
        assert joined == {"url": api.url, "started_here": False}
        assert sorted(prefect_server.users(settings)) == sorted([os.getpid(), other.pid])

        # the process that started the server finishes first: the other still uses it
        assert not prefect_server.release_prefect_server(settings)
        assert prefect_server.healthy(api.url)

        other.stdin.write("\n")
        other.stdin.flush()
        assert json.loads(other.stdout.readline()) == {"stopped": True}  # the last one out
        assert other.wait(timeout=60) == 0
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
    assert not prefect_server.healthy(api.url)
    assert prefect_server.recorded_server(settings) is None


@pytest.mark.slow
def test_uzo_run_leaves_the_prefect_server_and_cluster_it_shares_running(
    runtime: Runtime, engine_settings: EngineSettings, tmp_path: Path
) -> None:
    """`uzo run` in the session's UZO_HOME: it uses the session's Prefect server (found in
    server.json) and attaches to its cluster; when it ends, both still serve this process."""
    assert runtime.prefect is not None
    assert runtime.cluster is not None
    token = (engine_settings.ray_home / "auth_token").read_text().strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UZO_", "RAY_", "PREFECT_"))}
    env.update(
        UZO_HOME=str(engine_settings.home),
        UZO_RAY_ADDRESS=runtime.cluster.address,
        UZO_RAY_AUTH_TOKEN=token,
        UZO_ACTOR_CPUS="0.5",
        UZO_ACTOR_POOL_SIZE="2",
    )

    done = _uzo_run(tmp_path, env)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Ray: attached to {runtime.cluster.address}" in done.stdout
    assert prefect_server.healthy(runtime.prefect.url)  # not stopped under this process
    assert os.getpid() in prefect_server.users(engine_settings)
    recorded = prefect_server.recorded_server(engine_settings)
    assert recorded is not None
    assert recorded.url == runtime.prefect.url
    assert runtime.actor_info()  # the cluster and the session's actors are untouched


def test_the_local_cluster_keeps_its_session_folders_under_the_home(
    runtime: Runtime, engine_settings: EngineSettings
) -> None:
    from ray._private import worker

    session = Path(worker._global_node.get_session_dir_path())
    assert cluster.temp_root(engine_settings) == engine_settings.ray_home  # a short home
    assert session.parent == engine_settings.ray_home
    assert session.name.endswith(f"_{os.getpid()}")  # this process started it
    assert (engine_settings.ray_home / "session_latest").resolve() == session.resolve()
    assert (session / "sockets").is_dir()


def test_the_local_cluster_runs_no_api_server(runtime: Runtime) -> None:
    """include_dashboard=False still starts Ray's API server process; UZO's cluster does not.
    The dashboard agent does run: the raylet does not start without it."""
    import psutil

    commands = []
    for child in psutil.Process().children(recursive=True):
        try:
            commands.append(" ".join(child.cmdline()) or child.name())
        except psutil.Error:  # a worker that just exited
            continue
    assert any("raylet" in c for c in commands)
    assert not any(os.path.join("dashboard", "dashboard.py") in c for c in commands)


@pytest.mark.slow
def test_uzo_run_in_a_long_home_starts_its_cluster_in_a_short_folder_and_prunes_it(
    tmp_path: Path,
) -> None:
    """A UZO_HOME too long for Ray's socket paths: the cluster `uzo run` starts keeps its
    session folders in /tmp/uzo-ray-<hash>, where the folder of a cluster gone is removed."""
    home = tmp_path / "home-with-a-long-enough-name"
    settings = EngineSettings(home=home)
    root = cluster.temp_root(settings)
    assert root != settings.ray_home
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = root / f"session_2026-01-01_00-00-00_000000_{dead.pid}"
    (gone / "logs").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UZO_", "RAY_", "PREFECT_"))}
    env.update(UZO_HOME=str(home), UZO_PREFECT_MIRROR="false", UZO_RAY_NUM_CPUS="1")
    try:
        done = _uzo_run(tmp_path, env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Ray: started a local cluster" in done.stdout
        assert not gone.exists()
        sessions = [p for p in root.glob("session_*") if not p.is_symlink()]
        assert len(sessions) == 1  # the run's own, kept until the next start
        assert (sessions[0] / "logs").is_dir()
        assert (home / "ray" / "auth_token").exists()  # the token stays in the home
    finally:
        shutil.rmtree(root, ignore_errors=True)
