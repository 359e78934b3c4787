"""Result values of both systems as comparable Python objects, their type families, equality.

Both systems hand over Arrow arrays. Dates and timestamps become :class:`Day` and
:class:`Instant` (plain integers, so values outside Python's year range 1..9999 survive);
intervals/durations become :class:`Span`; everything else is ``to_pylist()``.

Equality (:func:`same_value`) is type-aware:

- NULL equals NULL (and nothing else);
- floats: both NaN, or exactly equal (``-0.0 == 0.0``), or within a relative
  :data:`FLOAT_TOLERANCE`; a float against an integer/decimal is compared the same way;
- integers and decimals are compared exactly as Decimals (``2.5 == 2.50``: the declared scale
  does not matter, the value does);
- a boolean only equals a boolean (Python's ``True == 1`` is not used);
- timestamps: aware ones as instants, naive ones as wall times, aware never equals naive;
  a DATE equals a naive TIMESTAMP at midnight of that day (the type difference is reported on
  its own, as a type mismatch);
- lists element-wise.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa

FLOAT_TOLERANCE = 1e-12  # relative
FLOAT32_TOLERANCE = 1e-6  # relative, when both answers are exact FLOAT values
_EPOCH = dt.datetime(1970, 1, 1)
_UNIT_TO_US = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}


@dataclass(frozen=True)
class Instant:
    """A timestamp: microseconds since the epoch (UTC for aware ones, wall time for naive)."""

    micros: int
    aware: bool

    def __repr__(self) -> str:
        try:
            text = (_EPOCH + dt.timedelta(microseconds=self.micros)).isoformat(sep=" ")
        except OverflowError:
            text = f"<{self.micros} us>"
        return text + ("+00" if self.aware else "")


@dataclass(frozen=True)
class Day:
    days: int  # since 1970-01-01

    def __repr__(self) -> str:
        try:
            return (dt.date(1970, 1, 1) + dt.timedelta(days=self.days)).isoformat()
        except OverflowError:
            return f"<day {self.days}>"


@dataclass(frozen=True)
class Span:
    """An interval: months, days and microseconds (a duration has months = days = 0)."""

    months: int
    days: int
    micros: int

    def total_micros(self) -> int | None:
        return self.days * 86_400_000_000 + self.micros if self.months == 0 else None

    def __repr__(self) -> str:
        parts = [f"{self.months} months"] if self.months else []
        parts += [f"{self.days} days"] if self.days else []
        if self.micros or not parts:
            parts.append(str(dt.timedelta(microseconds=self.micros)))
        return "<interval " + " ".join(parts) + ">"


def to_python(array: pa.Array | pa.ChunkedArray) -> list[Any]:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    t = array.type
    if pa.types.is_timestamp(t):
        scale = _UNIT_TO_US[t.unit]
        ints = array.cast(pa.int64()).to_pylist()
        return [
            None
            if v is None
            else Instant(v * scale if scale else v // 1000, aware=t.tz is not None)
            for v in ints
        ]
    if pa.types.is_date32(t):
        return [None if v is None else Day(v) for v in array.cast(pa.int32()).to_pylist()]
    if pa.types.is_date64(t):
        ints = array.cast(pa.int64()).to_pylist()
        return [None if v is None else Day(v // 86_400_000) for v in ints]
    if pa.types.is_duration(t):
        scale = _UNIT_TO_US[t.unit]
        ints = array.cast(pa.int64()).to_pylist()
        return [None if v is None else Span(0, 0, v * scale if scale else v // 1000) for v in ints]
    if t == pa.month_day_nano_interval():
        return [
            None if v is None else Span(v.months, v.days, v.nanoseconds // 1000)
            for v in array.to_pylist()
        ]
    try:
        return list(array.to_pylist())
    except (ValueError, OverflowError, pa.ArrowException):
        return [None if not s.is_valid else f"<unconvertible {s}>" for s in array]


# ------------------------------------------------------------------ type families

FAMILIES = ("int", "dec", "float", "str", "bool", "date", "ts", "tstz", "list", "interval", "null")

_DUCKDB_INTS = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}


def duckdb_family(type_text: str) -> str:
    t = type_text.upper()
    if t.endswith("]"):
        return "list"
    if t in _DUCKDB_INTS:
        return "int"
    if t.startswith("DECIMAL"):
        return "dec"
    if t in ("FLOAT", "DOUBLE"):
        return "float"
    if t == "VARCHAR":
        return "str"
    if t == "BOOLEAN":
        return "bool"
    if t == "DATE":
        return "date"
    if t == "TIMESTAMP WITH TIME ZONE":
        return "tstz"
    if t.startswith("TIMESTAMP"):
        return "ts"
    if t == "INTERVAL":
        return "interval"
    if t == '"NULL"' or t == "NULL":
        return "null"
    return t.lower()


def arrow_family(t: pa.DataType) -> str:
    checks = (
        (pa.types.is_integer, "int"),
        (pa.types.is_decimal, "dec"),
        (pa.types.is_floating, "float"),
        (
            lambda x: (
                pa.types.is_string(x) or pa.types.is_large_string(x) or pa.types.is_string_view(x)
            ),
            "str",
        ),
        (pa.types.is_boolean, "bool"),
        (pa.types.is_date, "date"),
        (lambda x: pa.types.is_timestamp(x) and x.tz is not None, "tstz"),
        (pa.types.is_timestamp, "ts"),
        (
            lambda x: (
                pa.types.is_list(x)
                or pa.types.is_large_list(x)
                or pa.types.is_list_view(x)
                or pa.types.is_fixed_size_list(x)
            ),
            "list",
        ),
        (lambda x: pa.types.is_duration(x) or x == pa.month_day_nano_interval(), "interval"),
        (pa.types.is_null, "null"),
    )
    for check, family in checks:
        if check(t):
            return family
    return str(t)


# ------------------------------------------------------------------ equality


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    if math.isinf(a) or math.isinf(b):
        return False
    tolerance = FLOAT_TOLERANCE
    if _single(a) and _single(b):  # two FLOAT results: single precision's own rounding
        tolerance = FLOAT32_TOLERANCE
    return abs(a - b) <= tolerance * max(abs(a), abs(b))


def _single(value: float) -> bool:
    with np.errstate(over="ignore"):  # a double beyond FLOAT's range is not a FLOAT
        return float(np.float32(value)) == value


def _number(v: Any) -> bool:
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


def same_value(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _number(a) and _number(b):
        if isinstance(a, float) or isinstance(b, float):
            try:
                return _close(float(a), float(b))
            except OverflowError:
                return False
        return Decimal(a) == Decimal(b)
    if isinstance(a, Day) and isinstance(b, Instant):
        a, b = b, a
    if isinstance(a, Instant) and isinstance(b, Day):
        return not a.aware and a.micros == b.days * 86_400_000_000
    if isinstance(a, Span) and isinstance(b, Span):
        return a == b or (a.total_micros() is not None and a.total_micros() == b.total_micros())
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is not type(b):
        return False
    return bool(a == b)


def first_difference(a: list[Any], b: list[Any]) -> int | None:
    """The index of the first differing row (len of the shorter when only the lengths differ)."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if not same_value(x, y):
            return i
    if len(a) != len(b):
        return min(len(a), len(b))
    return None


def show(value: Any, limit: int = 48) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
