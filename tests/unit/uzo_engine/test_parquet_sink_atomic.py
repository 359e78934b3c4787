"""parquet_sink is atomic: the target holds the old file or the new one, never part of
one, whatever happens to the writer (killed, failing part-way, cancelled); the staging
files of dead writers are cleaned up, those of live ones never."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.unit import sink_faults
from tests.unit.uzo_engine.helpers import tenant_ctx
from uzo_connectors.errors import BlockedEndpointError
from uzo_connectors.files import staging
from uzo_engine.nodes import io

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

OLD = pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]})
NEW = pa.table({"id": [10, 20], "name": ["x", "y"]})


def write(
    root: Path, path: str, table: pa.Table, cancelled: Callable[[], bool] | None = None
) -> None:
    ctx = tenant_ctx(root)
    if cancelled is not None:
        ctx.cancelled = cancelled
    node = io.ParquetSinkNode()
    node.run(node.parse_params({"path": path}), {"in": table}, ctx)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    write(root, "out.parquet", OLD)
    return root


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[str]]:
    """A live process (until the test ends)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, text=True
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=30)


def dead_owner() -> staging.Owner:
    """The owner token of a process that has exited."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        by = staging.owner(proc.pid)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    return by


def test_a_rewrite_replaces_the_file_and_leaves_no_staging_file(root: Path) -> None:
    write(root, "out.parquet", NEW)
    assert pq.read_table(root / "out.parquet").equals(NEW)
    assert sink_faults.staging_entries(root) == []


def test_a_killed_write_leaves_the_previous_file_and_the_next_write_cleans_up(
    root: Path,
) -> None:
    proc = sink_faults.writer("node", root, "out.parquet", "overwrite", "park")
    sink_faults.kill_mid_write(proc, root)

    assert pq.read_table(root / "out.parquet").equals(OLD)  # intact and readable
    (left,) = sink_faults.staging_entries(root)  # a kill cannot clean up after itself
    parsed = staging.parse(left)
    assert parsed is not None
    assert parsed[0].pid == proc.pid
    assert parsed[1] == "out.parquet"

    write(root, "out.parquet", NEW)  # the next write into the directory removes it
    assert sink_faults.staging_entries(root) == []
    assert pq.read_table(root / "out.parquet").equals(NEW)


def test_a_write_that_fails_part_way_keeps_the_old_file_and_no_staging_file(root: Path) -> None:
    before = (root / "out.parquet").read_bytes()
    proc = sink_faults.writer("node", root, "out.parquet", "overwrite", "fsize")
    result = sink_faults.failed_write(proc)
    assert result["error"] is not None, result
    assert result["errno"] == errno.EFBIG, result  # the kernel refused the write part-way
    assert (root / "out.parquet").read_bytes() == before
    assert pq.read_table(root / "out.parquet").equals(OLD)
    assert sink_faults.staging_entries(root) == []


def test_a_cancelled_write_keeps_the_old_file_and_no_staging_file(root: Path) -> None:
    checks = 0

    def cancelled() -> bool:
        nonlocal checks
        checks += 1
        return checks > 1  # after the first row group is written

    big = pa.table({"id": pa.array(range(io.ROW_GROUP_ROWS + 10), pa.int32())})
    with pytest.raises(RuntimeError, match="cancelled"):
        write(root, "out.parquet", big, cancelled)
    assert checks == 2
    assert pq.read_table(root / "out.parquet").equals(OLD)
    assert sink_faults.staging_entries(root) == []


def test_an_exception_from_the_writer_keeps_the_old_file(root: Path) -> None:
    # Parquet has no month_day_nano interval type: the writer fails once the staging
    # file is open
    bad = pa.table({"d": pa.array([pa.MonthDayNano([1, 2, 3])], pa.month_day_nano_interval())})
    with pytest.raises(pa.ArrowNotImplementedError):
        write(root, "out.parquet", bad)
    assert pq.read_table(root / "out.parquet").equals(OLD)
    assert sink_faults.staging_entries(root) == []


def test_staging_files_of_dead_writers_go_and_those_of_live_ones_stay(
    root: Path, sleeper: subprocess.Popen[str]
) -> None:
    dead = root / staging.staging_name("out.parquet", by=dead_owner())
    live = root / staging.staging_name("out.parquet", by=staging.owner(sleeper.pid))
    foreign = root / staging.staging_name(
        "out.parquet", by=staging.Owner("ffffffff", "0" * 8, 1, 1)
    )
    legacy = root / ".uzo-staging-0123456789ab-out.parquet"  # before owners were named
    for path in (dead, live, foreign, legacy):
        path.write_bytes(b"partial")

    write(root, "out.parquet", NEW)

    assert not dead.exists()
    assert live.read_bytes() == b"partial"
    assert foreign.exists()
    assert legacy.exists()
    assert pq.read_table(root / "out.parquet").equals(NEW)


def test_paths_outside_the_roots_are_still_refused_and_nothing_is_staged(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    for path in (str(outside / "x.parquet"), "link/x.parquet", "../outside/x.parquet"):
        with pytest.raises(BlockedEndpointError):
            write(root, path, NEW)
    assert list(outside.iterdir()) == []
    assert list(root.iterdir()) == [root / "link"]


def test_the_staging_file_is_in_the_targets_resolved_directory(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real")  # a link inside the root is followed
    seen: list[str] = []

    def cancelled() -> bool:
        seen.extend(sink_faults.staging_entries(root / "real"))
        return False

    write(root, "alias/out.parquet", NEW, cancelled)
    assert len(seen) == 1
    assert pq.read_table(root / "real" / "out.parquet").equals(NEW)
    assert sink_faults.staging_entries(root / "real") == []


def test_a_rewrite_keeps_the_files_permissions(root: Path) -> None:
    os.chmod(root / "out.parquet", 0o640)
    write(root, "out.parquet", NEW)
    assert stat.S_IMODE((root / "out.parquet").stat().st_mode) == 0o640
    old_umask = os.umask(0o022)
    try:
        write(root, "new.parquet", NEW)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((root / "new.parquet").stat().st_mode) == 0o644  # a plain new file
