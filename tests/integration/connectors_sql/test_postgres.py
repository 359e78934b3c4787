"""The ``postgres`` connector against an embedded PostgreSQL 16 (pgserver)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

import psycopg
import pyarrow as pa
import pytest

from uzo_connectors.base import ConnectorContext, Incremental, ReadRequest, WriteMode, WriteRequest
from uzo_connectors.errors import BlockedEndpointError, ConfigError, WriteError
from uzo_connectors.postgres.connector import PostgresConfig, PostgresConnector
from uzo_connectors.sql.reader import IncrementalReadPlan
from uzo_connectors.ssrf import EndpointPolicy
from uzo_connectors.testing import (
    BadCredentials,
    ConnectorContract,
    assert_no_secret,
    make_sample_table,
    read_all,
    read_plan,
    same_rows,
    write_table,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration.connectors_sql.conftest import PgServer

pytestmark = pytest.mark.integration

LOOPBACK = ConnectorContext(endpoint_policy=EndpointPolicy.permissive_for_tests())


def make(pg: PgServer, context: ConnectorContext = LOOPBACK, **over: object) -> PostgresConnector:
    config = PostgresConfig.model_validate({"host": pg.socket_dir, "port": pg.port, **over})
    return PostgresConnector(config, context)


@pytest.fixture
def pg(pg_server: PgServer) -> Iterator[PostgresConnector]:
    connector = make(pg_server)
    yield connector
    connector.close()


def drop(pg_server: PgServer, *tables: str) -> None:
    with psycopg.connect(pg_server.uri, autocommit=True) as conn:
        for t in tables:
            conn.execute(f'DROP TABLE IF EXISTS "{t}"')


class TestPostgresContract(ConnectorContract):
    @pytest.fixture
    def connector(self, pg: PostgresConnector) -> PostgresConnector:
        return pg

    @pytest.fixture
    def sample_dataset(self, pg: PostgresConnector, sample_table: pa.Table) -> str:
        write_table(pg, "contract_sample", sample_table, WriteMode.OVERWRITE)
        return "contract_sample"

    @pytest.fixture
    def writable_dataset(self, pg_server: PgServer) -> Iterator[str]:
        drop(pg_server, "contract_target")
        yield "contract_target"
        drop(pg_server, "contract_target")

    @pytest.fixture
    def bad_credentials(self, pg_server: PgServer) -> BadCredentials:
        secret = "pg-wrong-Secret-42"
        return BadCredentials(make(pg_server, user="no_such_role", password=secret), secret)


def test_mixed_types_round_trip_through_arrow(pg: PostgresConnector, pg_server: PgServer) -> None:
    drop(pg_server, "mixed")
    with psycopg.connect(pg_server.uri, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE mixed (id int PRIMARY KEY, big bigint, f real, d double precision,"
            " n numeric(10,2), t text, b boolean, ts timestamp, tz timestamptz, day date,"
            " raw bytea)"
        )
        conn.execute(
            "INSERT INTO mixed VALUES (1, 10000000000, 1.5, 2.25, 12.34, 'x', true,"
            " '2024-01-02 03:04:05', '2024-01-02 03:04:05+00', '2024-01-02', '\\x0102'),"
            " (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
        )
    info = {d.name: d for d in pg.discover()}["mixed"]
    assert info.schema is not None
    assert info.schema.field("n").type == pa.decimal128(10, 2)
    table = read_all(pg, "mixed")
    row = table.to_pylist()[0]
    assert row["big"] == 10_000_000_000
    assert row["ts"] == dt.datetime(2024, 1, 2, 3, 4, 5)
    assert row["tz"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert row["raw"] == b"\x01\x02"
    assert Decimal(str(row["n"])) == Decimal("12.34")
    # write it back under another name: every type survives
    drop(pg_server, "mixed_copy")
    write_table(pg, "mixed_copy", table, WriteMode.FAIL_IF_EXISTS)
    assert read_all(pg, "mixed_copy").to_pylist() == table.to_pylist()


def test_incremental_returns_high_water_mark(pg: PostgresConnector, pg_server: PgServer) -> None:
    drop(pg_server, "events")
    write_table(pg, "events", make_sample_table(20), WriteMode.OVERWRITE)
    plan = pg.plan_read(ReadRequest("events", incremental=Incremental("id", 15)))
    assert isinstance(plan, IncrementalReadPlan)
    assert plan.high_water_mark == 20
    assert read_plan(plan).column("id").to_pylist() == [16, 17, 18, 19, 20]
    plan = pg.plan_read(
        ReadRequest("events", incremental=Incremental("id", 5), limit=3, predicate="amount > 0")
    )
    assert isinstance(plan, IncrementalReadPlan)
    assert plan.high_water_mark == 8
    assert read_plan(plan).column("id").to_pylist() == [6, 7, 8]


def test_batches_are_bounded(pg: PostgresConnector, pg_server: PgServer) -> None:
    drop(pg_server, "many")
    write_table(pg, "many", make_sample_table(1000), WriteMode.OVERWRITE, batch_rows=500)
    plan = pg.plan_read(ReadRequest("many", batch_size=128))
    sizes = [b.num_rows for t in plan.tasks for b in t.read()]
    assert sum(sizes) == 1000
    assert max(sizes) <= 128


def test_predicate_is_validated_and_transpiled(pg: PostgresConnector, pg_server: PgServer) -> None:
    drop(pg_server, "people")
    write_table(pg, "people", make_sample_table(), WriteMode.OVERWRITE)
    assert read_all(pg, "people", predicate="NAME LIKE 'name-1%' AND amount < 10").num_rows == 1
    for bad in ("1=1; DROP TABLE people", "pg_sleep(5) IS NULL", "id = (SELECT 1)"):
        with pytest.raises(ConfigError):
            pg.plan_read(ReadRequest("people", predicate=bad))
    assert read_all(pg, "people").num_rows == 10


def test_upsert_uses_on_conflict_and_failure_mid_write_rolls_back(
    pg: PostgresConnector, pg_server: PgServer
) -> None:
    drop(pg_server, "keyed")
    sample = make_sample_table()
    write_table(pg, "keyed", sample, WriteMode.UPSERT, keys=("id",))  # creates with PRIMARY KEY
    changes = pa.table(
        {"id": pa.array([1, 1, 11], pa.int64()), "name": ["a", "b", "c"], "amount": [0.0, 1, 2]}
    )
    write_table(pg, "keyed", changes, WriteMode.UPSERT, keys=("id",), batch_rows=1)
    rows = {r["id"]: r["name"] for r in read_all(pg, "keyed").to_pylist()}
    assert rows[1] == "b"  # the last row per key wins
    assert len(rows) == 11
    before = read_all(pg, "keyed")
    # overwrite, then a batch that violates NOT NULL on the key: everything rolls back
    sink = pg.open_sink(WriteRequest("keyed", sample.schema, mode=WriteMode.OVERWRITE))
    sink.write(sample.to_batches()[0])
    bad = pa.RecordBatch.from_pydict(
        {"id": pa.array([None], pa.int64()), "name": ["x"], "amount": [1.0]}, schema=sample.schema
    )
    with pytest.raises(WriteError, match="left as it was"):  # NOT NULL fails in the COPY
        sink.write(bad)
    sink.abort()
    assert same_rows(read_all(pg, "keyed"), before)


def test_staged_append_casts_to_existing_types(pg: PostgresConnector, pg_server: PgServer) -> None:
    drop(pg_server, "narrow")
    with psycopg.connect(pg_server.uri, autocommit=True) as conn:
        conn.execute("CREATE TABLE narrow (id int, name varchar(20), amount numeric(8,2))")
    write_table(pg, "narrow", make_sample_table(), WriteMode.APPEND)
    assert read_all(pg, "narrow").num_rows == 10


@pytest.mark.parametrize("host", ["169.254.169.254", "127.0.0.1", "0x7f.1", "::ffff:127.0.0.1"])
def test_default_policy_refuses_internal_hosts(host: str) -> None:
    connector = PostgresConnector(
        PostgresConfig(host=host, password="pw-never-used"),  # type: ignore[arg-type]
        ConnectorContext(endpoint_policy=EndpointPolicy()),
    )
    with pytest.raises(BlockedEndpointError) as info:
        connector.test_connection()
    assert_no_secret(info.value, "pw-never-used")


def test_unix_socket_is_loopback(pg_server: PgServer) -> None:
    connector = make(pg_server, ConnectorContext(endpoint_policy=EndpointPolicy()))
    with pytest.raises(BlockedEndpointError, match="unix socket"):
        connector.test_connection()
