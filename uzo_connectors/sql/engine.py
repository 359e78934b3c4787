"""Connecting to SQL databases: endpoint checks, driver checks, secret-free errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from uzo_connectors.errors import BlockedEndpointError, MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.engine import URL

    from uzo_connectors.ssrf import EndpointPolicy

# SQLAlchemy driver name -> (importable module, PyPI package, uzo extra)
DRIVERS: dict[str, tuple[str, str, str]] = {
    "psycopg": ("psycopg", "psycopg", "postgres"),
    "psycopg2": ("psycopg2", "psycopg2-binary", "postgres"),
    "asyncpg": ("asyncpg", "asyncpg", "postgres"),
    "pg8000": ("pg8000", "pg8000", "postgres"),
    "pymysql": ("pymysql", "pymysql", "mysql"),
    "mysqldb": ("MySQLdb", "mysqlclient", "mysql"),
    "mysqlconnector": ("mysql.connector", "mysql-connector-python", "mysql"),
    "mariadbconnector": ("mariadb", "mariadb", "mysql"),
    "pyodbc": ("pyodbc", "pyodbc", "mssql"),
    "pymssql": ("pymssql", "pymssql", "mssql"),
    "oracledb": ("oracledb", "oracledb", "oracle"),
    "cx_oracle": ("cx_Oracle", "cx-Oracle", "oracle"),
    "snowflake": ("snowflake.sqlalchemy", "snowflake-sqlalchemy", "snowflake"),
    "redshift_connector": ("redshift_connector", "sqlalchemy-redshift", "redshift"),
}

# Dialects that are reached over the network only through a host (not files).
FILE_DIALECTS = frozenset({"sqlite", "duckdb"})


def ensure_driver(url: URL, connector: str) -> None:
    """Raise MissingDependencyError naming the package if the URL's dialect or DBAPI is missing."""
    from sqlalchemy.exc import NoSuchModuleError

    backend = url.get_backend_name()
    try:
        dialect_cls = url.get_dialect()
    except NoSuchModuleError:
        raise MissingDependencyError(
            f"a SQLAlchemy dialect for {url.drivername!r}", backend, connector
        ) from None
    try:
        dialect_cls.import_dbapi()
    except ImportError as exc:
        missing = (exc.name or "").split(".", 1)[0]
        by_module = {
            module.split(".", 1)[0]: (pkg, extra) for module, pkg, extra in DRIVERS.values()
        }
        package, extra = by_module.get(missing, (missing or url.drivername, backend))
        raise MissingDependencyError(package, extra, connector) from None


def check_hosts(policy: EndpointPolicy, hosts: Iterable[str]) -> None:
    """Check every network host with the SSRF policy; a unix-socket path counts as loopback."""
    for host in hosts:
        if not host:
            continue
        if host.startswith("/") or host.startswith("@"):
            if not policy.allow_loopback:
                raise BlockedEndpointError(
                    f"unix socket {host!r} is a local endpoint: internal endpoints are refused"
                )
            continue
        policy.check_host(host)


def url_hosts(url: URL) -> list[str]:
    """The hosts a SQLAlchemy URL reaches (its host plus libpq-style ``host=`` parameters)."""
    hosts = [url.host] if url.host else []
    extra = url.query.get("host")
    if isinstance(extra, str):
        hosts.extend(h for h in extra.split(",") if h)
    elif extra is not None:
        hosts.extend(extra)
    return hosts


def scrub(message: str, secrets: Iterable[str | None]) -> str:
    """``message`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message
