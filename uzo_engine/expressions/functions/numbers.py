"""Numeric functions with DuckDB's result types (``floor(int)`` is DOUBLE, ``sign`` TINYINT...)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from sqlglot import exp

from uzo_engine.expressions.compiler import BOOL, Translator
from uzo_engine.expressions.registry import function
from uzo_engine.expressions.rounding import decimal_rescale, round_double
from uzo_engine.expressions.runtime import quiet_ufunc
from uzo_engine.expressions.sqltypes import HUGEINT, WIDER
from uzo_engine.expressions.typed import Typed, constant, null_of
from uzo_engine.expressions.unify import coerce

DOUBLE = pl.Float64()


def _num(tr: Translator, node: exp.Expr, key: str = "this") -> Typed:
    return tr.expect(tr.arg(node, key), ("integer", "decimal", "float"), f"{key} argument")


def _double(tr: Translator, node: exp.Expr, key: str = "this") -> Typed:
    value = _num(tr, node, key)
    return coerce(value, DOUBLE) if not value.is_null else null_of(DOUBLE)


def _places(tr: Translator, node: exp.Expr, key: str) -> int:
    child = node.args.get(key)
    if child is None:
        return 0
    value = tr.literal_value(child, "the number of decimal places")
    if not isinstance(value, int) or isinstance(value, bool):
        raise tr.error("the number of decimal places must be a whole number")
    return value


@function(
    "abs", signature="abs(x)", returns="type of x", category="numeric", nodes=(exp.Abs,),
    doc="Absolute value (an overflow error for the smallest integer).",
)  # fmt: skip
def _abs(tr: Translator, node: exp.Expr) -> Typed:
    x = _num(tr, node)
    if x.family == "integer":
        wide = WIDER[type(x.dtype)]
        result = x.expr.cast(wide).abs()
        if tr.guard is not None:
            result = pl.when(tr.guard).then(result)
        return Typed(result.cast(x.dtype, strict=True), x.dtype)
    return Typed(x.expr.abs(), x.dtype)


@function(
    "sign", signature="sign(x)", returns="TINYINT", category="numeric", nodes=(exp.Sign,),
    doc="-1, 0 or 1.",
)  # fmt: skip
def _sign(tr: Translator, node: exp.Expr) -> Typed:
    x = _num(tr, node)
    value = x.expr.cast(DOUBLE) if x.family == "decimal" else x.expr
    result: pl.Expr = (
        pl.when(value > 0).then(1).when(value < 0).then(-1).when(value.is_not_null()).then(0)
    )
    if x.family == "float":  # sign(NaN) is 0
        result = pl.when(value.is_nan()).then(0).otherwise(result)
    return Typed(result.cast(pl.Int8), pl.Int8())


def sql_round(x: Typed, places: int, guard: pl.Expr | None = None) -> Typed:
    """ROUND with DuckDB's result types: a decimal's scale becomes ``min(scale, places)``;
    an integer keeps its type (UTINYINT to UINTEGER become BIGINT, UBIGINT HUGEINT, as
    DuckDB has no unsigned ROUND) and rounds to tens or hundreds exactly, an overflow
    being an error."""
    dtype = x.dtype
    if x.family == "integer":
        result_type: pl.DataType = dtype
        if dtype in (pl.UInt8(), pl.UInt16(), pl.UInt32()):
            result_type = pl.Int64()
        elif dtype == pl.UInt64():
            result_type = HUGEINT
        if places >= 0:
            return Typed(x.expr.cast(result_type), result_type)
        rounded = decimal_rescale(x.expr.cast(HUGEINT), 0, places, guard=guard)
        if guard is not None:
            rounded = pl.when(guard).then(rounded)
        return Typed(rounded.cast(result_type, strict=True), result_type)
    if isinstance(dtype, pl.Decimal):
        scale = max(0, min(dtype.scale or 0, places))
        target = pl.Decimal(dtype.precision, scale)
        if places >= (dtype.scale or 0):
            return x
        rounded = decimal_rescale(x.expr, dtype.scale or 0, places, guard=guard)
        if guard is not None:
            rounded = pl.when(guard).then(rounded)
        return Typed(rounded.cast(target, strict=True), target)
    if dtype.is_float():
        return Typed(round_double(x.expr.cast(DOUBLE), places).cast(dtype), dtype)
    return x


@function(
    "round", signature="round(x[, places])", returns="type of x", category="numeric",
    nodes=(exp.Round,),
    doc="Rounded half away from zero: a decimal exactly (its scale becomes `places`), a"
    " double by its exact binary value (as DuckDB: round(2.675, 2) is 2.67).",
)  # fmt: skip
def _round(tr: Translator, node: exp.Expr) -> Typed:
    x = _num(tr, node)
    if x.is_null:
        return x
    return sql_round(x, _places(tr, node, "decimals"), tr.guard)


def _floor_ceil(tr: Translator, node: exp.Expr, up: bool) -> Typed:
    x = _num(tr, node)
    if x.is_null:
        return null_of(DOUBLE)
    if isinstance(x.dtype, pl.Decimal):
        target = pl.Decimal(x.dtype.precision, 0)
        rounded = decimal_rescale(x.expr, x.dtype.scale or 0, 0, "ceil" if up else "floor")
        return Typed(rounded.cast(target), target)
    value = x.expr.cast(DOUBLE) if x.family == "integer" else x.expr
    return Typed(
        value.ceil() if up else value.floor(), DOUBLE if x.family == "integer" else x.dtype
    )


@function(
    "floor", signature="floor(x)", returns="DOUBLE (DECIMAL(p,0) for a decimal)",
    category="numeric", nodes=(exp.Floor,), doc="Largest whole number not above x.",
)  # fmt: skip
def _floor(tr: Translator, node: exp.Expr) -> Typed:
    return _floor_ceil(tr, node, up=False)


@function(
    "ceil", signature="ceil(x)", returns="DOUBLE (DECIMAL(p,0) for a decimal)",
    category="numeric", nodes=(exp.Ceil,), aliases=("ceiling",),
    doc="Smallest whole number not below x.",
)  # fmt: skip
def _ceil(tr: Translator, node: exp.Expr) -> Typed:
    return _floor_ceil(tr, node, up=True)


@function(
    "trunc", signature="trunc(x[, places])", returns="type of x", category="numeric",
    nodes=(exp.Trunc,), doc="Rounded toward zero (to `places` decimals).",
)  # fmt: skip
def _trunc(tr: Translator, node: exp.Expr) -> Typed:
    x = _num(tr, node)
    places = _places(tr, node, "decimals")
    if x.is_null:
        return x
    if isinstance(x.dtype, pl.Decimal):
        scale = max(0, min(x.dtype.scale or 0, places))
        target = pl.Decimal(x.dtype.precision, scale)
        if scale >= (x.dtype.scale or 0):
            return x
        cut = decimal_rescale(x.expr, x.dtype.scale or 0, scale, "trunc")
        return Typed(cut.cast(target), target)
    if x.family == "integer":
        return x
    factor = 10.0**places
    scaled = x.expr * factor
    cut = pl.when(scaled < 0).then(scaled.ceil()).otherwise(scaled.floor()) / factor
    return Typed(cut.cast(x.dtype), x.dtype)


def _unary_double(name: str, node_type: type[exp.Expr], fn: str, doc: str,
                  aliases: tuple[str, ...] = ()) -> None:  # fmt: skip
    @function(
        name, signature=f"{name}(x)", returns="DOUBLE", category="numeric", doc=doc,
        nodes=(node_type,), aliases=aliases,
    )  # fmt: skip
    def impl(tr: Translator, node: exp.Expr) -> Typed:
        x = _double(tr, node)
        return Typed(getattr(x.expr, fn)(), DOUBLE)


_unary_double("sqrt", exp.Sqrt, "sqrt", "Square root (NaN below 0).")
_unary_double("cbrt", exp.Cbrt, "cbrt", "Cube root.")
_unary_double("exp", exp.Exp, "exp", "e to the power x.")
_unary_double("ln", exp.Ln, "log", "Natural logarithm (-inf at 0, NaN below).")


@function(
    "log", signature="log([base, ]x)", returns="DOUBLE", category="numeric", nodes=(exp.Log,),
    aliases=("log10", "log2"),
    doc="Logarithm base 10 (as DuckDB), or base `base`; log10 and log2 likewise.",
)  # fmt: skip
def _log(tr: Translator, node: exp.Expr) -> Typed:
    # C's log10 and log2 (NumPy's, exact at powers), not ln(x) / ln(base)
    if node.args.get("expression") is None:
        return Typed(quiet_ufunc(np.log10, DOUBLE, _double(tr, node).expr), DOUBLE)
    base = _double(tr, node, "this")
    x = _double(tr, node, "expression")
    if base.constant and base.value in (2.0, 10.0):
        ufunc = np.log2 if base.value == 2.0 else np.log10
        return Typed(quiet_ufunc(ufunc, DOUBLE, x.expr), DOUBLE)
    return Typed(x.expr.log() / base.expr.log(), DOUBLE)


@function(
    "power", signature="power(x, y)", returns="DOUBLE", category="numeric", nodes=(exp.Pow,),
    aliases=("pow",), doc="x to the power y; also `x ** y` and `x ^ y`.",
)  # fmt: skip
def _power(tr: Translator, node: exp.Expr) -> Typed:
    x, y = _double(tr, node, "this"), _double(tr, node, "expression")
    if x.null_constant or y.null_constant:
        return null_of(DOUBLE)
    return Typed(x.expr.pow(y.expr), DOUBLE)


@function(
    "pi", signature="pi()", returns="DOUBLE", category="numeric", nodes=(exp.Pi,),
    doc="π.",
)  # fmt: skip
def _pi(tr: Translator, node: exp.Expr) -> Typed:
    return constant(math.pi, DOUBLE)


def _float_test(name: str, node_types: tuple[type[exp.Expr], ...], test: str, doc: str) -> None:
    @function(
        name, signature=f"{name}(x)", returns="BOOLEAN", category="numeric", doc=doc,
        nodes=node_types,
    )  # fmt: skip
    def impl(tr: Translator, node: exp.Expr) -> Typed:
        arg = tr.arg(node) if node_types else tr.args(node)[0]
        x = tr.expect(arg, ("float", "integer", "decimal"), f"{name}'s argument")
        if x.family != "float":
            value = {"is_nan": False, "is_infinite": False, "is_finite": True}[test]
            return Typed(pl.when(x.expr.is_null()).then(None).otherwise(value), BOOL)
        return Typed(getattr(x.expr, test)(), BOOL)


_float_test("isnan", (exp.IsNan,), "is_nan", "x is NaN.")
_float_test("isinf", (exp.IsInf,), "is_infinite", "x is ±infinity.")
_float_test("isfinite", (), "is_finite", "x is neither infinite nor NaN.")
