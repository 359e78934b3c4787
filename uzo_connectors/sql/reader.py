"""Reads for the SQL family: a validated read spec and the generic streaming reader."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from uzo_connectors.base import ReadPlan
from uzo_connectors.errors import ConfigError
from uzo_connectors.sql.types import rows_to_batch

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa
    from sqlalchemy.engine import Engine


@dataclass(frozen=True)
class ReadSpec:
    """Everything a read task needs, validated at planning time (picklable)."""

    schema_name: str | None
    table: str
    columns: tuple[str, ...]  # projected, exact names
    predicate_sql: str | None  # already validated and rendered for the target dialect
    limit: int | None
    watermark: str | None = None
    after: Any = None
    upper: Any = None  # the high-water mark computed at planning time (inclusive)
    batch_size: int = 65_536
    empty: bool = False  # incremental read with nothing new


@dataclass(frozen=True)
class IncrementalReadPlan(ReadPlan):
    """The read plan of an incremental SQL/MongoDB read (``high_water_mark`` is on ReadPlan).

    The mark is the greatest watermark value the tasks will return (None when there is
    nothing new: keep the previous mark). Pass it as ``Incremental.after`` next time.
    """


def resolve_columns(requested: tuple[str, ...] | None, available: list[str]) -> tuple[str, ...]:
    """The exact column names of a projection (case-insensitive match), in request order."""
    if requested is None:
        return tuple(available)
    by_lower = {c.lower(): c for c in available}
    out = []
    for name in requested:
        actual = name if name in available else by_lower.get(name.lower())
        if actual is None:
            raise ConfigError(f"columns: unknown column {name!r} (columns: {', '.join(available)})")
        out.append(actual)
    if not out:
        raise ConfigError("columns: the projection is empty")
    return tuple(out)


def resolve_column(name: str, available: list[str]) -> str:
    return resolve_columns((name,), available)[0]


def _where(table: sa.Table, spec: ReadSpec, *, with_upper: bool) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = []
    if spec.predicate_sql:
        clauses.append(sa.literal_column(f"({spec.predicate_sql})", sa.Boolean))
    if spec.watermark is not None:
        col = table.c[spec.watermark]
        if spec.after is not None:
            clauses.append(col > sa.bindparam("uzo_after", spec.after, type_=col.type))
        if with_upper and spec.upper is not None:
            clauses.append(col <= sa.bindparam("uzo_upper", spec.upper, type_=col.type))
    return clauses


def high_water_mark(engine: Engine, table: sa.Table, spec: ReadSpec) -> Any:
    """The greatest watermark value the read would return (None if none)."""
    assert spec.watermark is not None
    col = table.c[spec.watermark]
    inner = sa.select(col).where(*_where(table, spec, with_upper=False))
    if spec.limit is not None:
        inner = inner.order_by(col).limit(spec.limit)
    query = sa.select(sa.func.max(inner.subquery().c[spec.watermark]))
    with engine.connect() as conn:
        return conn.execute(query).scalar()


def select_for(table: sa.Table, spec: ReadSpec) -> sa.Select[Any]:
    query = sa.select(*(table.c[c] for c in spec.columns)).where(
        *_where(table, spec, with_upper=True)
    )
    if spec.watermark is not None:
        query = query.order_by(table.c[spec.watermark])
    if spec.limit is not None:
        query = query.limit(spec.limit)
    return query


def stream(
    engine: Engine, table: sa.Table, spec: ReadSpec, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """Stream the read as record batches of at most ``spec.batch_size`` rows.

    A server-side cursor (``stream_results``) keeps memory bounded by one batch
    on drivers that support it (psycopg, pymysql's SSCursor, ...).
    """
    if spec.empty:
        return
    query = select_for(table, spec)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=spec.batch_size).execute(
            query
        )
        for rows in result.partitions(spec.batch_size):
            yield rows_to_batch(list(rows), schema)
