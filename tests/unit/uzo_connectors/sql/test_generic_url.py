"""The ``sqlalchemy`` connector's URL: decomposed, allow-listed, rebuilt from its parts.

Drivers other than psycopg and PyMySQL are not installed here: SQLAlchemy's
dialects still build their connect arguments, which is what these tests read.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from pydantic import ValidationError

from uzo_connectors.base import ConnectorContext
from uzo_connectors.errors import BlockedEndpointError, ConfigError, MissingDependencyError
from uzo_connectors.sql.dialects import DRIVERS, parse_url
from uzo_connectors.sql.generic import SqlAlchemyConfig, SqlAlchemyConnector
from uzo_connectors.sql.libpq import NOWHERE, REQUIRE_AUTH
from uzo_connectors.ssrf import EndpointPolicy

PUBLIC = "93.184.216.34"
ODBC = "driver=ODBC+Driver+18+for+SQL+Server"


def context(
    addresses: dict[str, list[str]] | None = None, ambient: frozenset[str] = frozenset()
) -> ConnectorContext:
    table = addresses or {}
    policy = EndpointPolicy(resolver=lambda host: table.get(host, [PUBLIC]))
    return ConnectorContext(endpoint_policy=policy, ambient_credentials=ambient)


def connector(url: str, ctx: ConnectorContext | None = None, **over: Any) -> SqlAlchemyConnector:
    return SqlAlchemyConnector(SqlAlchemyConfig(url=url, **over), ctx or context())


def driver_args(c: SqlAlchemyConnector) -> tuple[Any, dict[str, Any]]:
    """What the driver would be called with: the dialect's args plus UZO's connect_args."""
    addresses = c._check_endpoint()
    url = c._url(addresses)
    cargs, cparams = url.get_dialect()().create_connect_args(url)
    return cargs, {**cparams, **c._engine_options(addresses)["connect_args"]}


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("mysql+pymysql://u@db.example.com/d?local_infile=1", "local_infile"),
        ("mysql+pymysql://u@db.example.com/d?unix_socket=/run/mysqld.sock", "unix_socket"),
        ("mysql+pymysql://u@db.example.com/d?read_default_file=/etc/my.cnf", "read_default_file"),
        ("mysql+mysqldb://u@db.example.com/d?client_flag=128", "client_flag"),
        ("mariadb+mariadbconnector://u@db.example.com/d?plugin_dir=/tmp", "plugin_dir"),
        ("postgresql+psycopg://u@db.example.com/d?hostaddr=127.0.0.1", "hostaddr"),
        ("postgresql+psycopg://u@db.example.com/d?host=/var/run/postgresql", "host"),
        ("postgresql+psycopg2://u@db.example.com/d?host=169.254.169.254", "host"),
        ("postgresql+psycopg://u@db.example.com/d?password=hunter2", "password"),
        ("postgresql+psycopg://u@db.example.com/d?passfile=/root/.pgpass", "passfile"),
        ("postgresql+psycopg://u@db.example.com/d?sslkey=/etc/ssl/key.pem", "sslkey"),
        ("postgresql+psycopg://u@db.example.com/d?service=prod", "service"),
        ("postgresql+psycopg://u@db.example.com/d?krbsrvname=postgres", "krbsrvname"),
        (f"mssql+pyodbc://u@db.example.com/d?{ODBC}&PWD=hunter2", "PWD"),
        (f"mssql+pyodbc://u@db.example.com/d?{ODBC}&odbc_connect=DSN%3Dx", "odbc_connect"),
        (f"mssql+pyodbc://u@db.example.com/d?{ODBC}&DSN=prod", "DSN"),
        (f"mssql+pyodbc://u@db.example.com/d?{ODBC}&Trusted_Connection=yes", "Trusted_Connection"),
        (f"mssql+pyodbc://u@db.example.com/d?{ODBC}&authentication=ActiveDirectoryMsi", "auth"),
        ("mssql+pyodbc://u@db.example.com/d?driver=/tmp/evil.so", "driver"),
        ("mssql+pyodbc://u@db.example.com/d?driver=evil.so", "driver"),
        ("oracle+oracledb://u@db.example.com:1521/?service_name=XE&config_dir=/x", "config_dir"),
        ("oracle+oracledb://u@db.example.com/?service_name=XE&wallet_location=/w", "wallet"),
        ("oracle+oracledb://u@db.example.com/?service_name=XE&externalauth=true", "externalauth"),
        ("oracle+oracledb://u@db.example.com/?service_name=X)(HOST=10.0.0.1", "service_name"),
        ("snowflake://u@acct/d?authenticator=externalbrowser", "authenticator"),
        ("snowflake://u@acct/d?private_key_file=/root/key.p8", "private_key_file"),
        ("snowflake://u@acct/d?host=evil.example.com", "host"),
        ("snowflake://u@acct/d?proxy_host=evil.example.com", "proxy_host"),
        ("redshift+redshift_connector://u@r.example.com/d?iam=true", "iam"),
        ("redshift+redshift_connector://u@r.example.com/d?credentials_provider=x", "credentials"),
    ],
)
def test_dangerous_query_parameters_are_refused_naming_them(url: str, key: str) -> None:
    with pytest.raises(ValidationError) as info:
        SqlAlchemyConfig(url=url)
    error = info.value.errors()[0]
    assert error["loc"] == ("url",)
    assert key.lower() in error["msg"].lower()


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("postgresql+psycopg://u:hunter2@db.example.com/d", "password"),
        ("postgresql+psycopg://u@/d", "host"),  # socket-only URL
        ("postgresql+psycopg://u@db.example.com/d?sslmode=x&sslmode=y", "more than once"),
        ("mysql+pymysql://u;Driver=x@db.example.com/d", "';'"),
        ("mssql+pyodbc://u@db.example.com/d{x}?" + ODBC, "'{'"),
        ("mssql+pyodbc://u@db.example.com?" + ODBC, "database"),  # else the host is a DSN
        ("mssql+pyodbc://u@db.example.com/d", "driver"),
        ("oracle+oracledb://u@tnsalias", "SID"),  # else a tnsnames.ora alias
        ("snowflake://u@acct:8443/d", "port"),
        ("mysql+pymysql://u@db.example.com/d?read_timeout=1e308", "read_timeout"),
        ("postgresql+psycopg://u@db.example.com/d?connect_timeout=100000", "connect_timeout"),
        ("sqlite:///tmp/x.db", "'sqlite' connector"),
        ("db2+ibm_db://u@db.example.com/d", "supported: mariadb"),
        ("postgresql+asyncpg://u@db.example.com/d", "unsupported"),
    ],
)
def test_bad_urls_are_refused(url: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        SqlAlchemyConfig(url=url)


def test_every_required_pair_is_supported() -> None:
    for name in (
        "postgresql+psycopg",
        "postgresql+psycopg2",
        "postgresql+pg8000",
        "mysql+pymysql",
        "mysql+mysqldb",
        "mysql+mysqlconnector",
        "mysql+mariadbconnector",
        "mssql+pyodbc",
        "mssql+pymssql",
        "oracle+oracledb",
        "snowflake",
        "redshift+redshift_connector",
    ):
        assert name in DRIVERS


def test_the_engine_url_is_rebuilt_from_the_checked_parts() -> None:
    target = parse_url("POSTGRESQL://u@DB.example.com:6543/d")
    assert target.drivername == "postgresql+psycopg2"  # SQLAlchemy's default, spelled out
    url = target.url("pw", ())
    assert url.drivername == "postgresql+psycopg2"
    assert (url.username, url.host, url.port, url.database) == ("u", "DB.example.com", 6543, "d")
    assert dict(url.query) == {}
    # a checked option keeps its canonical spelling and value
    t = parse_url(
        "mssql+pyodbc://u@db.example.com/d?DRIVER=ODBC+Driver+18+for+SQL+Server&ENCRYPT=YES"
    )
    assert dict(t.options) == {"driver": "ODBC Driver 18 for SQL Server", "Encrypt": "yes"}


def test_libpq_urls_are_pinned_and_have_no_ambient_credentials() -> None:
    ctx = context({"db.example.com": [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946"]})
    c = connector("postgresql+psycopg://u@db.example.com/d?sslmode=verify-full", ctx)
    _, args = driver_args(c)
    assert args["host"] == "db.example.com,db.example.com"
    assert args["hostaddr"] == f"{PUBLIC},2606:2800:220:1:248:1893:25c8:1946"
    assert args["password"] == ""  # explicit: PGPASSWORD is never read
    assert args["passfile"].startswith(NOWHERE)
    assert args["sslcertmode"] == "disable"
    assert args["gssencmode"] == "disable"
    assert args["require_auth"] == REQUIRE_AUTH
    assert args["sslmode"] == "verify-full"


def test_mysql_drivers_get_local_infile_off_and_timeouts() -> None:
    _, args = driver_args(connector("mysql+pymysql://u@db.example.com/d"))
    assert args["local_infile"] is False
    assert (args["read_timeout"], args["write_timeout"], args["connect_timeout"]) == (300, 300, 10)
    _, args = driver_args(connector("mysql+pymysql://u@db.example.com/d?read_timeout=20"))
    assert args["read_timeout"] == 20
    _, args = driver_args(connector("mysql+mysqldb://u@db.example.com/d"))
    assert args["local_infile"] is False
    assert args["host"] == PUBLIC  # pinned: the checked address literal
    assert args["passwd"] == ""  # explicit: MYSQL_PWD is never read


def test_pyodbc_connection_string_is_pinned_and_never_trusted() -> None:
    url = f"mssql+pyodbc://u@db.example.com:1433/d?{ODBC}&Encrypt=yes"
    (connection_string,), _args = driver_args(connector(url, password="p;w}d"))
    parts = connection_string.split(";")
    assert parts[0] == "DRIVER={ODBC Driver 18 for SQL Server}"
    assert f"Server={PUBLIC},1433" in parts
    assert "HostNameInCertificate=db.example.com" in parts  # TLS still checks the name
    assert "trusted_connection" not in connection_string.lower()
    assert "PWD={p;w}}d}" in connection_string  # the password is quoted, not injected


def test_no_user_name_means_no_login_as_the_server() -> None:
    url = f"mssql+pyodbc://db.example.com:1433/d?{ODBC}"
    with pytest.raises(ConfigError, match="user name"):
        connector(url).test_connection()
    allowed = connector(url, context(ambient=frozenset({"sqlalchemy"})))
    (connection_string,), _ = driver_args(allowed)
    assert "Trusted_Connection=Yes" in connection_string  # only where the operator allows it


def test_snowflake_checks_the_account_host() -> None:
    blocked = context({"acct.snowflakecomputing.com": ["169.254.169.254"]})
    with pytest.raises(BlockedEndpointError, match=r"acct\.snowflakecomputing\.com"):
        connector("snowflake://u@acct/d", blocked).test_connection()
    target = parse_url("snowflake://u@acct.snowflakecomputing.com/d/s?warehouse=w")
    assert target.host == "acct"
    assert target.endpoint_host == "acct.snowflakecomputing.com"


@pytest.mark.parametrize(
    ("url", "package"),
    [
        (f"mssql+pyodbc://u@db.example.com/d?{ODBC}", "pyodbc"),
        ("mssql+pymssql://u@db.example.com/d", "pymssql"),
        ("oracle+oracledb://u@db.example.com/?service_name=XE", "oracledb"),
        ("snowflake://u@acct/d", "snowflake-sqlalchemy"),
        ("redshift+redshift_connector://u@r.example.com:5439/d", "sqlalchemy-redshift"),
        ("postgresql+pg8000://u@db.example.com/d", "pg8000"),
    ],
)
def test_a_missing_driver_names_its_package(url: str, package: str) -> None:
    with pytest.raises(MissingDependencyError, match=package):
        connector(url).test_connection()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u@127.0.0.1/d",
        "mysql+pymysql://u@169.254.169.254/d",
        f"mssql+pyodbc://u@[::ffff:127.0.0.1]:1433/d?{ODBC}",
    ],
)
def test_internal_hosts_are_refused_before_any_driver_runs(url: str) -> None:
    c = SqlAlchemyConnector(
        SqlAlchemyConfig(url=url, password="pw-never-used"),  # type: ignore[arg-type]
        ConnectorContext(endpoint_policy=EndpointPolicy()),
    )
    with pytest.raises(BlockedEndpointError) as info:
        c.test_connection()
    assert "pw-never-used" not in str(info.value)


def test_config_pickles_and_copies_never_go_stale() -> None:
    config = SqlAlchemyConfig(url="mysql+pymysql://u@a.example.com/d")
    assert pickle.loads(pickle.dumps(config)).target == config.target
    moved = config.model_copy(update={"url": "mysql+pymysql://u@b.example.com/d"})
    assert moved.target.host == "b.example.com"
    assert SqlAlchemyConfig.endpoint_fields == frozenset({"url"})
