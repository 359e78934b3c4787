"""DuckDB SQL over the named inputs, in a locked-down connection.

This module owns the DuckDB lockdown (FACTS.md, "DuckDB 2.0 lockdown that
holds"): autoinstall/autoload of extensions off at connect, then
``allowed_directories`` empty, ``enable_external_access`` false and
``lock_configuration`` true, so user SQL cannot read or write files, attach
databases, reach the network or install/load extensions, and cannot undo any
of it. Inputs are registered as Arrow tables named by input port (the edge's
target handle, else the upstream node's label as an identifier, else its id).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import duckdb
import polars as pl
import sqlglot
from pydantic import Field, field_validator
from sqlglot import exp
from sqlglot.errors import ParseError

from uzo_engine.nodes.base import NodeType, Params, SchemaError
from uzo_engine.nodes.types import polars_schema, to_arrow

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pyarrow as pa

    from uzo_engine.plan import StepContext


class SqlPermissionError(PermissionError):
    """User SQL tried something the locked-down connection forbids."""


def locked_connection(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that cannot touch files, the network, or its own settings."""
    con = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    if threads is not None:
        con.execute(f"SET threads={int(threads)}")
    con.execute("SET allowed_directories=[]")
    con.execute("SET enable_external_access=false")
    con.execute("SET lock_configuration=true")
    return con


class SqlParams(Params):
    query: str = Field(description="one SELECT (or WITH ... SELECT) over the input tables")

    @field_validator("query")
    @classmethod
    def _one_query(cls, v: str) -> str:
        try:
            statements = [s for s in sqlglot.parse(v, read="duckdb") if s is not None]
        except ParseError as e:
            raise ValueError(f"cannot parse SQL: {str(e).splitlines()[0]}") from None
        if len(statements) != 1:
            raise ValueError("give exactly one SQL statement")
        if not isinstance(statements[0], exp.Query):
            kind = type(statements[0]).__name__.upper()
            raise ValueError(f"only a query (SELECT/WITH) is allowed, not {kind}")
        return v


_MISSING_COLUMN = re.compile(r'Referenced column "([^"]+)" not found')


def run_sql(query: str, tables: Mapping[str, pa.Table]) -> pa.Table:
    con = locked_connection()
    try:
        for name, table in tables.items():
            con.register(name, table)
        try:
            return con.sql(query).to_arrow_table()
        except duckdb.PermissionException as e:
            raise SqlPermissionError(
                f"not allowed in UZO SQL (no file, network or extension access): "
                f"{str(e).splitlines()[0]}"
            ) from None
    finally:
        con.close()


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
        empties = {port: to_arrow(pl.DataFrame(schema=schema)) for port, schema in inputs.items()}
        try:
            result = run_sql(f"SELECT * FROM ({params.query}) AS q LIMIT 0", empties)
        except (duckdb.Error, SqlPermissionError) as e:
            text = str(e).splitlines()[0]
            m = _MISSING_COLUMN.search(text)
            raise SchemaError(
                f"SQL: {text}",
                code="missing_column" if m else "sql_error",
                column=m.group(1) if m else None,
            ) from None
        return {"out": polars_schema(result.schema)}

    def run(
        self, params: SqlParams, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        return {"out": run_sql(params.query, inputs)}
