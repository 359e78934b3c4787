"""UZO's SQL types: Polars dtypes named and combined as DuckDB names and combines them.

An expression is typed while it is compiled (the input schema is known), so
every operator picks its result type the way DuckDB does, casts its operands
explicitly, and refuses operand types DuckDB refuses, with DuckDB's names
(``INTEGER``, ``DECIMAL(15,2)``, ``TIMESTAMP WITH TIME ZONE``).

Rules (each checked against DuckDB by the differential test):

- integers: the wider operand type; a signed and an unsigned type meet in the
  signed type that holds both; an integer *literal* takes the other operand's
  integer type when its value fits (``tinyint_col + 1`` is TINYINT);
- decimals: an integer meets a decimal as DECIMAL(w, 0) (w = 3, 5, 10, 19 or 38 for
  8- to 64-bit); ``+ - %`` keep the larger scale, ``*`` adds the scales; the
  declared precision is always 38 (DuckDB tracks a narrower width: the values
  and scales are the same);
- floats: FLOAT meets integers and decimals as FLOAT, anything with DOUBLE is
  DOUBLE;
- HUGEINT (sums of integers) is DECIMAL(38,0): the Arrow type DuckDB exports it as.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import polars as pl

if TYPE_CHECKING:
    import decimal

MAX_PRECISION = 38
HUGEINT = pl.Decimal(MAX_PRECISION, 0)

Family = Literal[
    "null", "bool", "integer", "decimal", "float", "string", "date", "timestamp", "time",
    "interval", "list", "struct", "binary", "other",
]  # fmt: skip

_INT_NAMES: dict[type[pl.DataType], str] = {
    pl.Int8: "TINYINT",
    pl.Int16: "SMALLINT",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Int128: "HUGEINT",
    pl.UInt8: "UTINYINT",
    pl.UInt16: "USMALLINT",
    pl.UInt32: "UINTEGER",
    pl.UInt64: "UBIGINT",
}
_SIGNED: tuple[pl.DataType, ...] = (pl.Int8(), pl.Int16(), pl.Int32(), pl.Int64())
_UNSIGNED: tuple[pl.DataType, ...] = (pl.UInt8(), pl.UInt16(), pl.UInt32(), pl.UInt64())
_BITS = {pl.Int8: 8, pl.Int16: 16, pl.Int32: 32, pl.Int64: 64, pl.Int128: 128}
_UBITS = {pl.UInt8: 8, pl.UInt16: 16, pl.UInt32: 32, pl.UInt64: 64}
# decimal width of each integer type (DuckDB: TINYINT is DECIMAL(3,0), ...)
_INT_WIDTH = {8: 3, 16: 5, 32: 10, 64: 19, 128: 38}
# the wider type an integer operation is computed in, to detect overflow
WIDER: dict[type[pl.DataType], pl.DataType] = {
    pl.Int8: pl.Int32(),
    pl.Int16: pl.Int32(),
    pl.Int32: pl.Int64(),
    pl.Int64: pl.Int128(),
    pl.UInt8: pl.Int32(),
    pl.UInt16: pl.Int32(),
    pl.UInt32: pl.Int64(),
    pl.UInt64: pl.Int128(),
}


def family(dtype: pl.DataType) -> Family:
    if isinstance(dtype, pl.Null):
        return "null"
    if isinstance(dtype, pl.Boolean):
        return "bool"
    if dtype.is_integer():
        return "integer"
    if isinstance(dtype, pl.Decimal):
        return "decimal"
    if dtype.is_float():
        return "float"
    if isinstance(dtype, (pl.String, pl.Categorical, pl.Enum)):
        return "string"
    if isinstance(dtype, pl.Date):
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    if isinstance(dtype, pl.Time):
        return "time"
    if isinstance(dtype, pl.Duration):
        return "interval"
    if isinstance(dtype, (pl.List, pl.Array)):
        return "list"
    if isinstance(dtype, pl.Struct):
        return "struct"
    if isinstance(dtype, pl.Binary):
        return "binary"
    return "other"


def is_numeric(dtype: pl.DataType) -> bool:
    return family(dtype) in ("integer", "decimal", "float")


def sql_name(dtype: pl.DataType) -> str:
    """DuckDB's name of a type, for messages and the dialect reference."""
    name = _INT_NAMES.get(type(dtype))
    if name is not None:
        return name
    if isinstance(dtype, pl.Decimal):
        return f"DECIMAL({dtype.precision},{dtype.scale})"
    if isinstance(dtype, pl.Float32):
        return "FLOAT"
    if isinstance(dtype, pl.Float64):
        return "DOUBLE"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMP WITH TIME ZONE" if dtype.time_zone else "TIMESTAMP"
    if isinstance(dtype, (pl.List, pl.Array)):
        return f"{sql_name(_dtype(dtype.inner))}[]"
    simple = {
        pl.Null: "NULL",
        pl.Boolean: "BOOLEAN",
        pl.String: "VARCHAR",
        pl.Categorical: "VARCHAR",
        pl.Enum: "VARCHAR",
        pl.Date: "DATE",
        pl.Time: "TIME",
        pl.Duration: "INTERVAL",
        pl.Binary: "BLOB",
        pl.Struct: "STRUCT",
    }
    return simple.get(type(dtype), str(dtype))


