"""CASE, IF, COALESCE, NULLIF, GREATEST/LEAST, IN, BETWEEN, LIKE, IS, CAST.

Each branch of a conditional is translated in its own scope (see
:mod:`uzo_engine.expressions.compiler`): the later arguments of COALESCE only
for the rows where the earlier ones are NULL, a CASE branch only where its
condition is the first to hold.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlglot import exp

from uzo_engine.expressions.casts import cast
from uzo_engine.expressions.compiler import BOOL, NULL_BOOL, Translator, handles
from uzo_engine.expressions.sqltypes import HUGEINT, sql_name
from uzo_engine.expressions.typed import ExpressionError, Typed, null_of
from uzo_engine.expressions.unify import unify

if TYPE_CHECKING:
    from collections.abc import Sequence


def _and(a: pl.Expr | None, b: pl.Expr) -> pl.Expr:
    return b if a is None else a & b


def _choose(conditions: Sequence[pl.Expr], values: Sequence[Typed], dtype: pl.DataType) -> Typed:
    builder: Any = pl.when(conditions[0]).then(values[0].expr)
    for condition, value in zip(conditions[1:], values[1:-1], strict=True):
        builder = builder.when(condition).then(value.expr)
    return Typed(builder.otherwise(values[-1].expr).cast(dtype), dtype)


def _branches(
    tr: Translator,
    node: exp.Expr,
    tests: Sequence[exp.Expr],
    results: Sequence[exp.Expr],
    default: exp.Expr | None,
    subject: exp.Expr | None = None,
) -> Typed:
    conditions: list[pl.Expr] = []
    values: list[Typed] = []
    unchosen: list[Typed] = []  # branches a constant condition rules out: typed, never run
    never = pl.lit(False)
    earlier_false: pl.Expr | None = None  # no earlier condition held
    pairs = list(zip(tests, results, strict=True))
    for i, (test, result) in enumerate(pairs):
        with tr.scope(earlier_false):
            if subject is not None:
                held = tr.compare_typed(
                    "=", tr.translate(subject), tr.translate(test), tr.text(node)
                )
            else:
                held = tr.boolean(tr.translate(test), "a CASE condition")
        if held.constant and not held.value:  # WHEN FALSE / NULL: never chosen
            with tr.scope(never):
                unchosen.append(tr.translate(result))
            continue
        if held.constant and held.value:  # WHEN TRUE: chosen, and nothing after it is
            with tr.scope(never):
                unchosen.extend(tr.translate(r) for _, r in pairs[i + 1 :])
                if default is not None:
                    unchosen.append(tr.translate(default))
            default = result
            break
        condition = held.expr.fill_null(False)
        with tr.scope(_and(earlier_false, condition)):
            values.append(tr.translate(result))
        conditions.append(condition)
        earlier_false = _and(earlier_false, ~condition)
    with tr.scope(earlier_false):
        values.append(tr.translate(default) if default is not None else null_of(pl.Null()))
    # the result type is that of every branch, chosen or not (as DuckDB binds them all);
    # a string literal in a branch never chosen is not converted (DuckDB drops it first)
    unchosen = [t for t in unchosen if not (t.constant and isinstance(t.value, str))]
    unified, dtype = unify([*values, *unchosen], "CASE")
    unified = unified[: len(values)]
    if isinstance(dtype, pl.Null):
        return Typed(pl.lit(None), pl.Null(), None)
    if not conditions:  # every WHEN was constant: the chosen value itself
        return unified[-1]
    return _choose(conditions, unified, dtype)


@handles(exp.Case)
def _case(tr: Translator, node: exp.Expr) -> Typed:
    ifs = node.args.get("ifs") or []
    if not ifs:
        raise tr.error("CASE needs a WHEN")
    return _branches(
        tr,
        node,
        [b.this for b in ifs],
        [b.args["true"] for b in ifs],
        node.args.get("default"),
        subject=node.this,
    )


@handles(exp.If)
def _if(tr: Translator, node: exp.Expr) -> Typed:
    return _branches(tr, node, [node.this], [node.args["true"]], node.args.get("false"))


@handles(exp.Coalesce)
def _coalesce(tr: Translator, node: exp.Expr) -> Typed:
    values: list[Typed] = []
    all_null: pl.Expr | None = None
    for child in [node.this, *node.expressions]:
        with tr.scope(all_null):
            value = tr.translate(child)
        values.append(value)
        all_null = _and(all_null, value.expr.is_null())
    unified, dtype = unify(values, "COALESCE")
    if isinstance(dtype, pl.Null):
        return Typed(pl.lit(None), pl.Null(), None)
    return Typed(pl.coalesce([v.expr for v in unified]).cast(dtype), dtype)


@handles(exp.Nullif)
def _nullif(tr: Translator, node: exp.Expr) -> Typed:
    a, b = tr.translate(node.this), tr.translate(node.expression)
    if a.null_constant or b.null_constant:
        return a
    (x, y), _ = unify([a, b], "NULLIF", equality=True)
    # compared in the common type, returned in the first argument's (as DuckDB)
    return Typed(pl.when(x.expr == y.expr).then(None).otherwise(a.expr).cast(a.dtype), a.dtype)


@handles(exp.Greatest, exp.Least)
def _greatest(tr: Translator, node: exp.Expr) -> Typed:
    values = [tr.translate(node.this), *tr.args(node)]
    unified, dtype = unify(values, node.key.upper())
    if isinstance(dtype, pl.Null):
        return Typed(pl.lit(None), pl.Null(), None)
    exprs = [v.expr for v in unified]
    greatest = isinstance(node, exp.Greatest)
    combined = pl.max_horizontal(exprs) if greatest else pl.min_horizontal(exprs)
    if dtype.is_float():  # NaN is the greatest value in DuckDB's order (Polars skips it)
        nan = pl.lit(float("nan"), dtype=dtype)
        any_nan = pl.any_horizontal([e.is_nan() for e in exprs])
        only_nan = pl.all_horizontal([e.is_nan() | e.is_null() for e in exprs])
        combined = (
            pl.when(any_nan if greatest else any_nan & only_nan).then(nan).otherwise(combined)
        )
    return Typed(combined.cast(dtype), dtype)


@handles(exp.In)
def _in(tr: Translator, node: exp.Expr) -> Typed:
    if node.args.get("query") is not None or node.args.get("unnest") is not None:
        raise tr.error(
            "IN (subquery) is not supported in a row expression: join the other input with"
            " a join node (how: semi, or anti for NOT IN)"
        )
    subject = tr.translate(node.this)
    if subject.null_constant:
        return NULL_BOOL
    items = [tr.translate(e) for e in node.expressions]
    has_null = any(i.null_constant for i in items)
    present = [i for i in items if not i.null_constant]
    if not present:
        return NULL_BOOL
    unified, _ = unify([subject, *present], "IN list", equality=True)
    x, values = unified[0], unified[1:]
    if all(v.constant for v in values):
        found = x.expr.is_in(pl.Series([v.value for v in values], dtype=x.dtype).implode())
    else:
        found = pl.any_horizontal([x.expr == v.expr for v in values])
        # any_horizontal drops NULL comparisons: NULL if no match and any was NULL
        unknown = pl.any_horizontal([(x.expr == v.expr).is_null() for v in values])
        found = pl.when(found).then(True).when(unknown).then(None).otherwise(False)
    found = pl.when(x.expr.is_null()).then(None).otherwise(found)
    if has_null:  # x IN (1, NULL): TRUE or NULL, never FALSE
        found = pl.when(found).then(True).otherwise(None)
    return Typed(found.cast(BOOL), BOOL)


@handles(exp.Between)
def _between(tr: Translator, node: exp.Expr) -> Typed:
    x = tr.translate(node.this)
    low, high = tr.translate(node.args["low"]), tr.translate(node.args["high"])
    above = tr.compare_typed(">=", x, low, tr.text(node))
    below = tr.compare_typed("<=", x, high, tr.text(node))
    return Typed(above.expr & below.expr, BOOL)


def like_regex(pattern: str, escape: str | None, case_insensitive: bool) -> str:
    out = []
    chars = iter(pattern)
    for ch in chars:
        if escape is not None and ch == escape:
            nxt = next(chars, None)
            if nxt is None:
                raise ExpressionError("LIKE pattern ends with its escape character")
            out.append(re.escape(nxt))
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    flags = "(?s" + ("i" if case_insensitive else "") + ")"
    return flags + "^" + "".join(out) + "$"


def _like(tr: Translator, node: exp.Expr, escape: str | None) -> Typed:
    subject = tr.expect(tr.translate(node.this), ("string",), "LIKE's left side")
    pattern_node = node.expression
    if isinstance(pattern_node, exp.Null) or subject.is_null:
        return NULL_BOOL
    insensitive = isinstance(node, exp.ILike)
    if isinstance(pattern_node, exp.Literal) and pattern_node.is_string:
        regex = like_regex(str(pattern_node.this), escape, insensitive)
        found = subject.expr.str.contains(regex)
    else:  # a pattern per row (slower: matched row by row)
        from uzo_engine.expressions.functions.text import _rowwise

        pattern = tr.expect(tr.translate(pattern_node), ("string",), "a LIKE pattern")
        if pattern.null_constant:
            return NULL_BOOL

        def matches(value: str, text: str) -> bool:
            return re.fullmatch(like_regex(text, escape, insensitive), value) is not None

        found = _rowwise(matches, [subject.expr, pattern.expr], ["s", "p"], BOOL)
    return Typed(~found if node.args.get("negate") else found, BOOL)


@handles(exp.Like, exp.ILike)
def _like_plain(tr: Translator, node: exp.Expr) -> Typed:
    return _like(tr, node, None)


@handles(exp.Escape)
def _like_escape(tr: Translator, node: exp.Expr) -> Typed:
    inner = node.this
    if not isinstance(inner, (exp.Like, exp.ILike)):
        raise tr.error("ESCAPE belongs to LIKE")
    escape = tr.literal_text(node.expression, "an ESCAPE character")
    if len(escape) != 1:
        raise tr.error("the ESCAPE character must be one character")
    return _like(tr, inner, escape)


@handles(exp.Is)
def _is(tr: Translator, node: exp.Expr) -> Typed:
    value = tr.translate(node.this)
    target = node.expression
    if isinstance(target, exp.Null):
        return Typed(value.expr.is_null(), BOOL)
    if isinstance(target, exp.Boolean):
        truth = tr.boolean(value, "IS TRUE/FALSE operand")
        test = truth.expr if target.this else ~truth.expr
        return Typed(test.fill_null(False), BOOL)
    raise tr.error(f"unsupported IS {tr.text(target)}")


@handles(exp.NullSafeEQ, exp.NullSafeNEQ)
def _distinct(tr: Translator, node: exp.Expr) -> Typed:
    a, b = tr.translate(node.this), tr.translate(node.expression)
    if a.is_null and b.is_null:
        same = pl.lit(True)
    elif a.is_null or b.is_null:
        same = (b if a.is_null else a).expr.is_null()
    else:
        (x, y), _ = unify([a, b], "IS [NOT] DISTINCT FROM", equality=True)
        same = x.expr.eq_missing(y.expr)
    return Typed(same if isinstance(node, exp.NullSafeEQ) else ~same, BOOL)


# -- CAST ------------------------------------------------------------------------------

_DTYPES: dict[exp.DType, pl.DataType] = {
    exp.DType.TINYINT: pl.Int8(),
    exp.DType.SMALLINT: pl.Int16(),
    exp.DType.INT: pl.Int32(),
    exp.DType.BIGINT: pl.Int64(),
    exp.DType.INT128: HUGEINT,
    exp.DType.UTINYINT: pl.UInt8(),
    exp.DType.USMALLINT: pl.UInt16(),
    exp.DType.UINT: pl.UInt32(),
    exp.DType.UBIGINT: pl.UInt64(),
    exp.DType.FLOAT: pl.Float32(),
    exp.DType.DOUBLE: pl.Float64(),
    exp.DType.VARCHAR: pl.String(),
    exp.DType.TEXT: pl.String(),
    exp.DType.CHAR: pl.String(),
    exp.DType.NCHAR: pl.String(),
    exp.DType.NVARCHAR: pl.String(),
    exp.DType.BOOLEAN: pl.Boolean(),
    exp.DType.DATE: pl.Date(),
    exp.DType.TIME: pl.Time(),
    exp.DType.TIMESTAMP: pl.Datetime("us"),
    exp.DType.TIMESTAMPNTZ: pl.Datetime("us"),
    exp.DType.DATETIME: pl.Datetime("us"),
    exp.DType.TIMESTAMPTZ: pl.Datetime("us", "UTC"),
    exp.DType.TIMESTAMP_MS: pl.Datetime("ms"),
    exp.DType.TIMESTAMP_NS: pl.Datetime("ns"),
    exp.DType.BLOB: pl.Binary(),
    exp.DType.VARBINARY: pl.Binary(),
}


def target_type(tr: Translator, to: exp.DataType) -> pl.DataType:
    kind = to.this
    if kind == exp.DType.DECIMAL:
        params = [int(str(e.this.this if hasattr(e.this, "this") else e.this)) for e in
                  to.expressions]  # fmt: skip
        precision = params[0] if params else 18
        scale = params[1] if len(params) > 1 else (0 if params else 3)
        if not 1 <= precision <= 38 or not 0 <= scale <= precision:
            raise tr.error(f"invalid type {to.sql(dialect='duckdb')}")
        return pl.Decimal(precision, scale)
    if kind == exp.DType.ARRAY or kind == exp.DType.LIST:
        inner = to.expressions[0] if to.expressions else None
        if not isinstance(inner, exp.DataType):
            raise tr.error(f"unsupported type {to.sql(dialect='duckdb')}")
        return pl.List(target_type(tr, inner))
    dtype = _DTYPES.get(kind) if isinstance(kind, exp.DType) else None
    if dtype is None:
        raise tr.error(f"unsupported type {to.sql(dialect='duckdb')} in CAST")
    return dtype


@handles(exp.Cast, exp.TryCast)
def _cast(tr: Translator, node: exp.Expr) -> Typed:
    assert isinstance(node, (exp.Cast, exp.TryCast))
    target = target_type(tr, node.to)
    value = tr.translate(node.this)
    strict = not isinstance(node, exp.TryCast)
    try:
        return cast(value, target, strict=strict, guard=tr.guard)
    except ExpressionError as e:
        if not strict:  # TRY_CAST between types that never convert: NULL, as DuckDB
            return null_of(target)
        raise tr.error(str(e)) from None


@handles(exp.Typeof)
def _typeof(tr: Translator, node: exp.Expr) -> Typed:
    value = tr.translate(node.this)
    name = sql_name(value.dtype) if not value.is_null else "NULL"
    return Typed(pl.lit(name), pl.String(), name)
