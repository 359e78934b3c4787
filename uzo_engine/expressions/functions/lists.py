"""Lists: literals, 1-based indexing and slicing (strings too), contains, length."""

from __future__ import annotations

import polars as pl
from sqlglot import exp

from uzo_engine.expressions.compiler import BOOL, Translator, handles
from uzo_engine.expressions.functions.text import substring
from uzo_engine.expressions.registry import function
from uzo_engine.expressions.sqltypes import _dtype, numeric_supertype
from uzo_engine.expressions.typed import Typed, constant, null_of, scalar
from uzo_engine.expressions.unify import unify

BIGINT = pl.Int64()


def _index(i: pl.Expr) -> pl.Expr:
    """DuckDB's 1-based index (negative from the end) as Polars' 0-based one (0: none)."""
    return pl.when(i > 0).then(i - 1).otherwise(i)


def _bounds(begin: pl.Expr, end: pl.Expr, length: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """DuckDB's slice bounds (1-based, inclusive, negative from the end) as offset, count."""
    b = pl.when(begin < 0).then(length + begin + 1).when(begin == 0).then(1).otherwise(begin)
    e = pl.when(end < 0).then(length + end + 1).otherwise(end)
    b = pl.max_horizontal(b, pl.lit(1, dtype=BIGINT))
    e = pl.min_horizontal(e, length)
    return b - 1, pl.max_horizontal(e - b + 1, pl.lit(0, dtype=BIGINT))


def element(tr: Translator, value: Typed, index: Typed) -> Typed:
    i = tr.expect(index, ("integer",), "a list index")
    if value.is_null or i.is_null:
        return Typed(pl.lit(None), pl.Null(), None)
    if value.family == "string":
        return substring(value, i, constant(1, BIGINT))
    if not isinstance(value.dtype, pl.List):
        raise tr.error("only lists and strings can be indexed")
    inner = _dtype(value.dtype.inner)
    position = i.expr.cast(BIGINT)
    got = value.expr.list.get(_index(position), null_on_oob=True)
    return Typed(pl.when(position == 0).then(None).otherwise(got), inner)


@handles(exp.Bracket)
def _bracket(tr: Translator, node: exp.Expr) -> Typed:
    value = tr.translate(node.this)
    keys = node.expressions
    if len(keys) != 1:
        raise tr.error("give one index or slice in [ ]")
    key = keys[0]
    if isinstance(key, exp.Slice):
        start = tr.translate(key.this) if key.this is not None else constant(1, BIGINT)
        start = tr.expect(start, ("integer",), "a slice start")
        stop = tr.translate(key.expression) if key.expression is not None else None
        if value.family == "string":
            size = value.expr.str.len_chars().cast(BIGINT)
        elif isinstance(value.dtype, pl.List):
            size = value.expr.list.len().cast(BIGINT)
        else:
            raise tr.error("only lists and strings can be sliced")
        end = stop.expr.cast(BIGINT) if stop is not None else size
        offset, count = _bounds(start.expr.cast(BIGINT), end, size)
        if value.family == "string":
            return Typed(value.expr.str.slice(offset, count), pl.String())
        return Typed(value.expr.list.slice(offset, count), value.dtype)
    # sqlglot stores DuckDB's 1-based index 0-based (li[1] arrives as 0, li[0] as -1)
    index = tr.expect(tr.translate(key), ("integer",), "a list index")
    if index.null_constant:
        return Typed(pl.lit(None), pl.Null(), None)
    one_based = Typed(index.expr.cast(BIGINT) + 1, BIGINT)
    return element(tr, value, one_based)


@handles(exp.Array)
def _array(tr: Translator, node: exp.Expr) -> Typed:
    items = tr.args(node)
    if not items:
        return Typed(scalar([], pl.List(pl.Int32())), pl.List(pl.Int32()), [])
    unified, dtype = unify(items, "a list")
    if isinstance(dtype, pl.Null):
        dtype = pl.Int32()
        unified = [null_of(dtype) for _ in items]
    if all(u.constant for u in unified):
        values = [u.value for u in unified]
        return Typed(scalar(values, pl.List(dtype)), pl.List(dtype), values)
    return Typed(pl.concat_list([u.expr for u in unified]), pl.List(dtype))


@function(
    "list_extract", signature="list_extract(list, index)", returns="element type",
    category="list", aliases=("list_element", "array_extract"),
    doc="The element at `index` (1-based, negative from the end; NULL outside); `list[i]`.",
)  # fmt: skip
def _list_extract(tr: Translator, node: exp.Expr) -> Typed:
    args = tr.args(node)
    if len(args) != 2:
        raise tr.error("list_extract(list, index) takes two arguments")
    return element(tr, args[0], args[1])


@function(
    "list_contains", signature="list_contains(list, value)", returns="BOOLEAN",
    category="list", nodes=(exp.ArrayContains,), aliases=("list_has", "array_contains"),
    doc="`value` is an element of the list (a NULL value: FALSE in an empty list, else NULL).",
)  # fmt: skip
def _list_contains(tr: Translator, node: exp.Expr) -> Typed:
    values = tr.arg(node)
    item = tr.arg(node, "expression")
    if values.null_constant:
        return Typed(pl.lit(None, dtype=BOOL), BOOL, None)
    if not isinstance(values.dtype, pl.List):
        raise tr.error("list_contains needs a list")
    # a NULL value: FALSE in an empty list, else NULL (as DuckDB, NULL elements or not)
    empty = values.expr.list.len() == 0
    if item.null_constant:
        return Typed(pl.when(empty).then(False).otherwise(None).cast(BOOL), BOOL)
    inner = _dtype(values.dtype.inner)
    numbers = inner.is_numeric() and item.dtype.is_numeric()
    common = numeric_supertype(inner, item.dtype) if numbers else inner
    found = values.expr.cast(pl.List(common)).list.contains(item.expr.cast(common))
    answer = (
        pl.when(values.expr.is_null()).then(None)
        .when(empty).then(False)
        .when(item.expr.is_null()).then(None)
        .otherwise(found)
    )  # fmt: skip
    return Typed(answer.cast(BOOL), BOOL)


@function(
    "array_length", signature="array_length(list)", returns="BIGINT", category="list",
    nodes=(exp.ArraySize,), aliases=("len", "list_length"),
    doc="The number of elements (also `length(list)`).",
)  # fmt: skip
def _array_length(tr: Translator, node: exp.Expr) -> Typed:
    values = tr.arg(node)
    if values.is_null:
        return null_of(BIGINT)
    if not isinstance(values.dtype, pl.List):
        raise tr.error("array_length needs a list")
    return Typed(values.expr.list.len().cast(BIGINT), BIGINT)
