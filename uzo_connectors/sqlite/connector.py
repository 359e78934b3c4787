"""The ``sqlite`` connector: a SQLite file under the database root, through SQLAlchemy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field
from sqlalchemy import event
from sqlalchemy.engine import URL

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

from uzo_connectors.base import ConnectorConfig
from uzo_connectors.errors import ConnectionTestError
from uzo_connectors.sql.connector import SqlConnectorBase
from uzo_connectors.sql.files import resolve_database_path


class SqliteConfig(ConnectorConfig):
    path: str = Field(description="database file, relative to the database root")
    create: bool = Field(default=False, description="create the file if it does not exist")


class SqliteConnector(SqlConnectorBase[SqliteConfig]):
    type_key: ClassVar[str] = "sqlite"
    display_name: ClassVar[str] = "SQLite"
    config_model: ClassVar[type[ConnectorConfig]] = SqliteConfig
    description: ClassVar[str] = "A SQLite database file"

    def _check_endpoint(self) -> None:
        path = resolve_database_path(self.config.path, local_roots=self.context.local_roots)
        if not self.config.create and not path.exists():
            raise ConnectionTestError(f"SQLite database {self.config.path!r} does not exist")

    def _url(self) -> URL:
        path = resolve_database_path(self.config.path, local_roots=self.context.local_roots)
        return URL.create("sqlite", database=str(path))

    def _configure_engine(self, engine: Engine) -> None:
        # pysqlite defers BEGIN and skips it before DDL; issue BEGIN ourselves so
        # that CREATE TABLE and the inserts commit or roll back together.
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")
