"""The generic ``sqlalchemy`` connector: the databases of :mod:`uzo_connectors.sql.dialects`.

Covers Oracle, SQL Server, Snowflake, Redshift, ... wherever their drivers are
installed; a missing driver gives an error naming the package. Users give a
SQLAlchemy URL, but it is only a way to write typed parts: it is decomposed and
checked when the config is validated (unknown dialects, unknown query
parameters, connection-string syntax in names: a 422 naming ``url``), and the
engine's URL is rebuilt from the checked parts. The password lives in its own
secret field, never in the URL. The host is checked with the SSRF policy and,
where the driver allows it, connected to by the checked address. Without a
user name a driver would log in as the UZO server (Windows/Kerberos
authentication), so one is required unless the operator allows ambient
credentials for ``sqlalchemy``. File databases (SQLite, DuckDB) have their own
connectors, which confine paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, SecretStr, field_validator

from uzo_connectors.base import ConnectorConfig
from uzo_connectors.errors import ConfigError
from uzo_connectors.options import plain_text
from uzo_connectors.sql.connector import SqlConnectorBase
from uzo_connectors.sql.dialects import Target, parse_url
from uzo_connectors.sql.pinning import checked_addresses, pin_pymysql

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine


class SqlAlchemyConfig(ConnectorConfig):
    endpoint_fields: ClassVar[frozenset[str]] = frozenset({"url"})

    url: str = Field(
        max_length=2048,
        description="SQLAlchemy URL without the password, e.g. "
        "mssql+pyodbc://user@host:1433/db?driver=ODBC+Driver+18+for+SQL+Server",
    )
    password: SecretStr | None = None
    schema_name: str | None = Field(
        default=None, max_length=128, description="schema to discover and read"
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        try:
            parse_url(value)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("url: ")) from None
        return value

    @field_validator("schema_name")
    @classmethod
    def _check_schema(cls, value: str | None) -> str | None:
        return None if value is None else str(plain_text(128)(value))

    @property
    def target(self) -> Target:
        """The URL's checked parts (parsed again on each use: a copy can never go stale)."""
        return parse_url(self.url)


class SqlAlchemyConnector(SqlConnectorBase[SqlAlchemyConfig]):
    type_key: ClassVar[str] = "sqlalchemy"
    display_name: ClassVar[str] = "SQL database (SQLAlchemy)"
    config_model: ClassVar[type[ConnectorConfig]] = SqlAlchemyConfig
    description: ClassVar[str] = (
        "Any database with a SQLAlchemy dialect: Oracle, SQL Server, Snowflake, Redshift, ..."
    )

    def _password(self) -> str | None:
        return self.config.password.get_secret_value() if self.config.password else None

    def _check_endpoint(self) -> tuple[str, ...]:
        target = self.config.target
        if target.username is None and not self.ambient_allowed:
            raise ConfigError(
                "url: give the user name (dialect+driver://user@host/database): without one "
                "the driver would log in with the UZO server's own identity"
            )
        return checked_addresses(self.context.endpoint_policy, target.endpoint_host)

    def _url(self, addresses: tuple[str, ...]) -> URL:
        return self.config.target.url(self._password(), addresses)

    def _engine_options(self, addresses: tuple[str, ...]) -> dict[str, Any]:
        args = self.config.target.connect_args(self._password(), addresses, self.ambient_allowed)
        return {"connect_args": args}

    def _configure_engine(self, engine: Engine, addresses: tuple[str, ...]) -> None:
        target = self.config.target
        if target.pin() == "pymysql":
            timeout = int(target.get("connect_timeout") or 10)
            pin_pymysql(engine, addresses, target.port or 3306, timeout)

    def _secrets(self) -> list[str]:
        return [self.config.password.get_secret_value()] if self.config.password else []
