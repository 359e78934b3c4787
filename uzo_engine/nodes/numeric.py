"""Numeric semantics of UZO expressions: literals, arithmetic and ROUND like DuckDB.

The rules are listed in :mod:`uzo_engine.nodes.expressions`. The operand types of
an operator are only known when a plan is resolved, so the operators that depend on
them are built with ``pl.pipe_with_dtype`` (it runs while Polars plans, not per row).
"""

from __future__ import annotations

import decimal
import re
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

Number = int | float | decimal.Decimal

MAX_PRECISION = 38
_EXACT_POWERS = 22  # 10**n is an exact double up to n = 22
_SPLIT = 134217729.0  # 2**27 + 1: Veltkamp splitting of a double into two halves


def parse_number(text: str) -> Number:
    """A numeric SQL literal: ``12`` int, ``0.06`` Decimal, ``1e3`` float (as DuckDB)."""
    if re.fullmatch(r"\d+", text):
        return int(text)
    if re.fullmatch(r"\d*\.\d*", text) and text != ".":
        value = decimal.Decimal(text)
        if decimal_dtype(value) is not None:
            return value
    return float(text)


def decimal_dtype(value: decimal.Decimal) -> pl.Decimal | None:
    """DuckDB's type of a decimal literal (``0.06`` is DECIMAL(3,2)); None past 38 digits."""
    sign_digits_exp = value.as_tuple()
    exponent = sign_digits_exp.exponent
    assert isinstance(exponent, int)
    scale = max(0, -exponent)
    integer_digits = max(0, len(sign_digits_exp.digits) + exponent)
    precision = max(1, integer_digits + scale)
    if precision > MAX_PRECISION:
        return None
    return pl.Decimal(precision, scale)


def number_literal(value: Number) -> pl.Expr:
    if isinstance(value, decimal.Decimal):
        return pl.lit(value, dtype=decimal_dtype(value))
    return pl.lit(value)


def _is_decimal(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.Decimal)


def _binary(
    a: pl.Expr, b: pl.Expr, fn: Callable[[pl.Expr, pl.DataType, pl.Expr, pl.DataType], pl.Expr]
) -> pl.Expr:
    def combine(inputs: Sequence[tuple[pl.Expr, pl.DataType]]) -> pl.Expr:
        (ea, ta), (eb, tb) = inputs
        return fn(ea, ta, eb, tb)

    return pl.pipe_with_dtype([a, b], combine)


