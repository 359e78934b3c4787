"""The ``mysql`` connector against a throwaway MariaDB (Debian's mariadb-server)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pymysql
import pytest

from uzo_connectors.base import ConnectorContext, WriteMode, WriteRequest
from uzo_connectors.errors import BlockedEndpointError, WriteError
from uzo_connectors.mysql.connector import MySqlConfig, MySqlConnector
from uzo_connectors.ssrf import EndpointPolicy
from uzo_connectors.testing import (
    BadCredentials,
    ConnectorContract,
    make_sample_table,
    read_all,
    same_rows,
    write_table,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration.connectors_sql.conftest import MariaDB

pytestmark = pytest.mark.integration

LOOPBACK = ConnectorContext(endpoint_policy=EndpointPolicy.permissive_for_tests())


def make(server: MariaDB, context: ConnectorContext = LOOPBACK, **over: object) -> MySqlConnector:
    config = MySqlConfig.model_validate(
        {
            "host": "127.0.0.1",
            "port": server.port,
            "database": "uzo",
            "user": server.user,
            "password": server.password,
            **over,
        }
    )
    return MySqlConnector(config, context)


def drop(server: MariaDB, table: str) -> None:
    conn = pymysql.connect(
        host="127.0.0.1",
        port=server.port,
        user=server.user,
        password=server.password,
        database="uzo",
    )
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS `{table}`")
    conn.close()


@pytest.fixture
def my(mariadb_server: MariaDB) -> Iterator[MySqlConnector]:
    connector = make(mariadb_server)
    yield connector
    connector.close()


class TestMySqlContract(ConnectorContract):
    @pytest.fixture
    def connector(self, my: MySqlConnector) -> MySqlConnector:
        return my

    @pytest.fixture
    def sample_dataset(
        self, my: MySqlConnector, mariadb_server: MariaDB, sample_table: pa.Table
    ) -> str:
        drop(mariadb_server, "contract_sample")
        write_table(my, "contract_sample", sample_table, WriteMode.FAIL_IF_EXISTS)
        return "contract_sample"

    @pytest.fixture
    def writable_dataset(self, mariadb_server: MariaDB) -> Iterator[str]:
        drop(mariadb_server, "contract_target")
        yield "contract_target"
        drop(mariadb_server, "contract_target")

    @pytest.fixture
    def bad_credentials(self, mariadb_server: MariaDB) -> BadCredentials:
        secret = "maria-Wrong-pw-77"
        return BadCredentials(make(mariadb_server, password=secret), secret)


def test_native_upsert_and_aborted_create_is_dropped(
    my: MySqlConnector, mariadb_server: MariaDB
) -> None:
    drop(mariadb_server, "keyed")
    sample = make_sample_table()
    write_table(my, "keyed", sample, WriteMode.UPSERT, keys=("id",))  # PRIMARY KEY (id)
    changes = pa.table(
        {"id": pa.array([2, 2, 42], pa.int64()), "name": ["x", "y", "z"], "amount": [0.0, 1, 2]}
    )
    write_table(my, "keyed", changes, WriteMode.UPSERT, keys=("id",), batch_rows=2)
    rows = {r["id"]: r["name"] for r in read_all(my, "keyed").to_pylist()}
    assert rows[2] == "y"
    assert len(rows) == 11
    # CREATE TABLE commits implicitly in MySQL: an aborted write drops what it created
    drop(mariadb_server, "fresh")
    sink = my.open_sink(WriteRequest("fresh", sample.schema))
    sink.write(sample.to_batches()[0])
    sink.abort()
    assert "fresh" not in {d.name for d in my.discover()}


def test_failure_mid_write_rolls_back(my: MySqlConnector, mariadb_server: MariaDB) -> None:
    drop(mariadb_server, "strict")
    sample = make_sample_table()
    write_table(my, "strict", sample, WriteMode.UPSERT, keys=("id",))
    sink = my.open_sink(WriteRequest("strict", sample.schema, mode=WriteMode.OVERWRITE))
    sink.write(sample.slice(0, 4).to_batches()[0])
    dup = pa.RecordBatch.from_pydict(
        {"id": pa.array([1, 1], pa.int64()), "name": ["a", "b"], "amount": [1.0, 2.0]},
        schema=sample.schema,
    )
    with pytest.raises(WriteError, match="left as it was"):
        sink.write(dup)
    assert same_rows(read_all(my, "strict"), sample)


@pytest.mark.parametrize("host", ["169.254.169.254", "127.0.0.1"])
def test_default_policy_refuses_internal_hosts(host: str, mariadb_server: MariaDB) -> None:
    connector = make(mariadb_server, ConnectorContext(endpoint_policy=EndpointPolicy()), host=host)
    with pytest.raises(BlockedEndpointError):
        connector.test_connection()
