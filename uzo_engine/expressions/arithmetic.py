"""Arithmetic with DuckDB's result types, overflow errors and date arithmetic.

- ``+ - *`` on integers are computed one size wider and cast back strictly, so an
  overflow is an error ("value 4294967294 is out of range for INTEGER"), never a
  wrapped number; unary minus likewise.
- ``/`` is DOUBLE (FLOAT for two FLOATs); ``x / 0`` is ±inf or NaN, as DuckDB.
- ``//`` truncates integers toward zero; on decimals and floats it is DuckDB's
  plain division (``5.5 // 2`` is 2.75). ``%`` takes the dividend's sign; on
  floats it is ``fmod``. An integer or decimal ``//`` or ``%`` by zero is an error.
- decimals: ``+ - %`` keep the larger scale, ``*`` adds the scales (a DOUBLE past 38).
- dates: ``date ± integer`` is a DATE, ``date - date`` a BIGINT of days,
  ``date ± INTERVAL`` a TIMESTAMP, ``timestamp - timestamp`` an INTERVAL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from uzo_engine.expressions.runtime import fail_if, quiet_ufunc
from uzo_engine.expressions.sqltypes import (
    HUGEINT,
    MAX_PRECISION,
    WIDER,
    family,
    is_numeric,
    sql_name,
)
from uzo_engine.expressions.typed import ExpressionError, Text, Typed, null_of
from uzo_engine.expressions.unify import coerce, common_type

if TYPE_CHECKING:
    from collections.abc import Callable

_OP_NAMES = {"+": "addition", "-": "subtraction", "*": "multiplication"}


@dataclass(frozen=True)
class Interval:
    """An INTERVAL literal: months and microseconds (DuckDB keeps months apart)."""

    months: int = 0
    days: int = 0
    micros: int = 0

    def offset(self, sign: int) -> str:
        parts = []
        if self.months:
            parts.append(f"{sign * self.months}mo")
        if self.days:
            parts.append(f"{sign * self.days}d")
        if self.micros:
            parts.append(f"{sign * self.micros}us")
        return "".join(parts) or "0us"


_DAY_COUNTS = (pl.Int8(), pl.Int16(), pl.Int32(), pl.UInt8(), pl.UInt16())  # become INTEGER


def _checked_int(
    a: pl.Expr, b: pl.Expr, dtype: pl.DataType, op: Callable[[pl.Expr, pl.Expr], pl.Expr],
    guard: pl.Expr | None,
) -> pl.Expr:  # fmt: skip
    wide = WIDER[type(dtype)]
    result = op(a.cast(wide), b.cast(wide))
    if guard is not None:
        result = pl.when(guard).then(result)
    return result.cast(dtype, strict=True)


def _decimal_mul(a: Typed, b: Typed) -> Typed:
    assert isinstance(a.dtype, pl.Decimal)
    assert isinstance(b.dtype, pl.Decimal)
    scale = (a.dtype.scale or 0) + (b.dtype.scale or 0)
    if scale > MAX_PRECISION:
        return Typed(a.expr.cast(pl.Float64) * b.expr.cast(pl.Float64), pl.Float64())
    dtype = pl.Decimal(MAX_PRECISION, scale)
    # Polars keeps the larger scale: with one side at scale sa+sb nothing is rounded
    return Typed((a.expr.cast(dtype) * b.expr).cast(dtype), dtype)


def _zero_checked(a: Typed, b: Typed, guard: pl.Expr | None, what: Text) -> pl.Expr:
    """The divisor; an error where it is 0 for a row in scope with a dividend (NULL // 0 is
    NULL), and NULL in the rows out of scope (Polars itself fails on a decimal zero)."""
    zero = b.expr == 0
    bad = zero & a.expr.is_not_null()
    if guard is not None:
        bad = bad & guard
    checked = fail_if(b.expr, bad, b.dtype, f"division by zero in {what}")
    return pl.when(zero).then(None).otherwise(checked)


def _hugeint(op: str, a: Typed, b: Typed, guard: pl.Expr | None, what: Text) -> Typed:
    """Integers that meet in HUGEINT (UBIGINT with a signed type): integer arithmetic in 128
    bits, held as DECIMAL(38,0)."""
    x, y = a.expr.cast(pl.Int128), b.expr.cast(pl.Int128)
    if op in ("//", "%"):
        y = _zero_checked(Typed(x, pl.Int128()), Typed(y, pl.Int128()), guard, what)
    result = {
        "+": lambda: x + y,
        "-": lambda: x - y,
        "*": lambda: x * y,
        "//": lambda: x.truncdiv(y),
        "%": lambda: (
            pl.when(x < 0)
            .then(pl.lit(0, dtype=pl.Int128) - (x.abs() % y.abs()))
            .otherwise(x.abs() % y.abs())
        ),
    }[op]()
    return Typed(result.cast(HUGEINT, strict=True), HUGEINT)


def numeric(op: str, a: Typed, b: Typed, guard: pl.Expr | None, what: Text) -> Typed:
    """``a op b`` for numbers (``op`` one of ``+ - * / // %``)."""
    if a.is_null and b.is_null:
        return null_of(pl.Int32())
    if op == "/":
        # DOUBLE, unless a FLOAT meets integers, decimals or FLOATs (then FLOAT, as DuckDB)
        floats = [t.dtype for t in (a, b) if t.family == "float"]
        dtype: pl.DataType = (
            pl.Float32()
            if floats and all(isinstance(f, pl.Float32) for f in floats)
            else pl.Float64()
        )
        x, y = coerce(a, dtype), coerce(b, dtype)
        return Typed(x.expr / y.expr, dtype)
    dtype = common_type([a, b], what)
    if dtype == HUGEINT and a.family == b.family == "integer":
        return _hugeint(op, a, b, guard, what)
    x, y = coerce(a, dtype), coerce(b, dtype)
    fam = family(dtype)
    if op == "*" and fam == "decimal":
        ad = a if a.family == "decimal" else coerce(a, pl.Decimal(MAX_PRECISION, 0))
        bd = b if b.family == "decimal" else coerce(b, pl.Decimal(MAX_PRECISION, 0))
        return _decimal_mul(ad, bd)
    if op in ("+", "-", "*"):
        fn: Callable[[pl.Expr, pl.Expr], pl.Expr] = {
            "+": lambda p, q: p + q,
            "-": lambda p, q: p - q,
            "*": lambda p, q: p * q,
        }[op]
        if fam == "integer":
            return Typed(_checked_int(x.expr, y.expr, dtype, fn, guard), dtype)
        return Typed(fn(x.expr, y.expr).cast(dtype), dtype)
    if op == "//":
        if fam == "integer":
            divisor = _zero_checked(x, y, guard, what)
            return Typed(_checked_int(x.expr, divisor, dtype, lambda p, q: p.truncdiv(q),
                                      guard), dtype)  # fmt: skip
        if fam == "decimal":
            divisor = _zero_checked(x, y, guard, what)
            return Typed(x.expr.cast(pl.Float64) / divisor.cast(pl.Float64), pl.Float64())
        divisor = _zero_checked(x, y, guard, what)  # DuckDB refuses a float // 0 too
        return Typed(x.expr / divisor, dtype)
    if op == "%":
        if fam == "float":
            # C's fmod (exact), NaN for a zero divisor as DuckDB
            return Typed(quiet_ufunc(np.fmod, dtype, x.expr, y.expr), dtype)
        divisor = _zero_checked(x, y, guard, what)
        left, right = x.expr, divisor
        zero: pl.Expr = pl.lit(0)
        if fam == "integer":  # abs(INT_MIN) does not fit: compute one size wider
            wide = WIDER[type(dtype)]
            left, right, zero = left.cast(wide), right.cast(wide), pl.lit(0, dtype=wide)
        magnitude = left.abs() % right.abs()
        result = pl.when(left < 0).then(zero - magnitude).otherwise(magnitude)
        return Typed(result.cast(dtype), dtype)
    raise ExpressionError(f"unknown operator {op}")


def negate(a: Typed, guard: pl.Expr | None) -> Typed:
    if a.is_null:
        return a
    if not is_numeric(a.dtype) and a.family != "interval":
        raise ExpressionError(f"cannot negate a {sql_name(a.dtype)}")
    if a.family == "integer":
        if a.constant and a.int_literal:
            return Typed(pl.lit(-a.value, dtype=a.dtype), a.dtype, -a.value, int_literal=True)
        wide = WIDER[type(a.dtype)]
        result = pl.lit(0, dtype=wide) - a.expr.cast(wide)  # Polars has no Int128 negation
        if guard is not None:
            result = pl.when(guard).then(result)
        return Typed(result.cast(a.dtype, strict=True), a.dtype)
    if a.constant and a.value is not None:
        return Typed(-a.expr, a.dtype, -a.value)
    return Typed(-a.expr, a.dtype)


def temporal(op: str, a: Typed, b: Typed, interval: Interval | None, what: Text) -> Typed:
    """Date and timestamp arithmetic (``interval``: b is an INTERVAL literal)."""
    fa, fb = a.family, b.family
    sign = 1 if op == "+" else -1
    if interval is not None and fa in ("date", "timestamp"):
        dtype = a.dtype if fa == "timestamp" else pl.Datetime("us")
        base = a.expr if fa == "timestamp" else a.expr.cast(pl.Datetime("us"))
        return Typed(base.dt.offset_by(interval.offset(sign)), dtype)
    if interval is not None and fb in ("date", "timestamp") and op == "+":
        return temporal("+", b, a, interval, what)
    if (fa == "date" and fb == "integer") or (fb == "date" and fa == "integer" and op == "+"):
        day, days = (a, b) if fa == "date" else (b, a)
        if days.dtype not in _DAY_COUNTS:  # DuckDB adds INTEGER days only
            raise ExpressionError(
                f"{what}: a date {op} {sql_name(days.dtype)}: the days must be an INTEGER"
                " (CAST them)"
            )
        return Typed(day.expr + pl.duration(days=days.expr) * sign, pl.Date())
    if op == "-" and fa == fb == "date":
        return Typed((a.expr - b.expr).dt.total_days().cast(pl.Int64), pl.Int64())
    if op == "-" and {fa, fb} <= {"date", "timestamp"}:
        target = common_type([a, b], what)
        x, y = coerce(a, target), coerce(b, target)
        return Typed(x.expr - y.expr, pl.Duration("us"))
    if fa in ("date", "timestamp") and fb == "interval":
        dtype = a.dtype if fa == "timestamp" else pl.Datetime("us")
        base = a.expr if fa == "timestamp" else a.expr.cast(pl.Datetime("us"))
        return Typed(base + b.expr if op == "+" else base - b.expr, dtype)
    raise ExpressionError(f"{what}: no {op} between {sql_name(a.dtype)} and {sql_name(b.dtype)}")
