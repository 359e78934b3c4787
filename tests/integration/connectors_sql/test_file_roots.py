"""SQLite and DuckDB files live in their subscription's own directory, readable by UZO only."""

from __future__ import annotations

import os
import sqlite3
import stat
from typing import TYPE_CHECKING

import pytest

from uzo_connectors.base import ConnectorContext, WriteMode
from uzo_connectors.duckdb.connector import DuckDBConfig, DuckDBConnector
from uzo_connectors.errors import ConfigError, ConnectionTestError
from uzo_connectors.sql.files import resolve_database_path
from uzo_connectors.sqlite.connector import SqliteConfig, SqliteConnector
from uzo_connectors.ssrf import EndpointPolicy
from uzo_connectors.testing import make_sample_table, read_all, write_table

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration


def tenant(root: Path, *shared: Path) -> ConnectorContext:
    return ConnectorContext(
        endpoint_policy=EndpointPolicy(), local_roots=(str(root), *map(str, shared))
    )


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """Two tenants' own directories, and a server-wide database root set as well."""
    shared_root = tmp_path / "database-root"
    a, b = tmp_path / "tenant-a", tmp_path / "tenant-b"
    for d in (shared_root, a, b):
        d.mkdir(mode=0o700)
    monkeypatch.setenv("UZO_CONNECTORS_DATABASE_ROOT", str(shared_root))
    return shared_root, a, b


@pytest.fixture
def wide_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_tenant_b_does_not_reach_tenant_a_sqlite_file(roots: tuple[Path, Path, Path]) -> None:
    _shared, a, b = roots
    writer = SqliteConnector(SqliteConfig(path="sales.db", create=True), tenant(a))
    write_table(writer, "t", make_sample_table(), WriteMode.OVERWRITE)
    writer.close()
    assert (a / "sales.db").exists()  # relative to the tenant's own directory...
    assert not (_shared / "sales.db").exists()  # ...not the server-wide root
    reader = SqliteConnector(SqliteConfig(path="sales.db"), tenant(b))
    with pytest.raises(ConnectionTestError, match="does not exist"):
        reader.test_connection()
    for path in (str(a / "sales.db"), "../tenant-a/sales.db"):
        with pytest.raises(ConfigError, match="outside the directories"):
            SqliteConnector(SqliteConfig(path=path), tenant(b)).test_connection()


def test_tenant_b_does_not_reach_tenant_a_duckdb_file(roots: tuple[Path, Path, Path]) -> None:
    _shared, a, b = roots
    writer = DuckDBConnector(DuckDBConfig(path="x.duckdb", create=True), tenant(a))
    write_table(writer, "t", make_sample_table(), WriteMode.OVERWRITE)
    with pytest.raises(ConnectionTestError, match="does not exist"):
        DuckDBConnector(DuckDBConfig(path="x.duckdb"), tenant(b)).test_connection()
    with pytest.raises(ConfigError, match="outside the directories"):
        DuckDBConnector(DuckDBConfig(path=str(a / "x.duckdb")), tenant(b)).test_connection()


def test_shared_roots_are_reachable_by_absolute_path(tmp_path: Path) -> None:
    own, shared = tmp_path / "own", tmp_path / "shared"
    own.mkdir()
    shared.mkdir()
    with sqlite3.connect(shared / "ref.db") as conn:
        conn.execute("CREATE TABLE t (id INTEGER)")
    connector = SqliteConnector(SqliteConfig(path=str(shared / "ref.db")), tenant(own, shared))
    connector.test_connection()
    connector.close()


def test_no_roots_means_no_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no local files"):
        resolve_database_path("a.db", local_roots=())


def test_operator_cli_still_uses_the_database_root(roots: tuple[Path, Path, Path]) -> None:
    shared_root, _a, _b = roots
    assert resolve_database_path("x.db") == (shared_root / "x.db").resolve()
    with pytest.raises(ConfigError, match="outside the database root"):
        resolve_database_path("../tenant-a/x.db")


def test_created_files_are_private(roots: tuple[Path, Path, Path], wide_umask: None) -> None:
    _shared, a, _b = roots
    lite = SqliteConnector(SqliteConfig(path="new.db", create=True), tenant(a))
    write_table(lite, "t", make_sample_table(), WriteMode.OVERWRITE)
    lite.close()
    duck = DuckDBConnector(DuckDBConfig(path="new.duckdb", create=True), tenant(a))
    write_table(duck, "t", make_sample_table(), WriteMode.OVERWRITE)
    for name in ("new.db", "new.duckdb"):
        assert stat.S_IMODE((a / name).stat().st_mode) == 0o600, name
    assert read_all(duck, "t").num_rows == 10
    assert sorted(p.name for p in a.iterdir() if p.name.startswith(".uzo-new-")) == []


def test_duckdb_memory_threads_and_spill_directory_are_bounded(
    roots: tuple[Path, Path, Path],
) -> None:
    _shared, a, _b = roots
    config = DuckDBConfig(path="b.duckdb", create=True, memory_limit_mb=256, threads=1)
    con = DuckDBConnector(config, tenant(a)).connect()
    try:
        memory, threads, temp = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads'),"
            " current_setting('temp_directory')"
        ).fetchone()
    finally:
        con.close()
    assert memory.startswith(("256", "244"))  # MiB, reported in DuckDB's own units
    assert threads == 1
    assert temp == str(a / "b.duckdb") + ".tmp"
    for field in ("memory_limit_mb", "threads", "temp_limit_mb"):
        with pytest.raises(ValueError, match=field):
            DuckDBConfig.model_validate({"path": "b.duckdb", field: 1e308})
