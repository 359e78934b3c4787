"""libpq must never hand a tenant's server the UZO server's identity, nor pick the address.

Both libpq paths are covered: psycopg through SQLAlchemy (``test_connection``) and
the ADBC driver (``adbc_connect``, the rows path). The hostile server is
``rogue_pg.py`` on loopback; what it must not get is a password from the
environment or a password file, or the server's client certificate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from pydantic import ValidationError

from tests.integration.connectors_sql.rogue_pg import (
    REFUSAL,
    Certificates,
    RoguePostgres,
    make_certificates,
)
from uzo_connectors.base import ConnectorContext
from uzo_connectors.errors import ConnectionTestError, ConnectorError
from uzo_connectors.postgres.connector import PostgresConfig, PostgresConnector
from uzo_connectors.sql.generic import SqlAlchemyConfig, SqlAlchemyConnector
from uzo_connectors.ssrf import EndpointPolicy, resolve

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.integration.connectors_sql.conftest import PgServer

pytestmark = pytest.mark.integration

LEAK = "uzo-server-own-password"
NAME = "pg.rogue.test"  # not in DNS: only the policy's resolver knows it
POLICY = EndpointPolicy(
    allow_loopback=True, resolver=lambda host: ["127.0.0.1"] if host == NAME else resolve(host)
)
CONTEXT = ConnectorContext(endpoint_policy=POLICY)


def connector(port: int, context: ConnectorContext = CONTEXT, **over: Any) -> PostgresConnector:
    config = PostgresConfig.model_validate(
        {"host": "127.0.0.1", "port": port, "user": "tenant", "database": "d", **over}
    )
    return PostgresConnector(config, context)


def via_psycopg(c: PostgresConnector) -> None:
    with pytest.raises(ConnectionTestError):
        c.test_connection()
    c.close()


def via_adbc(c: PostgresConnector) -> None:
    with pytest.raises(ConnectorError):
        c.adbc_connect()


PATHS = [pytest.param(via_psycopg, id="psycopg"), pytest.param(via_adbc, id="adbc")]


def ambient_password(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Give the UZO process a password the way libpq would find it."""
    if kind == "PGPASSWORD":
        monkeypatch.setenv("PGPASSWORD", LEAK)
        return
    passfile = tmp_path / ("pgpass" if kind == "PGPASSFILE" else ".pgpass")
    passfile.write_text(f"*:*:*:*:{LEAK}\n")
    passfile.chmod(0o600)
    if kind == "PGPASSFILE":
        monkeypatch.setenv("PGPASSFILE", str(passfile))
    else:
        monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["PGPASSWORD", "PGPASSFILE", "~/.pgpass"])
