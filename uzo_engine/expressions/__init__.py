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
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError

from uzo_engine.expressions.bounds import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_OPERANDS,
    bounds_error,
    bracket_depth,
    headroom,
    too_deep,
)
from uzo_engine.expressions.compiler import _HANDLERS, MissingColumnError, Translator
from uzo_engine.expressions.registry import REGISTRY, sql_function_name
from uzo_engine.expressions.runtime import ExpressionRuntimeError, explain
from uzo_engine.expressions.sqltypes import sql_name
from uzo_engine.expressions.typed import ExpressionError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import polars as pl

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_OPERANDS",
    "CompiledExpression",
    "ExpressionError",
    "ExpressionRuntimeError",
    "MissingColumnError",
    "check",
    "compile_expression",
    "explain",
    "qualified_columns",
    "referenced_columns",
    "sql_name",
    "unqualify",
]


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
        # brackets are counted on the tokens first: the parser recurses into each
        if bracket_depth(Dialect.get_or_raise("duckdb").tokenize(sql)) > MAX_DEPTH:
            raise ExpressionError(too_deep(sql))
        with headroom():
            tree = sqlglot.parse_one(sql, read="duckdb")
    except SqlglotError as e:  # a ParseError, or a TokenError (an unclosed quote)
        raise ExpressionError(f"cannot parse expression {sql!r}: {e}") from None
    except RecursionError:  # nesting the brackets do not show (NOT NOT ..., CASE in CASE)
        raise ExpressionError(too_deep(sql)) from None
    if tree is None:
        raise ExpressionError(f"empty expression {sql!r}")
    if isinstance(tree, (exp.Select, exp.Query, exp.Command, exp.Alias)):
        raise ExpressionError(f"{sql!r} is not an expression (a statement or an alias)")
    return tree


@functools.lru_cache(maxsize=4096)
def check(sql: str) -> tuple[str, ...]:
    """Validate an expression without types; the columns it reads, in first-use order."""
    tree = parse(sql)
    out_of_bounds = bounds_error(tree, sql)
    if out_of_bounds is not None:
        raise ExpressionError(out_of_bounds)
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
            with headroom():  # the message renders the node
                raise Translator(sql, {}).unsupported(node)
    return tuple(columns)


def referenced_columns(sql: str) -> tuple[str, ...]:
    return check(sql)


@functools.lru_cache(maxsize=1024)
def qualified_columns(sql: str) -> tuple[tuple[str | None, str], ...]:
    """The columns ``sql`` reads as ``(qualifier, name)`` pairs (``l.amount``: ``("l",
    "amount")``; an unqualified name's qualifier is None), in first-use order. A join
    condition reads its two inputs through the qualifiers."""
    check(sql)
    found: list[tuple[str | None, str]] = []
    for node in parse(sql).walk(bfs=False):
        if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
            if node.args.get("db") or node.args.get("catalog"):
                raise ExpressionError(f"{node.sql('duckdb')}: a column is named as t.column")
            pair = (node.table or None, node.name)
            if pair not in found:
                found.append(pair)
    return tuple(found)


def unqualify(sql: str, names: Mapping[tuple[str, str], str]) -> str:
    """``sql`` with each qualified column ``t.c`` replaced by the plain column
    ``names[(t, c)]`` (quoted): a join condition over the joined frame's names. Every
    qualified column must be in ``names`` (check with :func:`qualified_columns`)."""
    tree = parse(sql)

    def rename(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.table and not isinstance(node.this, exp.Star):
            return exp.column(names[(node.table, node.name)], quoted=True)
        return node

    with headroom():
        return tree.transform(rename, copy=False).sql(dialect="duckdb")


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
        tree = parse(sql)
        with headroom():
            typed = translator.translate(tree)
    except RecursionError:  # past the bounds check(): a bug, still a message
        raise ExpressionError(too_deep(sql)) from None
    compiled = CompiledExpression(sql, typed.expr, typed.dtype, tuple(translator.columns))
    if not translator.volatile:
        with _cache_lock:
            if len(_cache) >= _CACHE_SIZE:
                _cache.clear()
            _cache[key] = compiled
    return compiled
