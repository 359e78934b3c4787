"""SQL boolean expressions (``ReadRequest.predicate``) -> Arrow dataset filters.

The common subset (comparisons, AND/OR/NOT, IN, IS [NOT] NULL, BETWEEN,
arithmetic, literals) becomes a ``pyarrow.compute.Expression`` that
``pyarrow.dataset`` pushes into the scan (Parquet row groups are skipped by
their statistics). Anything else (LIKE, functions, ...) is evaluated after the
scan with Polars' SQL expressions: still correct, just not pushed down.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from uzo_connectors.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlglot import exp as exp_t


class Untranslatable(Exception):
    """The expression uses SQL the Arrow translation does not cover."""


def parse(predicate: str) -> exp_t.Expr:
    import sqlglot
    from sqlglot.errors import ParseError

    try:
        return sqlglot.parse_one(predicate, read="duckdb")
    except ParseError as exc:
        raise ConfigError(f"predicate {predicate!r} is not a valid SQL expression: {exc}") from None


def columns_of(predicate: str) -> set[str]:
    from sqlglot import exp

    return {col.name for col in parse(predicate).find_all(exp.Column)}


def to_arrow(predicate: str) -> pc.Expression:
    """The Arrow expression for ``predicate``; Untranslatable if outside the subset."""
    return _convert(parse(predicate))


def _binary() -> dict[type[Any], Callable[[Any, Any], Any]]:
    from sqlglot import exp

    return {
        exp.EQ: operator.eq,
        exp.NEQ: operator.ne,
        exp.GT: operator.gt,
        exp.GTE: operator.ge,
        exp.LT: operator.lt,
        exp.LTE: operator.le,
        exp.And: operator.and_,
        exp.Or: operator.or_,
        exp.Add: operator.add,
        exp.Sub: operator.sub,
        exp.Mul: operator.mul,
        exp.Div: operator.truediv,
    }


def _literal(node: exp_t.Expr) -> Any:
    from sqlglot import exp

    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = node.this
        try:
            return int(text)
        except ValueError:
            return float(text)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Neg):
        value = _literal(node.this)
        if isinstance(value, int | float):
            return -value
    raise Untranslatable(type(node).__name__)


def _convert(node: exp_t.Expr) -> Any:
    from sqlglot import exp

    if isinstance(node, exp.Paren):
        return _convert(node.this)
    if isinstance(node, exp.Column):
        return pc.field(node.name)
    if isinstance(node, exp.Not):
        return ~_convert(node.this)
    if isinstance(node, exp.Is):
        inner = _convert(node.this)
        if isinstance(node.expression, exp.Null):
            return inner.is_null()
        raise Untranslatable("IS")
    if isinstance(node, exp.In):
        if node.args.get("query") is not None:
            raise Untranslatable("IN (subquery)")
        values = [_literal(v) for v in node.expressions]
        return _convert(node.this).isin(pa.array(values))
    if isinstance(node, exp.Between):
        inner = _convert(node.this)
        low, high = _convert(node.args["low"]), _convert(node.args["high"])
        return (inner >= low) & (inner <= high)
    op = _binary().get(type(node))
    if op is not None:
        return op(
            _as_expr(_convert(node.args["this"])), _as_expr(_convert(node.args["expression"]))
        )
    return pc.scalar(_literal(node))


def _as_expr(value: Any) -> pc.Expression:
    return value if isinstance(value, pc.Expression) else pc.scalar(value)


def filter_after_scan(batch: pa.RecordBatch, predicate: str) -> pa.RecordBatch:
    """Evaluate a predicate Arrow cannot take, with Polars SQL (used after the scan)."""
    import polars as pl

    from uzo_connectors.arrow import from_polars, to_polars

    try:
        frame = to_polars(batch).filter(pl.sql_expr(predicate))
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise ConfigError(f"predicate {predicate!r} cannot be evaluated: {exc}") from None
    table = from_polars(frame).cast(batch.schema)
    return pa.RecordBatch.from_arrays(
        [table.column(i).combine_chunks() for i in range(table.num_columns)], schema=batch.schema
    )
