"""Errors an expression raises while it runs, as DuckDB raises them.

Polars has no way to raise from inside a plan except a failing strict cast, and
it wraps integer arithmetic instead of failing. So:

- integer arithmetic is computed one size wider and strict-cast back: a result
  that does not fit fails the cast (``conversion from `i64` to `i32` failed ...
  [4294967294]``), which :func:`explain` words as DuckDB would;
- division by zero is checked by :func:`fail_if`, a batch function that raises
  :class:`ExpressionRuntimeError` naming the expression when any row in scope
  divides by zero (and returns the values untouched otherwise).

Rows outside the scope of a conditional branch (``CASE``, ``IF``, ``COALESCE``)
are masked before either check, so ``IF(q = 0, NULL, a // q)`` does not fail.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import polars as pl

from uzo_engine.expressions.sqltypes import sql_name


class ExpressionRuntimeError(ValueError):
    """An expression failed on the data (division by zero...): the message says where."""


def fail_if(
    value: pl.Expr, bad: pl.Expr, dtype: pl.DataType, message: str, sample: pl.Expr | None = None
) -> pl.Expr:
    """``value`` unchanged, or :class:`ExpressionRuntimeError` when ``bad`` holds for a row."""

    def check(batch: pl.Series) -> pl.Series:
        flags = batch.struct.field("bad").fill_null(False)
        if flags.any():
            example = ""
            if sample is not None:
                shown = batch.struct.field("sample").filter(flags)
                example = f" (e.g. {shown[0]!r})" if len(shown) else ""
            raise ExpressionRuntimeError(f"{message}{example}")
        return batch.struct.field("value")

    fields = {"value": value, "bad": bad}
    if sample is not None:
        fields["sample"] = sample
    combined: pl.Expr = pl.struct(*(e.alias(n) for n, e in fields.items()))
    return combined.map_batches(check, return_dtype=dtype)


def quiet_ufunc(ufunc: Any, dtype: pl.DataType, *args: pl.Expr) -> pl.Expr:
    """A NumPy ufunc over expressions (nulls kept), without the RuntimeWarnings NumPy
    prints for log10(0) or fmod(x, 0): their -inf and NaN are the SQL answers."""

    def apply(batch: pl.Series) -> pl.Series:
        columns = [batch.struct.field(f"a{i}") for i in range(len(args))]
        with np.errstate(all="ignore"):
            result: pl.Series = ufunc(*columns)
        return result

    packed = pl.struct(*(a.alias(f"a{i}") for i, a in enumerate(args)))
    return packed.map_batches(apply, return_dtype=dtype)


_POLARS_NAMES = {
    "i8": pl.Int8(),
    "i16": pl.Int16(),
    "i32": pl.Int32(),
    "i64": pl.Int64(),
    "i128": pl.Int128(),
    "u8": pl.UInt8(),
    "u16": pl.UInt16(),
    "u32": pl.UInt32(),
    "u64": pl.UInt64(),
    "f32": pl.Float32(),
    "f64": pl.Float64(),
    "str": pl.String(),
    "date": pl.Date(),
}
_CONVERSION = re.compile(
    r"conversion from `(?P<src>[^`]+)` to `(?P<dst>[^`]+)` failed in column '(?P<col>[^']*)' "
    r"for (?P<bad>\d+) out of (?P<total>\d+) values: \[(?P<values>.*?)\]"
)


def _type_text(polars_name: str) -> str:
    dtype = _POLARS_NAMES.get(polars_name)
    if dtype is not None:
        return sql_name(dtype)
    if polars_name.startswith("decimal"):
        return polars_name.upper().replace("[", "(").replace("]", ")")
    return polars_name


def explain(error: BaseException) -> str | None:
    """A failed strict cast (an overflow, a value that does not convert) in DuckDB's words."""
    text = str(error)
    if isinstance(error, ExpressionRuntimeError):
        return text.splitlines()[0]
    m = _CONVERSION.search(text)
    if m is None:
        return None
    value = m.group("values").split(", ")[0]
    target = _type_text(m.group("dst"))
    bad, total = m.group("bad"), m.group("total")
    if m.group("src") == "str":
        return f"could not convert string {value} to {target} ({bad} of {total} values)"
    return f"value {value} is out of range for {target} ({bad} of {total} values)"
