"""Local roots: symlinks never lead a read, glob, discover or write out of the root; a
missing root is a clear config error; what a sink writes is private (0600/0700)."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest

from uzo_connectors.base import ConnectorContext, ReadRequest, WriteMode, WriteRequest
from uzo_connectors.errors import ConfigError, DatasetNotFoundError
from uzo_connectors.files.connector import FileConnector
from uzo_connectors.registry import create_connector
from uzo_connectors.ssrf import EndpointPolicy
from uzo_connectors.testing import make_sample_table, read_all, write_table

if TYPE_CHECKING:
    from pathlib import Path

SECRET_LINE = "TOP_SECRET_OUTSIDE=1"


def connector(root: Path, **config: object) -> FileConnector:
    built = create_connector(
        "file",
        {"root": str(root), **config},
        ConnectorContext(EndpointPolicy(), local_roots=(str(root),)),
    )
    assert isinstance(built, FileConnector)
    return built


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """root/sub/link -> a file outside the root; root/sub2 -> a directory outside.

    The outside file is a CSV whose header is a "secret": seeing it as a column name is
    how the attack showed /etc/os-release.
    """
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(f"{SECRET_LINE}\n1\n")
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "ok.csv").write_text("a\n1\n2\n")
    (root / "sub" / "link.csv").symlink_to(outside / "secret.csv")
    (root / "sub2").symlink_to(outside, target_is_directory=True)
    (root / "top.csv").symlink_to(outside / "secret.csv")
    return root


def _shown(tables: object) -> str:
    return repr(tables)


def test_discover_does_not_expose_files_outside_the_root(planted: Path) -> None:
    found = {d.name: d for d in connector(planted).discover()}
    assert "top.csv" not in found  # a top-level link out of the root is skipped
    assert "sub2" not in found
    assert found["sub"].schema is not None
    assert found["sub"].schema.names == ["a"]
    assert SECRET_LINE not in _shown(found)


def test_reading_a_directory_skips_links_that_leave_the_root(planted: Path) -> None:
    table = read_all(connector(planted), "sub")
    assert table.column_names == ["a"]
    assert table.num_rows == 2


def test_glob_skips_links_that_leave_the_root(planted: Path) -> None:
    table = read_all(connector(planted), "sub/*")
    assert table.column_names == ["a"]
    assert table.num_rows == 2
    with pytest.raises(DatasetNotFoundError):
        read_all(connector(planted), "sub/link*")


@pytest.mark.parametrize("dataset", ["sub/link.csv", "top.csv", "sub2", "sub2/secret.csv"])
def test_a_link_out_of_the_root_is_refused(planted: Path, dataset: str) -> None:
    with pytest.raises(ConfigError, match="leaves the root"):
        connector(planted).plan_read(ReadRequest(dataset))


def test_glob_through_a_linked_directory_is_refused(planted: Path) -> None:
    with pytest.raises(ConfigError, match="leaves the root"):
        connector(planted).plan_read(ReadRequest("sub2/*"))


def test_writes_do_not_follow_links_out_of_the_root(planted: Path, tmp_path: Path) -> None:
    table = make_sample_table(3)
    for dataset in ("sub2/new.parquet", "sub2/newdir", "sub/link.csv"):
        with pytest.raises(ConfigError, match="leaves the root"):
            connector(planted).open_sink(WriteRequest(dataset, table.schema, WriteMode.OVERWRITE))
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["secret.csv"]
    assert (tmp_path / "outside" / "secret.csv").read_text().startswith(SECRET_LINE)


def test_links_inside_the_root_still_work(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    pq.write_table(make_sample_table(4), root / "data" / "t.parquet")
    (root / "alias.parquet").symlink_to(root / "data" / "t.parquet")
    assert read_all(connector(root), "alias.parquet").num_rows == 4


def test_a_fifo_is_skipped_not_read(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "a.csv").write_text("a\n1\n")
    os.mkfifo(root / "d" / "pipe.csv")  # reading it would block forever
    assert read_all(connector(root), "d").num_rows == 1
    assert read_all(connector(root), "d/*.csv").num_rows == 1
    with pytest.raises(DatasetNotFoundError, match="regular file"):
        connector(root).plan_read(ReadRequest("d/pipe.csv"))


# ----- a root that does not exist -------------------------------------------------------------


def test_missing_local_root_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    c = connector(missing)
    for call in (c.discover, c.test_connection, lambda: c.plan_read(ReadRequest("a.csv"))):
        with pytest.raises(ConfigError, match=f"local root {missing} does not exist"):
            call()


def test_a_root_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        connector(tmp_path / "f").discover()


def test_missing_dataset_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError):
        connector(tmp_path).plan_read(ReadRequest("nope.csv"))


def test_a_sink_creates_a_missing_root(tmp_path: Path) -> None:
    root = tmp_path / "new" / "root"
    write_table(connector(root), "t.parquet", make_sample_table(2), WriteMode.OVERWRITE)
    assert (root / "t.parquet").exists()


# ----- permissions of what a sink writes -------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mode", [WriteMode.OVERWRITE, WriteMode.APPEND, WriteMode.UPSERT])
@pytest.mark.parametrize("dataset", ["out/deep/t.parquet", "out/deep/tdir"])
def test_written_files_are_0600_and_directories_0700(
    tmp_path: Path, dataset: str, mode: WriteMode
) -> None:
    old = os.umask(0o022)  # the usual umask, which made files 0644 before
    try:
        c = connector(tmp_path)
        table = make_sample_table(3)
        write_table(c, dataset, table, WriteMode.OVERWRITE)
        if mode is WriteMode.UPSERT:
            sink = c.open_sink(WriteRequest(dataset, table.schema, mode, keys=("id",)))
        else:
            sink = c.open_sink(WriteRequest(dataset, table.schema, mode))
        with sink:
            sink.write(table.to_batches()[0])
            # a staging file exists now (or the rows are buffered for the merge)
            for path in tmp_path.rglob("*"):
                if path.is_file():
                    assert _mode(path) == 0o600, path
        sink.commit()
    finally:
        os.umask(old)
    paths = list(tmp_path.rglob("*"))
    assert any(p.is_file() for p in paths)
    for path in paths:
        expected = 0o700 if path.is_dir() else 0o600
        assert _mode(path) == expected, (path, oct(_mode(path)))
