"""The shared base of every SQL connector: discover, plan reads, open sinks.

A subclass checks where it connects (``_check_endpoint``, which returns the
addresses that passed the SSRF check), builds its SQLAlchemy URL and driver
arguments from typed fields and those addresses (``_url``, ``_engine_options``:
the driver connects to what was checked, never resolves the name again), and
says which secrets to scrub; it may replace the streaming reader or the sink
with a faster path (PostgreSQL does both with ADBC).
"""

from __future__ import annotations

import abc
import functools
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import pyarrow as pa
import sqlalchemy as sa

from uzo_connectors.base import (
    BaseConnector,
    Capabilities,
    Category,
    ConnectorConfig,
    DatasetInfo,
    ReadPlan,
    ReadTask,
    WriteMode,
)
from uzo_connectors.errors import (
    BlockedEndpointError,
    ConfigError,
    ConnectionTestError,
    ConnectorError,
    DatasetNotFoundError,
    MissingDependencyError,
)
from uzo_connectors.sql import reader
from uzo_connectors.sql.engine import ensure_driver, scrub
from uzo_connectors.sql.predicate import compile_predicate, sqlglot_dialect
from uzo_connectors.sql.sink import SqlSink
from uzo_connectors.sql.types import to_arrow

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import URL, Engine

    from uzo_connectors.base import ConnectorContext, ReadRequest, Sink, WriteRequest

ConfigT = TypeVar("ConfigT", bound=ConnectorConfig)

SQL_CAPABILITIES = Capabilities(
    read=True,
    write=True,
    write_modes=tuple(WriteMode),
    projection_pushdown=True,
    predicate_pushdown=True,
    limit_pushdown=True,
    incremental=True,
    discover=True,
)


def _run_read(
    cls: type[SqlConnectorBase[Any]],
    config: ConnectorConfig,
    context: ConnectorContext,
    spec: reader.ReadSpec,
    schema: pa.Schema,
) -> Iterator[pa.RecordBatch]:
    """A read task body: picklable (a module function over picklable arguments)."""
    connector = cls(config, context)
    try:
        yield from connector.stream(spec, schema)
    finally:
        connector.close()