def test_no_ambient_password_reaches_the_server(
    kind: str,
    path: Callable[[PostgresConnector], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ambient_password(kind, tmp_path, monkeypatch)
    with RoguePostgres() as rogue:
        path(connector(rogue.port))
    assert rogue.seen.connections >= 1  # the server asked for a password...
    assert LEAK not in rogue.seen.passwords  # ...and got none of the server's


@pytest.mark.parametrize("path", PATHS)
def test_the_configured_password_is_sent(path: Callable[[PostgresConnector], None]) -> None:
    with RoguePostgres() as rogue:
        path(connector(rogue.port, password="tenant-own-password"))
    assert rogue.seen.passwords == ["tenant-own-password"]


@pytest.mark.parametrize("path", PATHS)
def test_ambient_credentials_only_when_the_operator_allows_them(
    path: Callable[[PostgresConnector], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", LEAK)
    allowed = ConnectorContext(endpoint_policy=POLICY, ambient_credentials=frozenset({"postgres"}))
    with RoguePostgres() as rogue:
        path(connector(rogue.port, allowed))
    assert rogue.seen.passwords == [LEAK]


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path)


@pytest.mark.parametrize("path", PATHS)
def test_no_client_certificate_of_the_server_is_presented(
    path: Callable[[PostgresConnector], None],
    certs: Certificates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGSSLCERT", str(certs.client_cert))
    monkeypatch.setenv("PGSSLKEY", str(certs.client_key))
    home = tmp_path / "home"
    (home / ".postgresql").mkdir(parents=True)
    (home / ".postgresql" / "postgresql.crt").write_bytes(certs.client_cert.read_bytes())
    (home / ".postgresql" / "postgresql.key").write_bytes(certs.client_key.read_bytes())
    (home / ".postgresql" / "postgresql.key").chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    with RoguePostgres(tls=certs.server_context()) as rogue:
        path(connector(rogue.port, sslmode="require"))
    assert rogue.seen.connections >= 1
    assert rogue.seen.client_certs == []


@pytest.mark.parametrize("path", PATHS)
def test_gssapi_requested_by_the_server_is_refused(
    path: Callable[[PostgresConnector], None],
) -> None:
    with RoguePostgres(auth="gss") as rogue:
        c = connector(rogue.port)
        if path is via_adbc:
            with pytest.raises(ConnectorError, match="GSSAPI"):
                c.adbc_connect()
        else:
            with pytest.raises(ConnectionTestError, match="GSSAPI"):
                c.test_connection()
            c.close()


@pytest.mark.parametrize("path", PATHS)
def test_connects_to_the_checked_address_and_verifies_tls_by_name(
    path: Callable[[PostgresConnector], None], certs: Certificates
) -> None:
    """``pg.rogue.test`` is not in DNS: only hostaddr (from the check) reaches the server,
    and TLS still names the host (SNI; what verify-full checks the certificate against)."""
    with RoguePostgres(tls=certs.server_context()) as rogue:
        path(connector(rogue.port, host=NAME, password="pw", sslmode="require"))
    assert rogue.seen.startup == [{"user": "tenant", "database": "d"}]
    assert rogue.seen.sni == [NAME]


def test_generic_psycopg_url_is_pinned_and_has_no_ambient_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", LEAK)
    with RoguePostgres() as rogue:
        config = SqlAlchemyConfig(url=f"postgresql+psycopg://tenant@{NAME}:{rogue.port}/d")
        c = SqlAlchemyConnector(config, CONTEXT)
        with pytest.raises(ConnectionTestError, match=r"(?i)no password"):
            c.test_connection()
        c.close()
    assert rogue.seen.startup[0]["user"] == "tenant"
    assert LEAK not in rogue.seen.passwords


def test_the_refusal_comes_from_the_rogue() -> None:
    with RoguePostgres() as rogue:
        c = connector(rogue.port, password="pw")
        with pytest.raises(ConnectionTestError, match=REFUSAL):
            c.test_connection()
        c.close()


def test_database_name_is_never_expanded_as_a_connection_string(pg_server: PgServer) -> None:
    """libpq expands a dbname holding ``=`` only with expand_dbname; neither path asks for it."""
    with psycopg.connect(pg_server.uri, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS uzo_expand_target")
        conn.execute("CREATE DATABASE uzo_expand_target")
    context = ConnectorContext(endpoint_policy=EndpointPolicy.permissive_for_tests())
    for name in (
        "dbname=uzo_expand_target",
        f"host={pg_server.socket_dir} dbname=uzo_expand_target",
    ):
        config = PostgresConfig(host=pg_server.socket_dir, port=pg_server.port, database=name)
        c = PostgresConnector(config, context)
        with pytest.raises(ConnectionTestError, match="does not exist"):
            c.test_connection()
        c.close()
        with pytest.raises(ConnectorError, match="does not exist"):
            c.adbc_connect()
    ok = PostgresConnector(
        PostgresConfig(
            host=pg_server.socket_dir, port=pg_server.port, database="uzo_expand_target"
        ),
        context,
    )
    ok.test_connection()
    ok.adbc_connect().close()
    ok.close()


@pytest.mark.parametrize(
    "over",
    [
        {"sslmode": "bogus"},
        {"sslmode": "require sslcert=/etc/x"},
        {"host": "db.example.com,169.254.169.254"},
        {"host": "/tmp/a,/tmp/b"},
        {"user": "x;y"},
        {"connect_timeout": 1e308},
        {"port": 70000},
    ],
)
def test_config_refuses_libpq_syntax(over: dict[str, Any]) -> None:
    field = next(iter(over))
    with pytest.raises(ValidationError) as info:
        PostgresConfig.model_validate({"host": "db.example.com", **over})
    assert info.value.errors()[0]["loc"] == (field,)
