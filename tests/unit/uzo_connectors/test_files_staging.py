"""Local staging (uzo_connectors.files.staging) and the file connector's sink on it: a
killed or failing write leaves the old target; stale staging entries are swept by the
rule in the module's docstring, and a live writer's never."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.unit import sink_faults
from uzo_connectors.base import ConnectorContext, WriteMode
from uzo_connectors.files import staging
from uzo_connectors.files.connector import FileConnector
from uzo_connectors.registry import create_connector
from uzo_connectors.ssrf import EndpointPolicy
from uzo_connectors.testing import read_all, write_table

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

OLD = pa.table({"id": [1, 2, 3]})
NEW = pa.table({"id": [7, 8]})


def connector(root: Path) -> FileConnector:
    built = create_connector(
        "file", {"root": str(root)}, ConnectorContext(EndpointPolicy(), local_roots=(str(root),))
    )
    assert isinstance(built, FileConnector)
    return built


def _waiting() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )


@pytest.fixture
def live() -> Iterator[staging.Owner]:
    """The owner token of a process that runs until the test ends."""
    proc = _waiting()
    try:
        yield staging.owner(proc.pid)
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture
def dead() -> staging.Owner:
    """The owner token of a process that has exited."""
    proc = _waiting()
    try:
        by = staging.owner(proc.pid)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    return by


def entry(directory: Path, by: staging.Owner, name: str = "t.parquet", suffix: str = "") -> Path:
    path = directory / staging.staging_name(name, suffix, by=by)
    path.write_bytes(b"partial")
    return path


# ----- the cleanup rule ------------------------------------------------------------------------


def test_names_carry_their_owner_and_are_unique_per_attempt() -> None:
    first, second = staging.staging_name("t.parquet"), staging.staging_name("t.parquet")
    assert first != second
    assert first.startswith(staging.PREFIX)
    assert staging.parse(first) == (staging.owner(), "t.parquet")
    assert staging.parse(".uzo-staging-0123456789ab-t.parquet") is None  # older UZO
    assert not staging.is_stale(staging.owner())


def test_sweep_removes_dead_writers_entries_only(
    tmp_path: Path, dead: staging.Owner, live: staging.Owner
) -> None:
    removed = [
        entry(tmp_path, dead),
        entry(tmp_path, staging.Owner(live.host, live.boot, live.pid, live.start + 1)),  # reused
        entry(
            tmp_path,
            staging.Owner(
                dead.host, "f" * 8 if dead.boot != "f" * 8 else "0" * 8, live.pid, live.start
            ),
        ),  # an earlier boot
    ]
    kept = [
        entry(tmp_path, live),
        entry(tmp_path, staging.owner()),  # this process: a write in progress
        entry(
            tmp_path,
            staging.Owner(
                "ffffffff" if dead.host != "ffffffff" else "0" * 8, dead.boot, dead.pid, dead.start
            ),
        ),  # another host
        tmp_path / ".uzo-staging-0123456789ab-t.parquet",  # older UZO: no owner to check
        tmp_path / "t.parquet",
    ]
    for path in kept[-2:]:
        path.write_bytes(b"kept")

    assert sorted(staging.sweep(str(tmp_path))) == sorted(p.name for p in removed)
    assert sorted(tmp_path.iterdir()) == sorted(kept)


def test_names_that_only_look_like_ours_are_kept(tmp_path: Path) -> None:
    me = staging.owner()
    planted = [
        f"{staging.PREFIX}{me.host}.{me.boot}.0.{me.start}-0123abcd-t.parquet",  # pid 0
        f"{staging.PREFIX}{me.host}.{me.boot}.9999999999.1-0123abcd-t.parquet",  # no such pid
        f"{staging.PREFIX}{me.host}.{me.boot}.{me.pid}.{me.start}-0123abcd",  # no name
    ]
    for name in planted:
        (tmp_path / name).write_bytes(b"x")
    assert staging.sweep(str(tmp_path)) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(planted)


def test_sweep_removes_a_dead_writers_directory_and_a_link_but_not_its_target(
    tmp_path: Path, dead: staging.Owner
) -> None:
    staged_dir = tmp_path / staging.staging_name("ds", by=dead)
    (staged_dir / "sub").mkdir(parents=True)
    (staged_dir / "sub" / "part-0.parquet").write_bytes(b"x")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    link = tmp_path / staging.staging_name("ln", by=dead)
    link.symlink_to(outside)

    assert len(staging.sweep(str(tmp_path))) == 2
    assert list(tmp_path.iterdir()) == []
    assert (outside / "keep.txt").read_text() == "keep"


def test_a_dead_writers_old_copy_is_restored_if_its_dataset_is_missing(
    tmp_path: Path, dead: staging.Owner
) -> None:
    # killed between moving the old directory aside and moving the new one in
    old = tmp_path / staging.staging_name("ds", staging.OLD_SUFFIX, by=dead)
    old.mkdir()
    (old / "part-0.parquet").write_bytes(b"the only copy")
    new = tmp_path / staging.staging_name("ds", by=dead)
    new.mkdir()
    (new / "part-1.parquet").write_bytes(b"never published")
    assert sorted(staging.sweep(str(tmp_path))) == sorted([old.name, new.name])
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]
    assert (tmp_path / "ds" / "part-0.parquet").read_bytes() == b"the only copy"


def test_a_dead_writers_old_copy_is_removed_once_the_new_dataset_is_in_place(
    tmp_path: Path, dead: staging.Owner
) -> None:
    old = tmp_path / staging.staging_name("ds", staging.OLD_SUFFIX, by=dead)
    old.mkdir()
    (old / "part-0.parquet").write_bytes(b"superseded")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "part-1.parquet").write_bytes(b"new")
    assert staging.sweep(str(tmp_path)) == [old.name]
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]
    assert [p.name for p in (tmp_path / "ds").iterdir()] == ["part-1.parquet"]


def test_a_staged_file_is_fsynced_before_the_rename_and_the_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append("fsync dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync file")
        real_fsync(fd)

    def replace(*args: object, **kwargs: object) -> None:
        calls.append("replace")
        real_replace(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with staging.StagedFile(str(tmp_path), "t.bin") as staged:
        staged.file.write(b"data")
    assert calls == ["fsync file", "replace", "fsync dir"]
    assert (tmp_path / "t.bin").read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.bin"]


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_leaving_a_staged_file_with_an_exception_discards_it(
    tmp_path: Path, error: type[BaseException]
) -> None:
    (tmp_path / "t.bin").write_bytes(b"old")

    def half_write() -> None:
        with staging.StagedFile(str(tmp_path), "t.bin") as staged:
            staged.file.write(b"new, half written")
            raise error

    with pytest.raises(error):
        half_write()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.bin"]
    assert (tmp_path / "t.bin").read_bytes() == b"old"


def test_a_staged_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077 | 0o200)
    try:
        with staging.StagedFile(str(tmp_path), "t.bin") as staged:
            staged.file.write(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "t.bin").stat().st_mode & 0o777 == 0o600


# ----- the file connector's sink --------------------------------------------------------------

# dataset, write mode: one file, a directory rewritten, a directory given a new part file
CASES = [
    ("out.parquet", "overwrite"),
    ("outdir", "overwrite"),
    ("outdir", "append"),
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    write_table(connector(root), "out.parquet", OLD, WriteMode.OVERWRITE)
    write_table(connector(root), "outdir", OLD, WriteMode.OVERWRITE)
    return root


def staging_dir(root: Path, dataset: str, mode: str) -> Path:
    """Where the sink stages: the target's directory; a directory's own for an append."""
    return root / dataset if (dataset, mode) == ("outdir", "append") else root


@pytest.mark.parametrize(("dataset", "mode"), CASES)
def test_a_killed_file_sink_leaves_the_old_data_and_the_next_write_cleans_up(
    root: Path, dataset: str, mode: str
) -> None:
    where = staging_dir(root, dataset, mode)
    proc = sink_faults.writer("file", root, dataset, mode, "park")
    sink_faults.kill_mid_write(proc, where)

    assert read_all(connector(root), dataset).equals(OLD)
    (left,) = sink_faults.staging_entries(where)
    parsed = staging.parse(left)
    assert parsed is not None
    assert parsed[0].pid == proc.pid

    write_table(connector(root), dataset, NEW, WriteMode(mode))
    assert sink_faults.staging_entries(where) == []
    expected = pa.concat_tables([OLD, NEW]) if mode == "append" else NEW
    assert read_all(connector(root), dataset).sort_by("id").equals(expected)


@pytest.mark.parametrize(("dataset", "mode"), CASES)
def test_a_file_sink_write_failing_part_way_leaves_the_old_data_and_no_staging(
    root: Path, dataset: str, mode: str
) -> None:
    proc = sink_faults.writer("file", root, dataset, mode, "fsize")
    result = sink_faults.failed_write(proc)
    assert result["error"] == "WriteError", result
    assert f"[Errno {errno.EFBIG}]" in str(result["text"]), result
    assert read_all(connector(root), dataset).equals(OLD)
    assert sink_faults.staging_entries(root) == []
    assert sink_faults.staging_entries(root / "outdir") == []


def test_a_file_sink_commit_is_a_durable_rename(root: Path) -> None:
    write_table(connector(root), "out.parquet", NEW, WriteMode.OVERWRITE)
    assert pq.read_table(root / "out.parquet").equals(NEW)
    assert sink_faults.staging_entries(root) == []


def test_a_root_reached_through_a_symbolic_link_is_written_and_swept(
    tmp_path: Path, dead: staging.Owner
) -> None:
    (tmp_path / "real").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "real")
    stale = entry(tmp_path / "real", dead)
    write_table(connector(link), "t.parquet", NEW, WriteMode.OVERWRITE)
    assert not stale.exists()
    assert pq.read_table(tmp_path / "real" / "t.parquet").equals(NEW)