def _dtype(dtype: Any) -> pl.DataType:
    """A dtype instance (Polars hands out classes for some, e.g. a list's inner type)."""
    value: pl.DataType = dtype() if isinstance(dtype, type) else dtype
    return value


def int_bits(dtype: pl.DataType) -> tuple[bool, int]:
    """(signed, bits) of an integer type."""
    kind: Any = type(dtype)
    if kind in _BITS:
        return True, _BITS[kind]
    return False, _UBITS[kind]


def int_type(signed: bool, bits: int) -> pl.DataType:
    if signed:
        return {8: pl.Int8(), 16: pl.Int16(), 32: pl.Int32(), 64: pl.Int64()}.get(bits, HUGEINT)
    return {8: pl.UInt8(), 16: pl.UInt16(), 32: pl.UInt32(), 64: pl.UInt64()}[bits]


def integer_supertype(a: pl.DataType, b: pl.DataType) -> pl.DataType:
    sa, ba = int_bits(a)
    sb, bb = int_bits(b)
    if sa == sb:
        return int_type(sa, max(ba, bb))
    signed_bits, unsigned_bits = (ba, bb) if sa else (bb, ba)
    bits = max(signed_bits, unsigned_bits * 2)
    return int_type(True, bits) if bits <= 64 else HUGEINT


def decimal_of(dtype: pl.DataType) -> pl.Decimal:
    """A numeric type as the decimal DuckDB converts it to when it meets a decimal."""
    if isinstance(dtype, pl.Decimal):
        return dtype
    if dtype.is_integer():
        _, bits = int_bits(dtype)
        return pl.Decimal(_INT_WIDTH.get(bits, MAX_PRECISION), 0)
    raise TypeError(f"{sql_name(dtype)} is not exact")


def literal_int_type(value: int) -> pl.DataType:
    """DuckDB's type of an integer literal: INTEGER, BIGINT or HUGEINT by value."""
    if -(2**31) <= value < 2**31:
        return pl.Int32()
    if -(2**63) <= value < 2**63:
        return pl.Int64()
    return HUGEINT


def fits(value: int, dtype: pl.DataType) -> bool:
    if isinstance(dtype, pl.Decimal):
        return bool(abs(value) < 10 ** (dtype.precision - (dtype.scale or 0)))
    signed, bits = int_bits(dtype)
    if signed:
        return bool(-(2 ** (bits - 1)) <= value < 2 ** (bits - 1))
    return bool(0 <= value < 2**bits)


def decimal_literal_type(value: decimal.Decimal) -> pl.Decimal | None:
    """DuckDB's type of ``0.06``: DECIMAL(3,2) (None past 38 digits: a DOUBLE then)."""
    sign_digits_exp = value.as_tuple()
    exponent = sign_digits_exp.exponent
    assert isinstance(exponent, int)
    scale = max(0, -exponent)
    integer_digits = max(0, len(sign_digits_exp.digits) + exponent)
    precision = max(1, integer_digits + scale)
    if precision > MAX_PRECISION:
        return None
    return pl.Decimal(precision, scale)


def numeric_supertype(
    a: pl.DataType, b: pl.DataType, *, a_literal: int | None = None, b_literal: int | None = None
) -> pl.DataType:
    """The type two numeric operands meet in (``*_literal``: an integer literal's value)."""
    fa, fb = family(a), family(b)
    if fa == "null":
        return b
    if fb == "null":
        return a
    if fa == "integer" and fb == "integer":
        if a_literal is not None and b_literal is None and fits(a_literal, b):
            return b
        if b_literal is not None and a_literal is None and fits(b_literal, a):
            return a
        return integer_supertype(a, b)
    if "float" in (fa, fb):
        if isinstance(a, pl.Float64) or isinstance(b, pl.Float64):
            return pl.Float64()
        return pl.Float32()
    # integers and decimals: DECIMAL with the larger scale
    da, db = decimal_of(a), decimal_of(b)
    if fa == "integer" and a_literal is not None:
        da = pl.Decimal(max(1, len(str(abs(a_literal)))), 0)
    if fb == "integer" and b_literal is not None:
        db = pl.Decimal(max(1, len(str(abs(b_literal)))), 0)
    scale = max(da.scale or 0, db.scale or 0)
    return pl.Decimal(MAX_PRECISION, scale)


def unit_of(dtype: pl.DataType) -> str:
    """The time unit of a timestamp type (``us`` by default)."""
    return dtype.time_unit if isinstance(dtype, pl.Datetime) else "us"


def temporal_supertype(a: pl.DataType, b: pl.DataType) -> pl.DataType | None:
    """DATE meets TIMESTAMP as TIMESTAMP; two timestamps as the one with a time zone."""
    fa, fb = family(a), family(b)
    if fa == fb == "date":
        return pl.Date()
    if {fa, fb} <= {"date", "timestamp"}:
        zone = next(
            (t.time_zone for t in (a, b) if isinstance(t, pl.Datetime) and t.time_zone), None
        )
        return pl.Datetime("us", zone)
    return None