def multiply(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """``a * b``: decimal x decimal keeps the sum of the scales (Polars keeps the larger)."""

    def mul(ea: pl.Expr, ta: pl.DataType, eb: pl.Expr, tb: pl.DataType) -> pl.Expr:
        if isinstance(ta, pl.Decimal) and isinstance(tb, pl.Decimal):
            scale = ta.scale + tb.scale
            if scale > MAX_PRECISION:
                return ea.cast(pl.Float64) * eb.cast(pl.Float64)
            # Polars computes a*b at scale max(sa, sb) = sa + sb: exact, nothing rounded
            return ea.cast(pl.Decimal(MAX_PRECISION, scale)) * eb
        return ea * eb

    return _binary(a, b, mul)


def _to_double(
    op: Callable[[pl.Expr, pl.Expr], pl.Expr],
) -> Callable[[pl.Expr, pl.DataType, pl.Expr, pl.DataType], pl.Expr]:
    def apply(ea: pl.Expr, ta: pl.DataType, eb: pl.Expr, tb: pl.DataType) -> pl.Expr:
        if _is_decimal(ta) or _is_decimal(tb):
            return op(ea.cast(pl.Float64), eb.cast(pl.Float64))
        return op(ea, eb)

    return apply


def divide(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """``a / b`` is a double, decimals included (as DuckDB)."""
    return _binary(a, b, _to_double(lambda x, y: x / y))


def int_divide(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """``a // b`` truncates toward zero; decimal operands are divided as doubles."""
    return _binary(a, b, _to_double(lambda x, y: x.truncdiv(y)))


def is_in(subject: pl.Expr, values: Sequence[object]) -> pl.Expr:
    """``subject IN (values)``: the constants take the subject's numeric kind."""

    def check(e: pl.Expr, dtype: pl.DataType) -> pl.Expr:
        items = list(values)
        numbers = [v for v in items if isinstance(v, (int, float, decimal.Decimal))]
        if dtype.is_float() and numbers:
            items = [float(v) if isinstance(v, decimal.Decimal) else v for v in items]
        elif (dtype.is_integer() or _is_decimal(dtype)) and any(
            isinstance(v, (float, decimal.Decimal)) for v in numbers
        ):
            exact = [v for v in numbers if not isinstance(v, float)]
            if len(exact) == len(numbers):  # all exact: compare as decimals
                scale = max([*(_scale(v) for v in exact), *_dtype_scale(dtype)])
                target = pl.Decimal(MAX_PRECISION, scale)
                series = pl.Series([decimal.Decimal(v) for v in exact], dtype=target)
                return e.cast(target).is_in(series.implode())
            e = e.cast(pl.Float64)
            items = [float(v) for v in numbers]
        return e.is_in(pl.Series(items).implode())

    return subject.pipe_with_dtype(check)


def _scale(value: int | decimal.Decimal) -> int:
    if isinstance(value, int):
        return 0
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _dtype_scale(dtype: pl.DataType) -> list[int]:
    return [dtype.scale] if isinstance(dtype, pl.Decimal) else []


def _split(value: float) -> tuple[float, float]:
    t = value * _SPLIT
    hi = t - (t - value)
    return hi, value - hi


def round_double(x: pl.Expr, places: int) -> pl.Expr:
    """ROUND of a double like DuckDB: the exact binary value rounded, ties away from zero.

    Measured against DuckDB 2.0: its answers are those of the exact binary value
    (``ROUND(2.675, 2)`` is 2.67, ``ROUND(0.125, 2)`` is 0.13), then ``r / 10**n``.

    ``x * 10**places`` is rounded by the multiplication itself (980.5 * 0.01 is
    9.80499999999999971..., times 100 gives exactly 980.5); the exact error of
    that product (Dekker's two-product) tells on which side of a tie x really is.
    """
    if places < 0:
        m = 10.0 ** (-places)
        scaled = (x / (x * 0.0 + m)).round(0, mode="half_away_from_zero") * m
        return pl.when(x.is_finite()).then(scaled).otherwise(x)
    if places > _EXACT_POWERS:
        return x
    p = 10.0**places
    y = x * p
    away = y.round(0, mode="half_away_from_zero")
    toward = y.abs().floor() * y.sign()
    t = x * _SPLIT
    xh = t - (t - x)
    xl = x - xh
    ph, pl_ = _split(p)
    error = ((xh * ph - y) + xh * pl_ + xl * ph) + xl * pl_  # x*p == y + error exactly
    tie = (y.abs() - y.abs().floor()) == 0.5
    rounded = pl.when(tie & (error * y.sign() < 0)).then(toward).otherwise(away)
    # Polars multiplies by the reciprocal when dividing by a scalar (3 / 10 would be
    # 0.30000000000000004): divide by a column holding p to get the correctly rounded
    # quotient, as DuckDB's round(x * p) / p
    done = rounded / (rounded * 0.0 + p)
    return pl.when(done.is_finite()).then(done).otherwise(x)


def sql_round(x: pl.Expr, places: int) -> pl.Expr:
    """ROUND(x, places) with DuckDB's result types (decimal scale becomes ``places``)."""

    def apply(e: pl.Expr, dtype: pl.DataType) -> pl.Expr:
        if isinstance(dtype, pl.Decimal):
            scale = max(0, min(dtype.scale, places))
            if places < 0:
                rounded = round_double(e.cast(pl.Float64), places)
                return rounded.cast(pl.Decimal(dtype.precision, 0))
            if places >= dtype.scale:
                return e
            return e.round(places, mode="half_away_from_zero").cast(
                pl.Decimal(dtype.precision, scale)
            )
        if dtype.is_float():
            return round_double(e.cast(pl.Float64), places).cast(dtype)
        if dtype.is_integer():
            if places >= 0:
                return e
            return round_double(e.cast(pl.Float64), places).cast(dtype)
        return e.round(places, mode="half_away_from_zero")

    return x.pipe_with_dtype(apply)
