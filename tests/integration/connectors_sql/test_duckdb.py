"""The ``duckdb`` connector (a user's DuckDB file): the contract plus confinement."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

from uzo_connectors.base import ConnectorContext, Incremental, ReadRequest, WriteMode, WriteRequest
from uzo_connectors.duckdb.connector import DuckDBConfig, DuckDBConnector
from uzo_connectors.errors import ConfigError, WriteError
from uzo_connectors.sql.reader import IncrementalReadPlan
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
    from pathlib import Path

CONTEXT = ConnectorContext(endpoint_policy=EndpointPolicy())


@pytest.fixture
def db_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("UZO_CONNECTORS_DATABASE_ROOT", str(tmp_path))
    return tmp_path


def _connector(path: str = "data.duckdb") -> DuckDBConnector:
    return DuckDBConnector(DuckDBConfig(path=path, create=True), CONTEXT)


class TestDuckDBContract(ConnectorContract):
    @pytest.fixture
    def connector(self, db_root: Path) -> DuckDBConnector:
        return _connector()

    @pytest.fixture
    def sample_dataset(self, connector: DuckDBConnector, sample_table: pa.Table) -> str:
        write_table(connector, "sample", sample_table, WriteMode.OVERWRITE)
        return "sample"

    @pytest.fixture
    def writable_dataset(self) -> str:
        return "target"

    @pytest.fixture
    def bad_credentials(self) -> BadCredentials | None:
        return None


def test_path_confined_to_root(db_root: Path) -> None:
    with pytest.raises(ConfigError, match="outside the database root"):
        _connector("../../etc/x.duckdb").test_connection()


def test_external_access_is_off(db_root: Path) -> None:
    connector = _connector()
    write_table(connector, "t", make_sample_table(), WriteMode.OVERWRITE)
    (db_root / "secret.csv").write_text("a\n1\n")
    con = connector.connect()
    with pytest.raises(Exception, match=r"(?i)disabled|permission"):
        con.sql(f"SELECT * FROM read_csv('{db_root / 'secret.csv'}')").fetchall()
    con.close()
    for bad in ("id > 1; DROP TABLE t", "read_csv('/etc/passwd') IS NULL"):
        with pytest.raises(ConfigError):
            connector.plan_read(ReadRequest("t", predicate=bad))


def test_incremental_high_water_mark_and_mid_write_failure(db_root: Path) -> None:
    connector = _connector()
    sample = make_sample_table()
    write_table(connector, "t", sample, WriteMode.OVERWRITE)
    plan = connector.plan_read(ReadRequest("t", incremental=Incremental("id", 7)))
    assert isinstance(plan, IncrementalReadPlan)
    assert plan.high_water_mark == 10
    assert read_plan(plan).column("id").to_pylist() == [8, 9, 10]
    sink = connector.open_sink(WriteRequest("t", sample.schema, mode=WriteMode.OVERWRITE))
    sink.write(sample.to_batches()[0])
    wrong = pa.RecordBatch.from_pydict({"id": ["not-a-number"], "name": ["x"], "amount": [1.0]})
    with pytest.raises(WriteError, match="left as it was"):
        sink.write(wrong)
    assert same_rows(read_all(connector, "t"), sample)
