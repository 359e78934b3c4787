"""UZO's SQL expressions: DuckDB's dialect and semantics, compiled to typed Polars expressions.

Filter conditions, derived columns and routing conditions are SQL expression
strings (``amount > 100 AND region IN ('EU', 'US')``), parsed with sqlglot's
DuckDB dialect. :func:`check` validates one without types (syntax, known
functions, the columns it reads); :func:`compile_expression` translates it
against the input schema into a Polars expression with DuckDB's result type,
refusing at that point (validation, before anything runs) what DuckDB would
refuse for those types. The rules, functions and the few deliberate
differences from DuckDB are in ``docs/expressions.md``, generated from the
registry the compiler uses (:mod:`uzo_engine.expressions.reference`).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from uzo_engine.expressions.compiler import _HANDLERS, MissingColumnError, Translator
from uzo_engine.expressions.registry import REGISTRY, sql_function_name
from uzo_engine.expressions.runtime import ExpressionRuntimeError, explain
from uzo_engine.expressions.sqltypes import sql_name
from uzo_engine.expressions.typed import ExpressionError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import polars as pl

__all__ = [
    "CompiledExpression",
    "ExpressionError",
    "ExpressionRuntimeError",
    "MissingColumnError",
    "check",
    "compile_expression",
    "explain",
    "referenced_columns",
    "sql_name",
]

MAX_LENGTH = 100_000  # characters of one expression
MAX_DEPTH = 200  # nesting of one expression (deeper ones are refused, not a RecursionError)


@dataclass(frozen=True)
class CompiledExpression:
    sql: str
    expr: pl.Expr
    dtype: pl.DataType
    columns: tuple[str, ...]  # referenced input columns, in first-use order


def parse(sql: str) -> exp.Expr:
    if not isinstance(sql, str) or not sql.strip():
        raise ExpressionError("an expression must be a non-empty SQL string")
    if len(sql) > MAX_LENGTH:
        raise ExpressionError(f"an expression may have at most {MAX_LENGTH:,} characters")
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except ParseError as e:
        raise ExpressionError(f"cannot parse expression {sql!r}: {e}") from None
    except RecursionError:
        raise ExpressionError(f"expression {sql[:80]!r}... is nested too deeply") from None
    if tree is None:
        raise ExpressionError(f"empty expression {sql!r}")
    if isinstance(tree, (exp.Select, exp.Query, exp.Command, exp.Alias)):
        raise ExpressionError(f"{sql!r} is not an expression (a statement or an alias)")
    return tree


def _depth(tree: exp.Expr) -> int:
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.iter_expressions())
    return deepest


@functools.lru_cache(maxsize=4096)
def check(sql: str) -> tuple[str, ...]:
    """Validate an expression without types; the columns it reads, in first-use order."""
    tree = parse(sql)
    if _depth(tree) > MAX_DEPTH:
        raise ExpressionError(f"expression {sql[:80]!r}... is nested more than {MAX_DEPTH} deep")
    columns: list[str] = []
    for node in tree.walk(bfs=False):
        if isinstance(node, exp.Column):
            if not isinstance(node.this, exp.Star) and node.name not in columns:
                columns.append(node.name)
        elif isinstance(node, (exp.AggFunc, exp.Window)) and type(node) not in _HANDLERS:
            raise ExpressionError(
                f"aggregate function {sql_function_name(node)}() is not allowed in a row"
                f" expression: use an aggregate or window node (in {sql!r})"
            )
        elif (
            isinstance(node, exp.Func)
            and type(node) not in _HANDLERS
            and REGISTRY.lookup(node) is None
        ):
            raise Translator(sql, {}).unsupported(node)
    return tuple(columns)


def referenced_columns(sql: str) -> tuple[str, ...]:
    return check(sql)


_cache: dict[tuple[object, ...], CompiledExpression] = {}
_cache_lock = threading.Lock()
_CACHE_SIZE = 4096


def compile_expression(sql: str, schema: Mapping[str, pl.DataType]) -> CompiledExpression:
    """The typed Polars expression of ``sql`` over ``schema`` (ExpressionError if it has none)."""
    columns = check(sql)
    key = (sql, *((c, schema.get(c)) for c in columns))
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    translator = Translator(sql, schema)
    try:
        typed = translator.translate(parse(sql))
    except RecursionError:
        raise ExpressionError(f"expression {sql[:80]!r}... is nested too deeply") from None
    compiled = CompiledExpression(sql, typed.expr, typed.dtype, tuple(translator.columns))
    if not translator.volatile:
        with _cache_lock:
            if len(_cache) >= _CACHE_SIZE:
                _cache.clear()
            _cache[key] = compiled
    return compiled
