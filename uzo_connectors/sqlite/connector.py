"""The ``sqlite`` connector: a SQLite file in its owner's directory, through SQLAlchemy.

The path is confined by :func:`~uzo_connectors.sql.files.resolve_database_path`
(the subscription's own directory when the API runs it); a file created with
``create: true`` is readable by the server's user only.
"""

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
from uzo_connectors.sql.files import create_private, resolve_database_path


class SqliteConfig(ConnectorConfig):
    endpoint_fields: ClassVar[frozenset[str]] = frozenset({"path"})

    path: str = Field(
        max_length=1024, description="database file, relative to the subscription's directory"
    )
    create: bool = Field(default=False, description="create the file if it does not exist")


class SqliteConnector(SqlConnectorBase[SqliteConfig]):
    type_key: ClassVar[str] = "sqlite"
    display_name: ClassVar[str] = "SQLite"
    config_model: ClassVar[type[ConnectorConfig]] = SqliteConfig
    description: ClassVar[str] = "A SQLite database file"

    def _check_endpoint(self) -> tuple[str, ...]:
        path = resolve_database_path(self.config.path, local_roots=self.context.local_roots)
        if not path.exists():
            if not self.config.create:
                raise ConnectionTestError(f"SQLite database {self.config.path!r} does not exist")
            create_private(path)  # SQLite takes an empty file as a new database
        return ()

    def _url(self, addresses: tuple[str, ...]) -> URL:
        path = resolve_database_path(self.config.path, local_roots=self.context.local_roots)
        return URL.create("sqlite", database=str(path))

    def _configure_engine(self, engine: Engine, addresses: tuple[str, ...]) -> None:
        # pysqlite defers BEGIN and skips it before DDL; issue BEGIN ourselves so
        # that CREATE TABLE and the inserts commit or roll back together.
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")