class SqlConnectorBase(BaseConnector[ConfigT], abc.ABC):
    """Common behaviour of SQL connectors built on SQLAlchemy."""

    category: ClassVar[Category] = Category.DATABASE
    capabilities: ClassVar[Capabilities] = SQL_CAPABILITIES

    def __init__(self, config: ConfigT, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self._engine: Engine | None = None

    # -- what subclasses provide ---------------------------------------------------

    @abc.abstractmethod
    def _check_endpoint(self) -> tuple[str, ...]:
        """Check the endpoint before any connection is made; the addresses to connect to.

        Raises BlockedEndpointError (or ConfigError). Returns the addresses that passed
        the SSRF check, () for a local file or a unix socket.
        """

    @abc.abstractmethod
    def _url(self, addresses: tuple[str, ...]) -> URL:
        """The SQLAlchemy URL, password included (never rendered: URL hides it)."""

    def _secrets(self) -> list[str]:
        return []

    def _schema_name(self) -> str | None:
        value = getattr(self.config, "schema_name", None)
        return value if isinstance(value, str) and value else None

    def _engine_options(self, addresses: tuple[str, ...]) -> dict[str, Any]:
        """Extra ``create_engine`` arguments (``connect_args``: driver options UZO sets)."""
        return {}

    # -- shared machinery ------------------------------------------------------------

    def scrub(self, message: str) -> str:
        return scrub(message, self._secrets())

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            addresses = self._check_endpoint()
            url = self._url(addresses)
            ensure_driver(url, self.type_key)
            engine = sa.create_engine(url, pool_pre_ping=True, **self._engine_options(addresses))
            self._configure_engine(engine, addresses)
            self._engine = engine
        return self._engine

    def _configure_engine(self, engine: Engine, addresses: tuple[str, ...]) -> None:
        """Hook: install event listeners on a new engine (e.g. to connect to ``addresses``)."""

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _error(self, exc: BaseException, doing: str) -> ConnectorError:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ConnectorError(f"{doing} failed: {self.scrub(text)}")

    def split_dataset(self, dataset: str) -> tuple[str | None, str]:
        if "." in dataset:
            schema, _, table = dataset.partition(".")
            return schema, table
        return self._schema_name(), dataset

    def test_connection(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.select(sa.literal(1))).scalar()
        except (BlockedEndpointError, MissingDependencyError, ConnectionTestError, ConfigError):
            raise
        except ConnectorError as exc:
            raise ConnectionTestError(self.scrub(str(exc))) from None
        except Exception as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConnectionTestError(
                f"cannot connect to the {self.display_name} database: {self.scrub(text)}"
            ) from None

    def _reflect(self, dataset: str) -> sa.Table:
        schema_name, name = self.split_dataset(dataset)
        try:
            with self.engine.connect() as conn:
                if not sa.inspect(conn).has_table(name, schema=schema_name):
                    raise DatasetNotFoundError(f"table {dataset!r} does not exist")
                return sa.Table(name, sa.MetaData(), schema=schema_name, autoload_with=conn)
        except ConnectorError:
            raise
        except Exception as exc:
            raise self._error(exc, f"reading the definition of {dataset!r}") from None

    def arrow_schema(self, table: sa.Table) -> pa.Schema:
        dialect = self.engine.dialect.name
        return pa.schema([pa.field(c.name, to_arrow(c.type, dialect)) for c in table.columns])

    def discover(self) -> list[DatasetInfo]:
        schema_name = self._schema_name()
        dialect = self.engine.dialect.name
        out: list[DatasetInfo] = []
        try:
            with self.engine.connect() as conn:
                inspector = sa.inspect(conn)
                kinds: tuple[tuple[Literal["table", "view"], list[str]], ...] = (
                    ("table", inspector.get_table_names(schema=schema_name)),
                    ("view", inspector.get_view_names(schema=schema_name)),
                )
                for kind, names in kinds:
                    for name in sorted(names):
                        columns = inspector.get_columns(name, schema=schema_name)
                        fields = [
                            pa.field(c["name"], to_arrow(c["type"], dialect)) for c in columns
                        ]
                        out.append(DatasetInfo(name=name, kind=kind, schema=pa.schema(fields)))
        except ConnectorError:
            raise
        except Exception as exc:
            raise self._error(exc, "discovering tables") from None
        return out

    def build_spec(self, request: ReadRequest, table: sa.Table) -> reader.ReadSpec:
        available = [c.name for c in table.columns]
        columns = reader.resolve_columns(request.columns, available)
        predicate_sql = None
        if request.predicate:
            predicate_sql = compile_predicate(
                request.predicate, available, sqlglot_dialect(self.engine.dialect.name)
            )
        if request.limit is not None and request.limit < 0:
            raise ConnectorError("limit: must be >= 0")
        watermark = after = None
        if request.incremental is not None:
            watermark = reader.resolve_column(request.incremental.column, available)
            after = request.incremental.after
        return reader.ReadSpec(
            schema_name=table.schema,
            table=table.name,
            columns=columns,
            predicate_sql=predicate_sql,
            limit=request.limit,
            watermark=watermark,
            after=after,
            batch_size=max(1, request.batch_size),
        )

    def plan_read(self, request: ReadRequest) -> ReadPlan:
        table = self._reflect(request.dataset)
        spec = self.build_spec(request, table)
        full = self.arrow_schema(table)
        schema = self.read_schema(spec, pa.schema([full.field(c) for c in spec.columns]))
        hwm: Any = None
        if spec.watermark is not None:
            try:
                hwm = reader.high_water_mark(self.engine, table, spec)
            except Exception as exc:
                what = f"computing the high-water mark of {request.dataset!r}"
                raise self._error(exc, what) from None
            spec = reader.ReadSpec(**{**spec.__dict__, "upper": hwm, "empty": hwm is None})
        task = ReadTask(
            read=functools.partial(_run_read, type(self), self.config, self.context, spec, schema),
            schema=schema,
            description=f"{self.type_key}:{request.dataset}",
        )
        pushed = frozenset({"projection", "predicate", "limit"})
        if request.incremental is not None:
            return reader.IncrementalReadPlan(
                schema=schema, tasks=(task,), pushed_down=pushed, high_water_mark=hwm
            )
        return ReadPlan(schema=schema, tasks=(task,), pushed_down=pushed)

    def read_schema(self, spec: reader.ReadSpec, reflected: pa.Schema) -> pa.Schema:
        """The schema the read produces (a fast path may refine the reflected one)."""
        return reflected

    def stream(self, spec: reader.ReadSpec, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        table = self._reflect(
            f"{spec.schema_name}.{spec.table}" if spec.schema_name else spec.table
        )
        try:
            yield from reader.stream(self.engine, table, spec, schema)
        except ConnectorError:
            raise
        except Exception as exc:
            raise self._error(exc, f"reading {spec.table!r}") from None

    def open_sink(self, request: WriteRequest) -> Sink:
        schema_name, name = self.split_dataset(request.dataset)
        return SqlSink(self.engine, request, schema_name, name, self.scrub)
