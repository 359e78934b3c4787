"""The databases the generic ``sqlalchemy`` connector supports, and what each may be given.

A SQLAlchemy URL is a convenient way for users to say where a database is, but
everything in it reaches a driver: query parameters become driver keywords or
connection-string keys, and drivers have keys that read local files
(``local_infile``, ``read_default_file``, wallets, key files), reach local
sockets or other hosts (``unix_socket``, ``hostaddr``, ``host``, ODBC ``DSN``),
or log in with the server's own identity (``Trusted_Connection``, IAM,
external browser, Kerberos). So a URL is decomposed into typed parts
(:class:`Target`) and each supported dialect+driver pair (:class:`DriverSpec`)
lists the query parameters it accepts, with a check of each value; everything
else is refused, naming the key. The engine's URL is rebuilt from the parts with
``URL.create``, never from the user's string, and the driver arguments UZO
relies on (no LOCAL INFILE, timeouts, libpq without ambient credentials) are set
explicitly.

Drivers need not be installed for a URL to validate; a missing one gives a
:class:`~uzo_connectors.errors.MissingDependencyError` naming the package when
the connector is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from uzo_connectors.errors import ConfigError
from uzo_connectors.options import (
    CREDENTIAL_SOURCE,
    HOST_CHOICE,
    LOCAL_FILE,
    PROXY,
    Check,
    check_options,
    host_name,
    integer,
    one_of,
    plain_text,
)
from uzo_connectors.sql import libpq
from uzo_connectors.sql.pinning import is_ip_literal

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

# How a driver is made to connect to the checked address instead of resolving the name:
# "libpq": hostaddr + host; "pymysql": a connected socket; "address": the address
# literal as the host; "none": the driver resolves the name itself (checked, not pinned).
Pin = Literal["libpq", "pymysql", "address", "none"]

IN_URL = "a password belongs in the `password` field (stored encrypted), never in the URL"

# Keys users are likely to try, with the reason they are refused (compared in lower case).
REFUSED: dict[str, str] = {
    **dict.fromkeys(
        (
            "host",
            "hostaddr",
            "port",
            "unix_socket",
            "socket",
            "named_pipe",
            "server",
            "address",
            "addr",
            "dsn",
            "odbc_connect",
            "service",
            "account",
            "protocol",
            "bind_address",
            "tns_admin",
            "cluster_identifier",
            "is_serverless",
            "serverless_work_group",
            "serverless_acct_id",
        ),
        HOST_CHOICE,
    ),
    **dict.fromkeys(("password", "pwd", "passwd", "uid", "user", "username"), IN_URL),
    **dict.fromkeys(
        (
            "local_infile",
            "allow_local_infile",
            "allow_local_infile_in_path",
            "read_default_file",
            "read_default_group",
            "default_file",
            "option_files",
            "passfile",
            "sslcert",
            "sslkey",
            "sslrootcert",
            "sslcrl",
            "sslcrldir",
            "sslkeylogfile",
            "ssl_ca",
            "ssl_cert",
            "ssl_key",
            "ssl_capath",
            "ssl_crl",
            "servercertificate",
            "filedsn",
            "savefile",
            "config_dir",
            "wallet_location",
            "wallet_password",
            "private_key_file",
            "private_key_file_pwd",
            "token_file_path",
            "connection_name",
            "ocsp_response_cache_filename",
            "plugin_dir",
            "init_command",
        ),
        LOCAL_FILE,
    ),
    **dict.fromkeys(
        (
            "trusted_connection",
            "integrated security",
            "authentication",
            "authenticator",
            "krbsrvname",
            "gsslib",
            "gssencmode",
            "require_auth",
            "externalauth",
            "iam",
            "credentials_provider",
            "profile",
            "auth_plugin",
            "db_user",
            "idp_host",
        ),
        CREDENTIAL_SOURCE,
    ),
    **dict.fromkeys(
        ("proxy_host", "proxy_port", "https_proxy", "https_proxy_port", "proxy_user"), PROXY
    ),
}

_name = plain_text(128)
_short = plain_text(64)
_identifier = re.compile(r"^[A-Za-z0-9_$#.\-]{1,128}$")
_account = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9_\-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_\-]{0,62}"
    r"[A-Za-z0-9])?)*$"
)
_odbc_driver = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+()\-]{0,127}$")
SNOWFLAKE_DOMAIN = ".snowflakecomputing.com"


def identifier(value: Any) -> str:
    """An Oracle service name / SID: no descriptor syntax (parentheses, ``=``)."""
    text = str(value)
    if not _identifier.match(text):
        raise ValueError("must be letters, digits and _ $ # . - only")
    return text


def odbc_driver(value: Any) -> str:
    """The *name* of an installed ODBC driver; a path would make unixODBC load that library."""
    text = str(value).strip().strip("{}")
    if not _odbc_driver.match(text) or text.lower().endswith((".so", ".dll", ".dylib")):
        raise ValueError(
            "must be the name of an installed ODBC driver (e.g. ODBC Driver 18 for SQL Server), "
            "never a path"
        )
    return text


def _text(check: Check) -> Check:
    """A check whose normalised value is text (URL query values are strings)."""
    return lambda value: str(check(value))


# -- the UZO-set driver arguments, per driver -------------------------------------------------


def _libpq_args(target: Target, password: str | None, ambient: bool) -> dict[str, Any]:
    args: dict[str, Any] = {} if target.has("connect_timeout") else {"connect_timeout": 10}
    if ambient:
        return args
    return {**args, **libpq.no_ambient_credentials(password)}


def _pymysql_args(target: Target, password: str | None, ambient: bool) -> dict[str, Any]:
    defaults = {"connect_timeout": 10, "read_timeout": 300, "write_timeout": 300}
    return {"local_infile": False, **target.defaults(defaults)}


def _mysqldb_args(target: Target, password: str | None, ambient: bool) -> dict[str, Any]:
    # An explicit (empty) password: libmysqlclient may otherwise take MYSQL_PWD.
    defaults = {"connect_timeout": 10, "read_timeout": 300, "write_timeout": 300}
    args = {"local_infile": False, **target.defaults(defaults)}
    return args if password else {**args, "passwd": ""}


def _mysqlconnector_args(target: Target, password: str | None, ambient: bool) -> dict[str, Any]:
    return {"allow_local_infile": False, **target.defaults({"connection_timeout": 10})}


def _mariadb_args(target: Target, password: str | None, ambient: bool) -> dict[str, Any]:
    defaults = {"connect_timeout": 10, "read_timeout": 300, "write_timeout": 300}
    args = {"local_infile": False, **target.defaults(defaults)}
    return args if password else {**args, "password": ""}  # Connector/C: as for MYSQL_PWD


def _pyodbc_args(target: Target, password: str | None, ambient: bool) -> dict[str, Any]:
    return {"timeout": 10}  # the login timeout (SQL_ATTR_LOGIN_TIMEOUT)


def _pymssql_args(target: Target, password: str | None, ambient: bool) -> dict[str, Any]:
    return target.defaults({"login_timeout": 10, "timeout": 300})


def _oracle_args(target: Target, password: str | None, ambient: bool) -> dict[str, Any]:
    return target.defaults({"tcp_connect_timeout": 10})


def _snowflake_args(target: Target, password: str | None, ambient: bool) -> dict[str, Any]:
    defaults = {"login_timeout": 60, "network_timeout": 300}
    return {"authenticator": "snowflake", **target.defaults(defaults)}


def _redshift_args(target: Target, password: str | None, ambient: bool) -> dict[str, Any]:
    return {"iam": False, **target.defaults({"timeout": 10})}


def _pg8000_args(target: Target, password: str | None, ambient: bool) -> dict[str, Any]:
    return target.defaults({"timeout": 10})


# -- extra rules, per driver --------------------------------------------------------------------


def _pyodbc_rules(target: Target) -> None:
    if not target.has("driver"):
        raise ConfigError(
            "url: give the ODBC driver name as ?driver=... (e.g. ODBC+Driver+18+for+SQL+Server)"
        )
    if not target.database:
        # Without a database SQLAlchemy treats the host as an ODBC data source name.
        raise ConfigError("url: give the database (mssql+pyodbc://user@host:1433/database)")


def _oracle_rules(target: Target) -> None:
    if bool(target.database) == target.has("service_name"):
        raise ConfigError(
            "url: give either the SID as the database (oracle+oracledb://user@host:1521/SID) or "
            "?service_name=..., exactly one (without them the host would be a tnsnames alias)"
        )
    if target.database:
        try:
            identifier(target.database)
        except ValueError as exc:
            raise ConfigError(f"url: the database (SID) {exc}") from None


def _snowflake_rules(target: Target) -> None:
    if target.port is not None:
        raise ConfigError(
            "url: no port for Snowflake: the account identifier decides the host "
            "(snowflake://user@<account>/database)"
        )
    if not _account.match(target.host):
        raise ConfigError("url: the host must be a Snowflake account identifier")


@dataclass(frozen=True)
class DriverSpec:
    """One supported dialect+driver pair: what its URL may hold, what UZO sets."""

    drivername: str  # SQLAlchemy's "dialect+driver" (just "snowflake" for Snowflake)
    options: Mapping[str, Check]
    pin: Pin
    connect_args: Callable[[Target, str | None, bool], dict[str, Any]]
    rules: Callable[[Target], None] | None = None
    case_sensitive: bool = True
    # What a driver lets a server ask for that UZO cannot switch off.
    note: str = ""


_LIBPQ_OPTIONS: dict[str, Check] = {
    "sslmode": one_of(*libpq.SSL_MODES),
    "connect_timeout": _text(integer(1, 300)),
    "application_name": _text(_short),
    "target_session_attrs": one_of(
        "any", "read-write", "read-only", "primary", "standby", "prefer-standby"
    ),
    "channel_binding": one_of("disable", "prefer", "require"),
    "keepalives": one_of("0", "1"),
    "keepalives_idle": _text(integer(1, 7200)),
    "keepalives_interval": _text(integer(1, 600)),
    "keepalives_count": _text(integer(1, 100)),
    "client_encoding": _text(plain_text(32)),
}
_MYSQL_TIMEOUTS: dict[str, Check] = {
    "connect_timeout": _text(integer(1, 300)),
    "read_timeout": _text(integer(1, 3600)),
    "write_timeout": _text(integer(1, 3600)),
}
_CHARSET: dict[str, Check] = {
    "charset": one_of("utf8mb4", "utf8mb3", "utf8", "latin1", "ascii", "binary")
}


def _mysql_family(dialect: str) -> dict[str, DriverSpec]:
    return {
        f"{dialect}+pymysql": DriverSpec(
            f"{dialect}+pymysql", {**_CHARSET, **_MYSQL_TIMEOUTS}, "pymysql", _pymysql_args
        ),
        f"{dialect}+mysqldb": DriverSpec(
            f"{dialect}+mysqldb",
            {
                **_CHARSET,
                **_MYSQL_TIMEOUTS,
                "ssl_mode": one_of("DISABLED", "PREFERRED", "REQUIRED", case_sensitive=False),
            },
            "address",
            _mysqldb_args,
        ),
        f"{dialect}+mysqlconnector": DriverSpec(
            f"{dialect}+mysqlconnector",
            {**_CHARSET, "connection_timeout": _text(integer(1, 300))},
            "address",
            _mysqlconnector_args,
            note="mysql-connector-python follows a server's request to switch authentication "
            "plugin; UZO cannot restrict it (e.g. to no Kerberos/OCI plugin).",
        ),
        f"{dialect}+mariadbconnector": DriverSpec(
            f"{dialect}+mariadbconnector",
            dict(_MYSQL_TIMEOUTS),
            "address",
            _mariadb_args,
            note="MariaDB Connector/C loads the authentication plugin a server asks for; UZO "
            "cannot restrict it (e.g. to no GSSAPI).",
        ),
    }


DRIVERS: dict[str, DriverSpec] = {
    "postgresql+psycopg": DriverSpec("postgresql+psycopg", _LIBPQ_OPTIONS, "libpq", _libpq_args),
    "postgresql+psycopg2": DriverSpec("postgresql+psycopg2", _LIBPQ_OPTIONS, "libpq", _libpq_args),
    "postgresql+pg8000": DriverSpec(
        "postgresql+pg8000",
        {"timeout": _text(integer(1, 300)), "application_name": _text(_short)},
        "address",
        _pg8000_args,
    ),
    **_mysql_family("mysql"),
    **_mysql_family("mariadb"),
    "mssql+pyodbc": DriverSpec(
        "mssql+pyodbc",
        {
            "driver": odbc_driver,
            "Encrypt": one_of("yes", "no", "mandatory", "optional", "strict"),
            "TrustServerCertificate": one_of("yes", "no"),
            "ApplicationIntent": one_of("ReadOnly", "ReadWrite"),
        },
        "address",
        _pyodbc_args,
        rules=_pyodbc_rules,
        case_sensitive=False,  # ODBC keywords are case-insensitive
    ),
    "mssql+pymssql": DriverSpec(
        "mssql+pymssql",
        {
            "charset": one_of("UTF-8", "UTF8", "latin1", "CP1252"),
            "login_timeout": _text(integer(1, 300)),
            "timeout": _text(integer(1, 3600)),
            "tds_version": one_of("7.0", "7.1", "7.2", "7.3", "7.4"),
            "appname": _text(_short),
        },
        "address",
        _pymssql_args,
    ),
    "oracle+oracledb": DriverSpec(
        "oracle+oracledb",
        {"service_name": identifier, "tcp_connect_timeout": _text(integer(1, 300))},
        "address",
        _oracle_args,
        rules=_oracle_rules,
    ),
    "snowflake": DriverSpec(
        "snowflake",
        {
            "warehouse": _text(_name),
            "role": _text(_name),
            "schema": _text(_name),
            "application": _text(_short),
            "login_timeout": _text(integer(1, 300)),
            "network_timeout": _text(integer(1, 3600)),
            "client_session_keep_alive": one_of("true", "false"),
            "timezone": _text(_short),
        },
        "none",  # HTTPS through the connector's own session: it resolves the name itself
        _snowflake_args,
        rules=_snowflake_rules,
    ),
    "redshift+redshift_connector": DriverSpec(
        "redshift+redshift_connector",
        {
            "sslmode": one_of("verify-ca", "verify-full"),
            "timeout": _text(integer(1, 300)),
            "application_name": _text(_short),
        },
        "address",  # except with sslmode=verify-full (see Target.connect_host)
        _redshift_args,
    ),
}

# A bare dialect name means SQLAlchemy's default driver for it.
DEFAULT_DRIVERS: dict[str, str] = {
    "postgresql": "postgresql+psycopg2",
    "mysql": "mysql+mysqldb",
    "mariadb": "mariadb+mysqldb",
    "mssql": "mssql+pyodbc",
    "oracle": "oracle+oracledb",
    "snowflake": "snowflake",
}


@dataclass(frozen=True)
class Target:
    """A checked SQLAlchemy URL, in parts. Picklable (read tasks carry the config)."""

    drivername: str
    username: str | None
    host: str
    port: int | None
    database: str | None
    options: tuple[tuple[str, str], ...] = ()

    @property
    def spec(self) -> DriverSpec:
        return DRIVERS[self.drivername]

    def has(self, key: str) -> bool:
        return any(k == key for k, _ in self.options)

    def get(self, key: str) -> str | None:
        return next((v for k, v in self.options if k == key), None)

    def defaults(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` without the keys the URL sets itself."""
        return {k: v for k, v in values.items() if not self.has(k)}

    @property
    def endpoint_host(self) -> str:
        """The host the driver really reaches (the one to check)."""
        if self.drivername == "snowflake":
            return self.host + SNOWFLAKE_DOMAIN
        return self.host

    def pin(self) -> Pin:
        if self.drivername.startswith("redshift") and self.get("sslmode") == "verify-full":
            return "none"  # the certificate is verified against the name: keep it
        return self.spec.pin

    def connect_host(self, addresses: tuple[str, ...]) -> str:
        """The host the engine's URL names: the checked address where that pins it."""
        if self.pin() != "address" or not addresses:
            return self.host
        address = addresses[0]  # IPv4 first (see checked_addresses)
        if ":" in address and self.drivername.startswith("mssql"):
            return f"[{address}]"  # host,port (ODBC) and host:port (FreeTDS) need brackets
        return address

    def url(self, password: str | None, addresses: tuple[str, ...]) -> URL:
        """The engine's URL, built from the checked parts (password included, never shown)."""
        query = dict(self.options)
        host = self.connect_host(addresses)
        if self.drivername == "mssql+pyodbc" and host != self.host and not is_ip_literal(self.host):
            query["HostNameInCertificate"] = self.host  # TLS is still verified by name
        return URL.create(
            self.drivername,
            username=self.username,
            password=password,
            host=host,
            port=self.port,
            database=self.database,
            query=query,
        )

    def connect_args(
        self, password: str | None, addresses: tuple[str, ...], ambient: bool
    ) -> dict[str, Any]:
        """The driver arguments UZO sets itself (they win over the URL's)."""
        args = self.spec.connect_args(self, password, ambient)
        if self.pin() == "libpq":
            args.update(libpq.pinned_host(self.host, addresses))
        return args


