"""The ``duckdb`` connector: a user's DuckDB database file (not the engine's SQL node).

The file must lie in its owner's directory (see
:func:`~uzo_connectors.sql.files.resolve_database_path`); one the connector
creates is readable by the server's user only. Connections are opened with
external access off (no reading other files, no http, no extension
install/load), so neither a predicate nor anything else reaches past the
database file, and with bounded memory and threads: a tenant's file cannot take
the worker's memory or every core. What does not fit in memory spills to a
directory next to the database file (DuckDB's ``<file>.tmp``, inside the same
private directory), bounded too. Reads stream Arrow batches natively; writes
run in one DuckDB transaction.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
from pydantic import Field

from uzo_connectors.base import (
    BaseConnector,
    Category,
    ConnectorConfig,
    DatasetInfo,
    ReadPlan,
    ReadTask,
)
from uzo_connectors.errors import (
    ConfigError,
    ConnectionTestError,
    ConnectorError,
    DatasetNotFoundError,
    MissingDependencyError,
)
from uzo_connectors.sql.connector import SQL_CAPABILITIES
from uzo_connectors.sql.files import create_private, resolve_database_path
from uzo_connectors.sql.predicate import compile_predicate
from uzo_connectors.sql.reader import IncrementalReadPlan, resolve_column, resolve_columns

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from uzo_connectors.base import Capabilities, ConnectorContext, ReadRequest, Sink, WriteRequest


class DuckDBConfig(ConnectorConfig):
    endpoint_fields: ClassVar[frozenset[str]] = frozenset({"path"})

    path: str = Field(
        max_length=1024, description="database file, relative to the subscription's directory"
    )
    create: bool = Field(default=False, description="create the file if it does not exist")
    schema_name: str = Field(default="main", max_length=128)
    memory_limit_mb: int = Field(
        default=1024, ge=64, le=65_536, description="DuckDB memory limit (MiB)"
    )
    threads: int = Field(default=2, ge=1, le=16, description="DuckDB worker threads")
    temp_limit_mb: int = Field(
        default=4096, ge=0, le=1_048_576, description="most disk DuckDB may spill to (MiB)"
    )


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read(
    config: DuckDBConfig, context: ConnectorContext, query: str, params: list[Any], size: int
) -> Iterator[pa.RecordBatch]:
    connector = DuckDBConnector(config, context)
    con = connector.connect(read_only=True)
    try:
        reader = con.sql(query, params=params or None).to_arrow_reader(size)
        yield from reader
    finally:
        con.close()


class DuckDBConnector(BaseConnector[DuckDBConfig]):
    type_key: ClassVar[str] = "duckdb"
    display_name: ClassVar[str] = "DuckDB file"
    category: ClassVar[Category] = Category.DATABASE
    config_model: ClassVar[type[ConnectorConfig]] = DuckDBConfig
    capabilities: ClassVar[Capabilities] = SQL_CAPABILITIES
    description: ClassVar[str] = "A DuckDB database file (read and write)"

    def _settings(self, path: str) -> dict[str, Any]:
        cfg = self.config
        return {
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "memory_limit": f"{cfg.memory_limit_mb}MiB",
            "threads": cfg.threads,
            "temp_directory": f"{path}.tmp",
            "max_temp_directory_size": f"{cfg.temp_limit_mb}MiB",
            "lock_configuration": True,  # none of the above can be SET back
        }

    def connect(self, read_only: bool = False) -> Any:
        path = resolve_database_path(self.config.path, local_roots=self.context.local_roots)
        if not path.exists() and (read_only or not self.config.create):
            raise ConnectionTestError(f"DuckDB database {self.config.path!r} does not exist")
        try:
            import duckdb
        except ImportError:
            raise MissingDependencyError("duckdb", "duckdb", self.type_key) from None

        def initialise(new: Path) -> None:
            duckdb.connect(str(new), config=self._settings(str(new))).close()

        try:
            create_private(path, initialise)
            return duckdb.connect(str(path), config=self._settings(str(path)))
        except duckdb.Error as exc:
            raise ConnectionTestError(f"cannot open DuckDB database: {exc}") from None

    def test_connection(self) -> None:
        con = self.connect()
        con.close()

    def _table(self, name: str) -> str:
        return f"{quote(self.config.schema_name)}.{quote(name)}"

    def _schema(self, con: Any, name: str) -> pa.Schema:
        found = con.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [self.config.schema_name, name],
        ).fetchall()
        if not found:
            raise DatasetNotFoundError(f"table {name!r} does not exist")
        schema: pa.Schema = (
            con.sql(f"SELECT * FROM {self._table(name)} LIMIT 0").to_arrow_table().schema
        )
        return schema

    def discover(self) -> list[DatasetInfo]:
        con = self.connect()
        try:
            rows = con.execute(
                "SELECT table_name, table_type FROM information_schema.tables "
                "WHERE table_schema = ? ORDER BY table_name",
                [self.config.schema_name],
            ).fetchall()
            return [
                DatasetInfo(
                    name=name,
                    kind="view" if kind == "VIEW" else "table",
                    schema=self._schema(con, name),
                )
                for name, kind in rows
            ]
        finally:
            con.close()

    def plan_read(self, request: ReadRequest) -> ReadPlan:
        con = self.connect()
        try:
            full = self._schema(con, request.dataset)
            columns = resolve_columns(request.columns, full.names)
            where: list[str] = []
            params: list[Any] = []
            if request.predicate:
                where.append(f"({compile_predicate(request.predicate, full.names, 'duckdb')})")
            order = ""
            hwm: Any = None
            if request.incremental is not None:
                wm = quote(resolve_column(request.incremental.column, full.names))
                if request.incremental.after is not None:
                    where.append(f"{wm} > ?")
                    params.append(request.incremental.after)
                order = f" ORDER BY {wm}"
            base = f"FROM {self._table(request.dataset)}"
            if where:
                base += " WHERE " + " AND ".join(where)
            limit = "" if request.limit is None else f" LIMIT {int(request.limit)}"
            if request.limit is not None and request.limit < 0:
                raise ConfigError("limit: must be >= 0")
            if request.incremental is not None:
                inner = f"SELECT {wm} AS w {base}{order}{limit}"
                rows = con.sql(f"SELECT max(w) FROM ({inner})", params=params or None).fetchall()
                hwm = rows[0][0] if rows else None
                if hwm is not None:
                    base += (" AND " if where else " WHERE ") + f"{wm} <= ?"
                    params.append(hwm)
            query = f"SELECT {', '.join(quote(c) for c in columns)} {base}{order}{limit}"
        except ConnectorError:
            raise
        except Exception as exc:
            raise ConnectorError(
                f"planning the read of {request.dataset!r} failed: {exc}"
            ) from None
        finally:
            con.close()
        schema = pa.schema([full.field(c) for c in columns])
        if request.incremental is not None and hwm is None:
            query += " LIMIT 0"
        read = functools.partial(
            _read, self.config, self.context, query, params, max(1, request.batch_size)
        )
        task = ReadTask(read=read, schema=schema, description=f"duckdb:{request.dataset}")
        pushed = frozenset({"projection", "predicate", "limit"})
        if request.incremental is not None:
            return IncrementalReadPlan(
                schema=schema, tasks=(task,), pushed_down=pushed, high_water_mark=hwm
            )
        return ReadPlan(schema=schema, tasks=(task,), pushed_down=pushed)

    def open_sink(self, request: WriteRequest) -> Sink:
        from uzo_connectors.duckdb.sink import DuckDBSink

        return DuckDBSink(self, request)
