"""The ``sqlite`` connector: the contract plus path confinement and SQLite specifics."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest

from uzo_connectors.base import ConnectorContext, Incremental, ReadRequest, WriteMode, WriteRequest
from uzo_connectors.errors import ConfigError, ConnectionTestError, WriteError
from uzo_connectors.sql.reader import IncrementalReadPlan
from uzo_connectors.sqlite.connector import SqliteConfig, SqliteConnector
from uzo_connectors.ssrf import EndpointPolicy
from uzo_connectors.testing import (
    BadCredentials,
    ConnectorContract,
    make_sample_table,
    read_all,
    read_plan,
    same_rows,
    write_table,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CONTEXT = ConnectorContext(endpoint_policy=EndpointPolicy())


@pytest.fixture
def db_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("UZO_CONNECTORS_DATABASE_ROOT", str(tmp_path))
    return tmp_path


def _connector(path: str, create: bool = True) -> SqliteConnector:
    return SqliteConnector(SqliteConfig(path=path, create=create), CONTEXT)


class TestSqliteContract(ConnectorContract):
    @pytest.fixture
    def connector(self, db_root: Path) -> Iterator[SqliteConnector]:
        connector = _connector("contract.db")
        yield connector
        connector.close()

    @pytest.fixture
    def sample_dataset(self, connector: SqliteConnector, sample_table: pa.Table) -> str:
        write_table(connector, "sample", sample_table, WriteMode.OVERWRITE)
        return "sample"

    @pytest.fixture
    def writable_dataset(self) -> str:
        return "target"

    @pytest.fixture
    def bad_credentials(self) -> BadCredentials | None:
        return None


def test_path_outside_root_is_refused(db_root: Path) -> None:
    for path in ("../escape.db", "/etc/passwd", str(db_root.parent / "x.db")):
        with pytest.raises(ConfigError, match="outside the database root"):
            _connector(path).test_connection()


def test_no_root_configured_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UZO_CONNECTORS_DATABASE_ROOT", raising=False)
    with pytest.raises(ConfigError, match="UZO_CONNECTORS_DATABASE_ROOT"):
        _connector("a.db").test_connection()


def test_missing_file_without_create(db_root: Path) -> None:
    with pytest.raises(ConnectionTestError, match="does not exist"):
        _connector("missing.db", create=False).test_connection()
    assert not (db_root / "missing.db").exists()


def test_types_round_trip_and_incremental_high_water_mark(db_root: Path) -> None:
    connector = _connector("types.db")
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "flag": [True, False, None],
            "ratio": [0.5, None, 2.5],
            "label": ["a", "b'; DROP TABLE t; --", None],
        }
    )
    write_table(connector, "t", table, WriteMode.FAIL_IF_EXISTS)
    assert same_rows(read_all(connector, "t"), table)
    plan = connector.plan_read(ReadRequest("t", incremental=Incremental("id", 1)))
    assert isinstance(plan, IncrementalReadPlan)
    assert plan.high_water_mark == 3
    assert read_plan(plan).column("id").to_pylist() == [2, 3]
    limited = connector.plan_read(ReadRequest("t", incremental=Incremental("id", None), limit=2))
    assert isinstance(limited, IncrementalReadPlan)
    assert limited.high_water_mark == 2
    empty = connector.plan_read(ReadRequest("t", incremental=Incremental("id", 3)))
    assert isinstance(empty, IncrementalReadPlan)
    assert empty.high_water_mark is None
    assert read_plan(empty).num_rows == 0
    connector.close()


def test_predicate_injection_is_refused(db_root: Path) -> None:
    connector = _connector("inj.db")
    write_table(connector, "t", make_sample_table(), WriteMode.OVERWRITE)
    for predicate in ("id > 1; DROP TABLE t", "id IN (SELECT id FROM t)", "load_extension('x')"):
        with pytest.raises(ConfigError):
            connector.plan_read(ReadRequest("t", predicate=predicate))
    assert read_all(connector, "t", predicate="name LIKE 'name-1%'").num_rows == 2
    connector.close()


def test_failure_mid_write_leaves_target_untouched(db_root: Path) -> None:
    connector = _connector("mid.db")
    sample = make_sample_table()
    write_table(connector, "t", sample, WriteMode.OVERWRITE, keys=())
    with sqlite3.connect(db_root / "mid.db") as raw:
        raw.execute("CREATE UNIQUE INDEX t_name ON t(name)")
    sink = connector.open_sink(WriteRequest("t", sample.schema, mode=WriteMode.OVERWRITE))
    sink.write(sample.slice(0, 5).to_batches()[0])
    bad: dict[str, Any] = {"id": [99, 98], "name": ["dup", "dup"], "amount": [1.0, 2.0]}
    with pytest.raises(WriteError, match="left as it was"):
        sink.write(pa.RecordBatch.from_pydict(bad, schema=sample.schema))
    sink.abort()
    assert same_rows(read_all(connector, "t"), sample)
    # a new table created by an aborted write disappears with the transaction
    other = connector.open_sink(WriteRequest("fresh", sample.schema))
    other.write(sample.to_batches()[0])
    other.abort()
    assert "fresh" not in {d.name for d in connector.discover()}
    connector.close()
