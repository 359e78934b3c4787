"""Connecting to SQL databases: endpoint checks, driver checks, secret-free errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from uzo_connectors.errors import BlockedEndpointError, MissingDependencyError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.engine import URL

    from uzo_connectors.ssrf import EndpointPolicy

# SQLAlchemy driver name -> (importable module, PyPI package, uzo extra or None when UZO
# has no extra for it: then the message says to install the package itself)
DRIVERS: dict[str, tuple[str, str, str | None]] = {
    "psycopg": ("psycopg", "psycopg", None),
    "psycopg2": ("psycopg2", "psycopg2-binary", None),
    "asyncpg": ("asyncpg", "asyncpg", None),
    "pg8000": ("pg8000", "pg8000", None),
    "pymysql": ("pymysql", "pymysql", "mysql"),
    "mysqldb": ("MySQLdb", "mysqlclient", None),
    "mysqlconnector": ("mysql.connector", "mysql-connector-python", None),
    "mariadbconnector": ("mariadb", "mariadb", None),
    "pyodbc": ("pyodbc", "pyodbc", None),
    "pymssql": ("pymssql", "pymssql", None),
    "oracledb": ("oracledb", "oracledb", None),
    "cx_oracle": ("cx_Oracle", "cx-Oracle", None),
    "snowflake": ("snowflake.connector", "snowflake-connector-python", None),
    "redshift_connector": ("redshift_connector", "redshift-connector", None),
}

# SQLAlchemy dialects that live in their own package: backend name -> (PyPI package, extra)
DIALECT_PACKAGES: dict[str, tuple[str, str | None]] = {
    "snowflake": ("snowflake-sqlalchemy", None),
    "redshift": ("sqlalchemy-redshift", None),
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
        package, extra = DIALECT_PACKAGES.get(
            backend, (f"a SQLAlchemy dialect for {url.drivername!r}", None)
        )
        raise MissingDependencyError(package, extra, connector) from None
    try:
        dialect_cls.import_dbapi()
    except ImportError as exc:
        missing = (exc.name or "").split(".", 1)[0]
        by_module = {
            module.split(".", 1)[0]: (pkg, extra) for module, pkg, extra in DRIVERS.values()
        }
        package, extra = by_module.get(missing, (missing or url.drivername, None))
        raise MissingDependencyError(package, extra, connector) from None


def is_socket_path(host: str) -> bool:
    """Whether ``host`` names a unix socket (a path, or a Linux abstract socket) not a host."""
    return host.startswith(("/", "@"))


def check_hosts(policy: EndpointPolicy, hosts: Iterable[str]) -> None:
    """Check every network host with the SSRF policy; a unix-socket path counts as loopback."""
    for host in hosts:
        if not host:
            continue
        if is_socket_path(host):
            if not policy.allow_loopback:
                raise BlockedEndpointError(
                    f"unix socket {host!r} is a local endpoint: internal endpoints are refused"
                )
            continue
        policy.check_host(host)


def scrub(message: str, secrets: Iterable[str | None]) -> str:
    """``message`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message
