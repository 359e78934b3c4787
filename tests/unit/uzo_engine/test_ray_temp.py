"""Where a local Ray cluster keeps its folders, and which old session folders go (without
Ray: tests/integration/engine/test_shared_services.py starts the real thing)."""

from __future__ import annotations

import datetime
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from uzo_engine.runtime import cluster
from uzo_engine.settings import EngineSettings

if TYPE_CHECKING:
    import pytest


def _session(root: Path, pid: int, when: datetime.datetime) -> Path:
    path = root / f"session_{when.strftime('%Y-%m-%d_%H-%M-%S_%f')}_{pid}"
    (path / "sockets").mkdir(parents=True)
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_short_home_keeps_ray_folders_under_it(tmp_path: Path) -> None:
    home = Path("/tmp/uzo-short")
    assert cluster.temp_root(EngineSettings(home=home)) == home / "ray"


def test_a_home_too_long_for_ray_sockets_gets_a_short_folder_named_for_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    long_home = tmp_path / ("x" * 60)
    root = cluster.temp_root(EngineSettings(home=long_home))
    assert root.parent == Path("/tmp")
    assert root.name.startswith("uzo-ray-")
    assert root == cluster.temp_root(EngineSettings(home=long_home))  # stable per home
    assert root != cluster.temp_root(EngineSettings(home=tmp_path / ("y" * 60)))
    socket = f"{root}/session_2026-01-01_00-00-00_000000_4194304/sockets/plasma_store.99"
    assert len(socket.encode()) <= 107
    try:
        with caplog.at_level(logging.INFO, logger="uzo_engine.runtime.cluster"):
            assert cluster._prepare_temp_root(EngineSettings(home=long_home)) == root
        assert f"Ray's session folders go to {root}" in caplog.text
        assert root.stat().st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_session_folders_of_processes_gone_are_removed_live_ones_kept(tmp_path: Path) -> None:
    now = datetime.datetime.now()
    live = _session(tmp_path, os.getpid(), now)
    gone = _session(tmp_path, _dead_pid(), now)
    # this pid, but a session made long before this process started: the pid was reused
    reused = _session(tmp_path, os.getpid(), now - datetime.timedelta(days=30))
    latest_dead = _session(tmp_path, _dead_pid(), now - datetime.timedelta(minutes=1))
    (tmp_path / "session_latest").symlink_to(latest_dead)
    (tmp_path / "auth_token").write_text("t")
    other = tmp_path / "session_not_ray"
    other.mkdir()

    removed = cluster.remove_old_sessions(tmp_path)

    assert sorted(removed) == sorted([gone, reused])
    assert live.is_dir()
    assert latest_dead.is_dir()  # the latest is kept, for its logs
    assert other.is_dir()
    assert (tmp_path / "auth_token").exists()