def supported() -> str:
    return ", ".join(sorted(DRIVERS))


def parse_url(text: str) -> Target:
    """Decompose and check a SQLAlchemy URL; ConfigError naming what is wrong."""
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise ConfigError(
            "url: not a SQLAlchemy URL (dialect+driver://user@host:port/database)"
        ) from None
    if url.password is not None:
        raise ConfigError("url: put the password in the `password` field, not in the URL")
    name = url.drivername.lower()
    name = DEFAULT_DRIVERS.get(name, name)
    if name.split("+", 1)[0] in ("sqlite", "duckdb"):
        backend = name.split("+", 1)[0]
        raise ConfigError(f"url: use the {backend!r} connector for database files")
    spec = DRIVERS.get(name)
    if spec is None:
        raise ConfigError(f"url: unsupported database {url.drivername!r}; supported: {supported()}")
    if not url.host:
        raise ConfigError("url: give the database host (dialect+driver://user@host/database)")
    try:
        host = host_name(url.host).strip("[]")
    except ValueError as exc:
        raise ConfigError(f"url: the host {exc}") from None
    username = database = None
    try:
        if url.username:
            username = str(_name(url.username))
        if url.database:
            database = str(plain_text(256)(url.database))
    except ValueError as exc:
        raise ConfigError(f"url: the user or database {exc}") from None
    raw: dict[str, str] = {}
    for key, value in url.query.items():
        if not isinstance(value, str):
            raise ConfigError(f"url: URL query parameter {key!r} is given more than once")
        raw[key] = value
    checked = check_options(
        raw,
        spec.options,
        field="url",
        what="URL query parameter",
        refused=REFUSED,
        case_sensitive=spec.case_sensitive,
    )
    if name.startswith("snowflake") and host.lower().endswith(SNOWFLAKE_DOMAIN):
        host = host[: -len(SNOWFLAKE_DOMAIN)]
    target = Target(
        drivername=name,
        username=username,
        host=host,
        port=url.port,
        database=database,
        options=tuple((k, str(v)) for k, v in sorted(checked.items())),
    )
    if spec.rules is not None:
        spec.rules(target)
    return target
