"""The generic ``sqlalchemy`` connector: any database SQLAlchemy has a dialect and driver for.

Covers Oracle, SQL Server, Snowflake, Redshift, ... wherever their drivers are
installed; a missing driver gives an error naming the package. The password
lives in its own secret field, never in the URL. File databases (SQLite,
DuckDB) have their own connectors, which confine paths to a root directory.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from uzo_connectors.base import ConnectorConfig
from uzo_connectors.sql.connector import SqlConnectorBase
from uzo_connectors.sql.engine import FILE_DIALECTS, check_hosts, url_hosts


class SqlAlchemyConfig(ConnectorConfig):
    url: str = Field(
        description="SQLAlchemy URL without the password, e.g. "
        "mssql+pyodbc://user@host:1433/db?driver=ODBC+Driver+18+for+SQL+Server"
    )
    password: SecretStr | None = None
    schema_name: str | None = Field(default=None, description="schema to discover and read")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a SQLAlchemy URL (dialect+driver://user@host:port/db)") from None
        if url.password is not None:
            raise ValueError("put the password in the `password` field, not in the URL")
        if url.get_backend_name() in FILE_DIALECTS:
            raise ValueError(f"use the {url.get_backend_name()!r} connector for database files")
        return value


class SqlAlchemyConnector(SqlConnectorBase[SqlAlchemyConfig]):
    type_key: ClassVar[str] = "sqlalchemy"
    display_name: ClassVar[str] = "SQL database (SQLAlchemy)"
    config_model: ClassVar[type[ConnectorConfig]] = SqlAlchemyConfig
    description: ClassVar[str] = (
        "Any database with a SQLAlchemy dialect: Oracle, SQL Server, Snowflake, Redshift, ..."
    )

    def _url(self) -> URL:
        url = make_url(self.config.url)
        if self.config.password is not None:
            url = url.set(password=self.config.password.get_secret_value())
        return url

    def _check_endpoint(self) -> None:
        check_hosts(self.context.endpoint_policy, url_hosts(make_url(self.config.url)))

    def _secrets(self) -> list[str]:
        return [self.config.password.get_secret_value()] if self.config.password else []
