"""Pure parts of the SQL family: type mapping, predicate validation, endpoint checks."""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from uzo_connectors.errors import BlockedEndpointError, ConfigError
from uzo_connectors.sql.engine import check_hosts, scrub
from uzo_connectors.sql.predicate import compile_predicate
from uzo_connectors.sql.types import rows_to_batch, to_arrow, to_sql
from uzo_connectors.ssrf import EndpointPolicy


@pytest.mark.parametrize(
    ("sql_type", "arrow_type"),
    [
        (sa.Integer(), pa.int32()),
        (sa.BigInteger(), pa.int64()),
        (sa.SmallInteger(), pa.int16()),
        (sa.Boolean(), pa.bool_()),
        (sa.Double(), pa.float64()),
        (sa.REAL(), pa.float32()),
        (sa.Numeric(10, 2), pa.decimal128(10, 2)),
        (sa.Numeric(), pa.string()),
        (sa.DateTime(timezone=True), pa.timestamp("us", tz="UTC")),
        (sa.DateTime(), pa.timestamp("us")),
        (sa.Date(), pa.date32()),
        (sa.LargeBinary(), pa.binary()),
        (postgresql.ARRAY(sa.Integer()), pa.list_(pa.int32())),
        (postgresql.JSONB(), pa.string()),
    ],
)
def test_sql_to_arrow(sql_type: sa.types.TypeEngine[object], arrow_type: pa.DataType) -> None:
    assert to_arrow(sql_type) == arrow_type


def test_sqlite_integer_is_64_bit_and_arrow_to_sql() -> None:
    assert to_arrow(sa.Integer(), "sqlite") == pa.int64()
    assert isinstance(to_sql(pa.int64()), sa.BigInteger)
    assert isinstance(to_sql(pa.string(), key=True), sa.String)
    assert isinstance(to_sql(pa.struct([("a", pa.int8())])), sa.JSON)


def test_rows_to_batch_converts_driver_values() -> None:
    schema = pa.schema([("a", pa.string()), ("b", pa.float64()), ("c", pa.bool_())])
    batch = rows_to_batch([({"k": 1}, 1, 0), (None, None, None)], schema)
    assert batch.to_pylist() == [
        {"a": '{"k": 1}', "b": 1.0, "c": False},
        {"a": None, "b": None, "c": None},
    ]


@pytest.mark.parametrize(
    "predicate",
    [
        "id > 1; DROP TABLE t",
        "id > (SELECT 1)",
        "id IN (SELECT id FROM t)",
        "pg_sleep(10) IS NULL",
        "xp_cmdshell('dir') = 0",
        "read_csv('/etc/passwd') IS NULL",
        "count(*) > 1",
        "other.id = 1",
        "missing = 1",
        "",
        "id = ",
    ],
)
def test_predicate_refusals(predicate: str) -> None:
    with pytest.raises(ConfigError, match="predicate"):
        compile_predicate(predicate, ["id", "name"], "postgres")


def test_predicate_quotes_columns_per_dialect() -> None:
    assert compile_predicate("ID > 1 -- c", ["id"], "postgres") == '"id" > 1'
    assert compile_predicate("name = 'a''b'", ["name"], "mysql") == "`name` = 'a''b'"
    assert compile_predicate("lower(name) = 'x'", ["name"], "tsql") == "LOWER([name]) = 'x'"


def test_unix_socket_counts_as_loopback_and_scrub() -> None:
    with pytest.raises(BlockedEndpointError):
        check_hosts(EndpointPolicy(), ["/var/run/postgresql"])
    check_hosts(EndpointPolicy(allow_loopback=True), ["/var/run/postgresql"])
    assert scrub("password s3cr3t rejected", ["s3cr3t", None]) == "password *** rejected"
