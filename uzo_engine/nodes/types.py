"""Arrow/Polars type conversions, in one place.

Node configs name types as text (``int64``, ``float``, ``string``, ``date``,
``timestamp``, ``decimal(12,2)``, ...); this module turns that text into Polars
dtypes, and Polars schemas into the Arrow-typed :class:`ColumnInfo` the plan
reports.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING

import polars as pl

from uzo_engine.plan import ColumnInfo

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pyarrow as pa

_SIMPLE: dict[str, pl.DataType] = {
    "bool": pl.Boolean(),
    "boolean": pl.Boolean(),
    "int8": pl.Int8(),
    "tinyint": pl.Int8(),
    "int16": pl.Int16(),
    "smallint": pl.Int16(),
    "int32": pl.Int32(),
    "int": pl.Int32(),
    "integer": pl.Int32(),
    "int64": pl.Int64(),
    "bigint": pl.Int64(),
    "long": pl.Int64(),
    "uint8": pl.UInt8(),
    "uint16": pl.UInt16(),
    "uint32": pl.UInt32(),
    "uint64": pl.UInt64(),
    "float32": pl.Float32(),
    "float": pl.Float32(),
    "real": pl.Float32(),
    "float64": pl.Float64(),
    "double": pl.Float64(),
    "string": pl.String(),
    "str": pl.String(),
    "utf8": pl.String(),
    "text": pl.String(),
    "varchar": pl.String(),
    "char": pl.String(),
    "binary": pl.Binary(),
    "blob": pl.Binary(),
    "date": pl.Date(),
    "time": pl.Time(),
    "timestamp": pl.Datetime("us"),
    "datetime": pl.Datetime("us"),
    "timestamp[ms]": pl.Datetime("ms"),
    "timestamp[us]": pl.Datetime("us"),
    "timestamp[ns]": pl.Datetime("ns"),
    "timestamptz": pl.Datetime("us", "UTC"),
    "null": pl.Null(),
}

_DECIMAL = re.compile(r"^(?:decimal|numeric)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")


class UnknownTypeError(ValueError):
    """A type name in a config that UZO does not know."""


def parse_dtype(text: str) -> pl.DataType:
    """``"int64"`` -> ``pl.Int64``; raises :class:`UnknownTypeError` with the known names."""
    key = text.strip().lower()
    if key in _SIMPLE:
        return _SIMPLE[key]
    m = _DECIMAL.match(key)
    if m:
        precision = int(m.group(1)) if m.group(1) else 38
        scale = int(m.group(2)) if m.group(2) else 0
        return pl.Decimal(precision, scale)
    known = ", ".join(sorted(_SIMPLE))
    raise UnknownTypeError(f"unknown type {text!r}; use one of {known} or decimal(p,s)")


def is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric()


def is_temporal(dtype: pl.DataType) -> bool:
    return dtype.is_temporal()


def comparable(a: pl.DataType, b: pl.DataType) -> bool:
    """Whether values of the two types can be compared/joined without an explicit cast."""
    if a == b or isinstance(a, pl.Null) or isinstance(b, pl.Null):
        return True
    if a.is_numeric() and b.is_numeric():
        return True
    if isinstance(a, pl.Datetime) and isinstance(b, pl.Datetime):
        return True
    return isinstance(a, pl.Decimal) and isinstance(b, pl.Decimal)


def supertype(a: pl.DataType, b: pl.DataType) -> pl.DataType | None:
    """The common type of two columns for a union, or None when they do not unify."""
    if a == b:
        return a
    if isinstance(a, pl.Null):
        return b
    if isinstance(b, pl.Null):
        return a
    if a.is_numeric() and b.is_numeric():
        if a.is_float() or b.is_float() or a.is_decimal() or b.is_decimal():
            return pl.Float64()
        if a.is_signed_integer() or b.is_signed_integer():
            return pl.Int64()
        return pl.UInt64()
    if isinstance(a, pl.Datetime) and isinstance(b, pl.Datetime):
        return pl.Datetime("us", a.time_zone or b.time_zone)
    if {type(a), type(b)} == {pl.Date, pl.Datetime}:
        return pl.Datetime("us")
    return None


_ARROW_TYPE_TEXT: dict[pl.DataType, str] = {}


def arrow_type_text(dtype: pl.DataType) -> str:
    """The Arrow type of a Polars dtype rendered as text (``int64``, ``large_string``...)."""
    try:
        return _ARROW_TYPE_TEXT[dtype]
    except (KeyError, TypeError):  # not seen yet (or an unhashable dtype)
        pass
    try:
        text = str(pl.Series("x", [], dtype=dtype).to_arrow().type)
    except Exception:  # exotic types without an Arrow mapping
        return str(dtype)
    with contextlib.suppress(TypeError):
        if len(_ARROW_TYPE_TEXT) < 4096:  # a cache of the dtypes in use, bounded
            _ARROW_TYPE_TEXT[dtype] = text
    return text


def column_infos(schema: Mapping[str, pl.DataType]) -> tuple[ColumnInfo, ...]:
    return tuple(ColumnInfo(name=n, dtype=arrow_type_text(t)) for n, t in schema.items())


def arrow_column_infos(schema: pa.Schema) -> tuple[ColumnInfo, ...]:
    return tuple(ColumnInfo(name=f.name, dtype=str(f.type), nullable=f.nullable) for f in schema)


def to_polars(table: pa.Table) -> pl.DataFrame:
    """Arrow -> Polars (zero-copy where the types allow)."""
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def to_arrow(frame: pl.DataFrame) -> pa.Table:
    """Polars -> Arrow, with plain (not view) string types so DuckDB and writers accept it."""
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


def polars_schema(schema: pa.Schema) -> pl.Schema:
    return to_polars(schema.empty_table()).schema


def empty_frame(schema: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    return pl.LazyFrame(schema=dict(schema))


def cast_expr(expr: pl.Expr, dtype: pl.DataType, *, strict: bool = True) -> pl.Expr:
    """``CAST(expr AS dtype)``, parsing strings into dates/times (Polars 2 no longer casts them)."""

    def convert(e: pl.Expr, source: pl.DataType) -> pl.Expr:
        if isinstance(source, pl.String):
            if isinstance(dtype, pl.Date):
                return e.str.to_date(strict=strict)
            if isinstance(dtype, pl.Datetime):
                return e.str.to_datetime(
                    time_unit=dtype.time_unit, time_zone=dtype.time_zone, strict=strict
                )
            if isinstance(dtype, pl.Time):
                return e.str.to_time(strict=strict)
            if isinstance(dtype, pl.Boolean):
                words = ["true", "t", "1", "yes", "false", "f", "0", "no"]
                flags = [True, True, True, True, False, False, False, False]
                lowered = e.str.strip_chars().str.to_lowercase()
                if strict:  # an unknown word fails like any other bad value
                    return lowered.replace_strict(words, flags, return_dtype=pl.Boolean)
                return lowered.replace_strict(words, flags, default=None, return_dtype=pl.Boolean)
        if source.is_float() and dtype.is_integer():  # SQL rounds (half to even), not truncates
            return e.round(0).cast(dtype, strict=strict)
        return e.cast(dtype, strict=strict)

    return expr.pipe_with_dtype(convert)


def dtype_text(dtype: pl.DataType) -> str:
    """The config type name of a Polars dtype (inverse of :func:`parse_dtype`)."""
    if isinstance(dtype, pl.Decimal):
        return f"decimal({dtype.precision},{dtype.scale})"
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            return "timestamptz"
        return f"timestamp[{dtype.time_unit}]"
    for name, candidate in _SIMPLE.items():
        if candidate == dtype and not isinstance(candidate, pl.Datetime):
            return name
    raise UnknownTypeError(f"type {dtype} has no UZO type name")
