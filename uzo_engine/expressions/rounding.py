"""ROUND of a double as DuckDB rounds it: the exact binary value, ties away from zero."""

from __future__ import annotations

import decimal as _decimal

import polars as pl

from uzo_engine.expressions.runtime import fail_if

_EXACT_POWERS = 22  # 10**n is an exact double up to n = 22
_SPLIT = 134217729.0  # 2**27 + 1: Veltkamp splitting of a double into two halves


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


def decimal_rescale(
    e: pl.Expr, scale: int, places: int, mode: str = "half_away", guard: pl.Expr | None = None
) -> pl.Expr:
    """A DECIMAL at ``scale`` rounded to ``places`` decimals, exactly and without overflow.

    Polars' rescaling cast rounds half to even and its ``round`` overflows next to 38
    digits, so the digits to drop are taken apart: ``rest = |e| mod 10**-places`` (small),
    ``|e| - rest`` is exact at ``places``, and the mode decides whether to add one step:
    ``half_away`` (DuckDB's ROUND and CAST), ``floor``, ``ceil`` or ``trunc``.
    Negative ``places`` round to tens, hundreds...: the result is DECIMAL(38, 0).
    Returns DECIMAL(38, max(places, 0)).
    """
    target = pl.Decimal(38, max(places, 0))
    source = pl.Decimal(38, scale)
    if places < 0 and scale - places >= 38:  # the step does not fit in 38 digits
        zero = pl.when(e.is_not_null()).then(pl.lit(0, dtype=pl.Int64)).cast(target)
        if scale - places > 38:  # nothing reaches half of it
            return zero
        half = pl.lit(_decimal.Decimal(5).scaleb(37 - scale), dtype=source)
        bad = e.abs() >= half  # rounds to 10**38: more than 38 digits
        if guard is not None:
            bad = bad & guard
        return fail_if(zero, bad, target, "Overflow in ROUND of DECIMAL", e)
    if places < 0:
        step_text = "1" + "0" * (-places)
    else:
        step_text = "1" if places == 0 else "0." + "0" * (places - 1) + "1"
    step = pl.lit(_decimal.Decimal(step_text), dtype=source)
    magnitude = e.abs()
    rest = magnitude % step
    kept = (magnitude - rest).cast(target)  # exact: nothing left to round
    one = pl.lit(_decimal.Decimal(step_text), dtype=target)
    negative = e < 0
    if mode == "half_away":
        bigger = pl.when(rest * 2 >= step).then(kept + one).otherwise(kept)
    elif mode == "floor":
        bigger = pl.when(negative & (rest > 0)).then(kept + one).otherwise(kept)
    elif mode == "ceil":
        bigger = pl.when(~negative & (rest > 0)).then(kept + one).otherwise(kept)
    else:  # trunc
        bigger = kept
    zero = pl.lit(0, dtype=pl.Int64).cast(target)
    return pl.when(negative).then(zero - bigger).otherwise(bigger).cast(target)
