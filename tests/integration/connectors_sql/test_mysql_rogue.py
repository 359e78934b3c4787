"""A hostile MySQL server must not read the UZO server's files, hang it, or pick the address.

The rogue (``rogue_mysql.py``, loopback only) answers the first real query with a
LOCAL INFILE request for a file the test wrote, standing in for UZO_HOME/secrets.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pymysql
import pytest
from pydantic import ValidationError

from tests.integration.connectors_sql.rogue_mysql import CLIENT_LOCAL_FILES, RogueMySql
from uzo_connectors.base import ConnectorContext
from uzo_connectors.errors import ConnectionTestError
from uzo_connectors.mysql.connector import MySqlConfig, MySqlConnector
from uzo_connectors.sql.generic import SqlAlchemyConfig, SqlAlchemyConnector
from uzo_connectors.ssrf import EndpointPolicy

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

LOOPBACK = ConnectorContext(endpoint_policy=EndpointPolicy.permissive_for_tests())
SECRET = "uzo-master-key-do-not-leak"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets" / "master.key"
    path.parent.mkdir()
    path.write_text(SECRET)
    return path


@pytest.fixture
def rogue(secret_file: Path) -> Iterator[RogueMySql]:
    with RogueMySql(str(secret_file)) as server:
        yield server


def test_the_rogue_really_gets_the_file_from_a_client_that_allows_it(rogue: RogueMySql) -> None:
    """The attack the connectors must resist: with LOCAL INFILE on, any query leaks the file."""
    conn = pymysql.connect(
        host="127.0.0.1", port=rogue.port, user="u", password="p", database="d", local_infile=True
    )
    try:
        conn.cursor().execute("SELECT 1")
    finally:
        conn.close()
    assert rogue.seen.infile_content == [SECRET.encode()]


def test_sqlalchemy_url_with_local_infile_is_refused_at_validation() -> None:
    url = "mysql+pymysql://u@127.0.0.1:3306/d?local_infile=1"
    with pytest.raises(ValidationError) as info:
        SqlAlchemyConfig(url=url)
    error = info.value.errors()[0]
    assert error["loc"] == ("url",)
    assert "local_infile" in error["msg"]


def test_mysql_connector_never_sends_the_file(rogue: RogueMySql) -> None:
    config = MySqlConfig(host="127.0.0.1", port=rogue.port, database="d", user="u", password="p")  # type: ignore[arg-type]
    connector = MySqlConnector(config, LOOPBACK)
    try:
        with pytest.raises(ConnectionTestError):
            connector.test_connection()
    finally:
        connector.close()
    assert rogue.seen.infile_requests >= 1  # the server did ask
    assert rogue.seen.infile_content == []  # and got nothing
    assert all(not flags & CLIENT_LOCAL_FILES for flags in rogue.seen.client_flags)


def test_allowed_sqlalchemy_mysql_url_never_sends_the_file(rogue: RogueMySql) -> None:
    config = SqlAlchemyConfig(
        url=f"mysql+pymysql://u@127.0.0.1:{rogue.port}/d?charset=utf8mb4&read_timeout=5",
        password="p",  # type: ignore[arg-type]
    )
    connector = SqlAlchemyConnector(config, LOOPBACK)
    try:
        with pytest.raises(ConnectionTestError):
            connector.test_connection()
    finally:
        connector.close()
    assert rogue.seen.infile_requests >= 1
    assert rogue.seen.infile_content == []
    assert all(not flags & CLIENT_LOCAL_FILES for flags in rogue.seen.client_flags)


@pytest.mark.timeout(30)
def test_a_server_that_never_answers_times_out(secret_file: Path) -> None:
    with RogueMySql(str(secret_file), silent=True) as rogue:
        config = MySqlConfig(
            host="127.0.0.1",
            port=rogue.port,
            database="d",
            user="u",
            read_timeout=1,
        )
        connector = MySqlConnector(config, LOOPBACK)
        started = time.monotonic()
        try:
            with pytest.raises(ConnectionTestError, match=r"(?i)lost connection|timed out"):
                connector.test_connection()
        finally:
            connector.close()
        assert time.monotonic() - started < 10


def test_timeouts_are_bounded() -> None:
    for field in ("read_timeout", "write_timeout", "connect_timeout"):
        with pytest.raises(ValidationError, match=field):
            MySqlConfig.model_validate(
                {"host": "db.example.com", "database": "d", "user": "u", field: 1e308}
            )


def test_connects_to_the_checked_address_not_a_fresh_lookup(rogue: RogueMySql) -> None:
    """The policy's resolver says where the name points; the driver never resolves it again.

    ``mysql.rogue.test`` does not exist in DNS: only a connection pinned to the address
    the check returned reaches the server.
    """
    policy = EndpointPolicy(
        allow_loopback=True,
        resolver=lambda host: ["127.0.0.1"] if host == "mysql.rogue.test" else [],
    )
    config = MySqlConfig(host="mysql.rogue.test", port=rogue.port, database="d", user="u")
    connector = MySqlConnector(config, ConnectorContext(endpoint_policy=policy))
    try:
        with pytest.raises(ConnectionTestError):  # the rogue refuses to run queries
            connector.test_connection()
    finally:
        connector.close()
    assert rogue.seen.connections >= 1
    assert rogue.seen.client_flags  # the handshake completed over the pinned socket
