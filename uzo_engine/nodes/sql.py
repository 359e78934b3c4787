"""DuckDB SQL over the named inputs, in a locked-down connection.

This module owns the DuckDB lockdown (docs/measured-stack.md, "DuckDB
lockdown"): autoinstall/autoload of extensions off at connect, then
``allowed_directories`` empty, ``enable_external_access`` false and
``lock_configuration`` true, so user SQL cannot read or write files, attach
databases, reach the network or install/load extensions, and cannot undo any
of it. DuckDB still lets a query list and read its own temp directory (by
default ``.tmp`` under the working directory, shared by every query): each
connection gets a fresh private one (0700, removed when it closes), and its
``memory_limit`` and ``threads`` come from the engine settings
(``UZO_SQL_MEMORY_LIMIT_MB``, ``UZO_SQL_THREADS``). Inputs are registered as
Arrow tables named by input port (the edge's target handle, else the upstream
node's label as an identifier, else its id).

Static schema inference runs the query ``LIMIT 0`` over empty inputs; its answer
depends only on the query text and the input schemas, so it is kept (a bounded
LRU of ``SCHEMA_CACHE_SIZE`` entries per process): saving an edited workflow again
does not open a DuckDB connection for every unchanged SQL node.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

import duckdb
import polars as pl
import sqlglot
from pydantic import Field, field_validator
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError

from uzo_engine.expressions.bounds import MAX_DEPTH, bracket_depth, headroom, too_deep
from uzo_engine.nodes.base import NodeType, Params, SchemaError
from uzo_engine.nodes.types import polars_schema, to_arrow
from uzo_engine.settings import get_engine_settings

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import pyarrow as pa

    from uzo_engine.plan import StepContext


class SqlPermissionError(PermissionError):
    """User SQL tried something the locked-down connection forbids."""


def locked_connection(
    threads: int | None = None,
    memory_limit_mb: int | None = None,
    temp_directory: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that cannot touch files, the network, or its own settings.

    ``temp_directory`` is where DuckDB spills (queries can read it): give each
    connection its own, as :func:`sandboxed_connection` does.
    """
    con = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    if threads is not None:
        con.execute(f"SET threads={int(threads)}")
    if memory_limit_mb is not None:
        con.execute(f"SET memory_limit='{int(memory_limit_mb)}MB'")
    if temp_directory is not None:
        con.execute("SET temp_directory=$1", [temp_directory])
    con.execute("SET allowed_directories=[]")
    con.execute("SET enable_external_access=false")
    con.execute("SET lock_configuration=true")
    return con


@contextlib.contextmanager
def sandboxed_connection() -> Iterator[duckdb.DuckDBPyConnection]:
    """A locked connection with the settings' limits and a private temp directory."""
    settings = get_engine_settings()
    root = settings.sql_temp_root
    if root is not None:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = tempfile.mkdtemp(prefix="uzo-sql-", dir=root)  # 0700, unique per connection
    try:
        con = locked_connection(settings.sql_threads, settings.sql_memory_limit_mb, private)
        try:
            yield con
        finally:
            con.close()
    finally:
        shutil.rmtree(private, ignore_errors=True)


class SqlParams(Params):
    query: str = Field(description="one SELECT (or WITH ... SELECT) over the input tables")

    @field_validator("query")
    @classmethod
    def _one_query(cls, v: str) -> str:
        try:
            # brackets are counted first: the parser recurses into each (see expressions)
            if bracket_depth(Dialect.get_or_raise("duckdb").tokenize(v)) > MAX_DEPTH:
                raise ValueError(too_deep(v, "query"))
            with headroom():
                statements = [s for s in sqlglot.parse(v, read="duckdb") if s is not None]
        except SqlglotError as e:  # a ParseError, or a TokenError (an unclosed quote)
            raise ValueError(f"cannot parse SQL: {str(e).splitlines()[0]}") from None
        except RecursionError:
            raise ValueError(too_deep(v, "query")) from None
        if len(statements) != 1:
            raise ValueError("give exactly one SQL statement")
        if not isinstance(statements[0], exp.Query):
            kind = type(statements[0]).__name__.upper()
            raise ValueError(f"only a query (SELECT/WITH) is allowed, not {kind}")
        return v


_MISSING_COLUMN = re.compile(r'Referenced column "([^"]+)" not found')

SCHEMA_CACHE_SIZE = 512
# (query, input schemas) -> the output schema, or the refusal's (message, code, column)
_SchemaKey = tuple[str, tuple[tuple[str, tuple[tuple[str, str], ...]], ...]]
_schemas: OrderedDict[_SchemaKey, pl.Schema | tuple[str, str, str | None]] = OrderedDict()
_schemas_lock = threading.Lock()


def _schema_key(query: str, inputs: Mapping[str, pl.Schema]) -> _SchemaKey:
    return (
        query,
        tuple(
            (port, tuple((name, repr(dtype)) for name, dtype in schema.items()))
            for port, schema in sorted(inputs.items())
        ),
    )


def _infer_output_schema(query: str, inputs: Mapping[str, pl.Schema]) -> pl.Schema:
    key = _schema_key(query, inputs)
    with _schemas_lock:
        known = _schemas.get(key)
        if known is not None:
            _schemas.move_to_end(key)
    if known is None:
        known = _run_inference(query, inputs)
        with _schemas_lock:
            _schemas[key] = known
            while len(_schemas) > SCHEMA_CACHE_SIZE:
                _schemas.popitem(last=False)
    if isinstance(known, tuple):
        message, code, column = known
        raise SchemaError(message, code=code, column=column)
    return pl.Schema(known)


def _run_inference(
    query: str, inputs: Mapping[str, pl.Schema]
) -> pl.Schema | tuple[str, str, str | None]:
    empties = {port: to_arrow(pl.DataFrame(schema=schema)) for port, schema in inputs.items()}
    try:
        result = run_sql(f"SELECT * FROM ({query}) AS q LIMIT 0", empties)
    except (duckdb.Error, SqlPermissionError) as e:
        text = str(e).splitlines()[0]
        m = _MISSING_COLUMN.search(text)
        return (f"SQL: {text}", "missing_column" if m else "sql_error", m.group(1) if m else None)
    return polars_schema(result.schema)


def run_sql(query: str, tables: Mapping[str, pa.Table]) -> pa.Table:
    with sandboxed_connection() as con:
        for name, table in tables.items():
            con.register(name, table)
        try:
            return con.sql(query).to_arrow_table()
        except duckdb.PermissionException as e:
            raise SqlPermissionError(
                f"not allowed in UZO SQL (no file, network or extension access): "
                f"{str(e).splitlines()[0]}"
            ) from None
        except duckdb.OutOfMemoryException as e:
            raise MemoryError(
                f"the SQL node needs more memory than its limit (UZO_SQL_MEMORY_LIMIT_MB="
                f"{get_engine_settings().sql_memory_limit_mb}): {str(e).splitlines()[0]}"
            ) from None


class SqlNode(NodeType[SqlParams]):
    name = "sql"
    Params = SqlParams
    inputs = ()
    variadic_inputs = True
    min_inputs = 0
    description = "DuckDB SQL over the inputs (each input is a table named by its port)."

    def infer_schema(
        self, params: SqlParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        return {"out": _infer_output_schema(params.query, inputs)}

    def run(
        self, params: SqlParams, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        return {"out": run_sql(params.query, inputs)}
