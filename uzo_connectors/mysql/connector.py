"""The ``mysql`` connector: MySQL and MariaDB through PyMySQL and the SQL family.

Reads stream through a server-side cursor (PyMySQL's SSCursor); writes are
batched ``executemany`` inserts in one InnoDB transaction, upserts use ``INSERT
... ON DUPLICATE KEY UPDATE`` when the keys are unique (else delete + insert in
the transaction). CREATE TABLE commits implicitly in MySQL, so a table created
by an aborted write is dropped again.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, SecretStr
from sqlalchemy.engine import URL

from uzo_connectors.base import ConnectorConfig
from uzo_connectors.sql.connector import SqlConnectorBase
from uzo_connectors.sql.engine import check_hosts


class MySqlConfig(ConnectorConfig):
    host: str
    port: int = Field(default=3306, ge=1, le=65535)
    database: str
    user: str
    password: SecretStr | None = None
    ssl: bool = Field(default=False, description="require TLS")
    connect_timeout: int = Field(default=10, ge=1, le=300)


class MySqlConnector(SqlConnectorBase[MySqlConfig]):
    type_key: ClassVar[str] = "mysql"
    display_name: ClassVar[str] = "MySQL / MariaDB"
    config_model: ClassVar[type[ConnectorConfig]] = MySqlConfig
    description: ClassVar[str] = "MySQL and MariaDB (PyMySQL)"

    def _check_endpoint(self) -> None:
        check_hosts(self.context.endpoint_policy, [self.config.host])

    def _secrets(self) -> list[str]:
        return [self.config.password.get_secret_value()] if self.config.password else []

    def _url(self) -> URL:
        password = self.config.password.get_secret_value() if self.config.password else None
        return URL.create(
            "mysql+pymysql",
            username=self.config.user,
            password=password,
            host=self.config.host,
            port=self.config.port,
            database=self.config.database,
            query={"charset": "utf8mb4"},
        )

    def _engine_options(self) -> dict[str, Any]:
        connect_args: dict[str, Any] = {"connect_timeout": self.config.connect_timeout}
        if self.config.ssl:
            connect_args["ssl"] = {"check_hostname": True}
        return {"connect_args": connect_args}
