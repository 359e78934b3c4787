"""The ``mysql`` connector: MySQL and MariaDB through PyMySQL and the SQL family.

Reads stream through a server-side cursor (PyMySQL's SSCursor); writes are
batched ``executemany`` inserts in one InnoDB transaction, upserts use ``INSERT
... ON DUPLICATE KEY UPDATE`` when the keys are unique (else delete + insert in
the transaction). CREATE TABLE commits implicitly in MySQL, so a table created
by an aborted write is dropped again.

The server is untrusted: the host is checked with the SSRF policy and every
connection goes to an address that passed (PyMySQL is handed the connected
socket, see :mod:`uzo_connectors.sql.pinning`); ``LOAD DATA LOCAL`` is off
(a server may answer any query with "send me file X", and the client would
send it); reads and writes time out, so a server that accepts and then never
answers does not hold a worker thread forever.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, SecretStr, field_validator
from sqlalchemy.engine import URL

from uzo_connectors.base import ConnectorConfig
from uzo_connectors.options import host_name, plain_text
from uzo_connectors.sql.connector import SqlConnectorBase
from uzo_connectors.sql.pinning import checked_addresses, pin_pymysql

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


class MySqlConfig(ConnectorConfig):
    endpoint_fields: ClassVar[frozenset[str]] = frozenset({"host", "port"})

    host: str = Field(description="host name or IP address")
    port: int = Field(default=3306, ge=1, le=65535)
    database: str = Field(max_length=64)
    user: str = Field(max_length=80)
    password: SecretStr | None = None
    ssl: bool = Field(default=False, description="require TLS")
    connect_timeout: int = Field(default=10, ge=1, le=300)
    # A read may wait for a long sort before the first row arrives: up to an hour.
    read_timeout: int = Field(
        default=300, ge=1, le=3600, description="seconds to wait for the server to answer"
    )
    write_timeout: int = Field(
        default=300, ge=1, le=3600, description="seconds to wait for the server to take data"
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return host_name(value).strip("[]")

    @field_validator("database", "user")
    @classmethod
    def _name(cls, value: str) -> str:
        return str(plain_text(80)(value))


def pymysql_connect_args(
    *, connect_timeout: int, read_timeout: int, write_timeout: int
) -> dict[str, Any]:
    """The PyMySQL arguments UZO always sets itself (never from a config's free text)."""
    return {
        "local_infile": False,
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        "write_timeout": write_timeout,
    }


class MySqlConnector(SqlConnectorBase[MySqlConfig]):
    type_key: ClassVar[str] = "mysql"
    required_packages = ("pymysql",)
    display_name: ClassVar[str] = "MySQL / MariaDB"
    config_model: ClassVar[type[ConnectorConfig]] = MySqlConfig
    description: ClassVar[str] = "MySQL and MariaDB (PyMySQL)"

    def _check_endpoint(self) -> tuple[str, ...]:
        return checked_addresses(self.context.endpoint_policy, self.config.host)

    def _secrets(self) -> list[str]:
        return [self.config.password.get_secret_value()] if self.config.password else []

    def _url(self, addresses: tuple[str, ...]) -> URL:
        password = self.config.password.get_secret_value() if self.config.password else None
        return URL.create(
            "mysql+pymysql",
            username=self.config.user,
            password=password,
            host=self.config.host,  # the name, for TLS; the socket goes to `addresses`
            port=self.config.port,
            database=self.config.database,
            query={"charset": "utf8mb4"},
        )

    def _engine_options(self, addresses: tuple[str, ...]) -> dict[str, Any]:
        cfg = self.config
        connect_args = pymysql_connect_args(
            connect_timeout=cfg.connect_timeout,
            read_timeout=cfg.read_timeout,
            write_timeout=cfg.write_timeout,
        )
        if cfg.ssl:
            connect_args["ssl"] = {"check_hostname": True}
        return {"connect_args": connect_args}

    def _configure_engine(self, engine: Engine, addresses: tuple[str, ...]) -> None:
        pin_pymysql(engine, addresses, self.config.port, self.config.connect_timeout)
