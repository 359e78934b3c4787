"""SQL <-> Arrow types, in one place for the whole SQL family.

``to_arrow`` maps a reflected SQLAlchemy column type to the Arrow type a read
produces; ``to_sql`` maps an Arrow type to the SQLAlchemy type a write creates a
table with; ``column_converter`` adapts the Python values a DBAPI driver returns
to what ``pyarrow.array`` accepts for that Arrow type.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlalchemy import types as sat

if TYPE_CHECKING:
    from collections.abc import Callable

# Dialects whose INTEGER is 64-bit (SQLite's INTEGER holds any 64-bit value).
_WIDE_INTEGER_DIALECTS = frozenset({"sqlite"})


def to_arrow(sql_type: sat.TypeEngine[Any], dialect: str = "") -> pa.DataType:
    """The Arrow type a column of ``sql_type`` is read as."""
    t = sql_type
    if isinstance(t, sat.Boolean):
        return pa.bool_()
    if isinstance(t, sat.BigInteger):
        return pa.int64()
    if isinstance(t, sat.SmallInteger):
        return pa.int16()
    if isinstance(t, sat.Integer):
        return pa.int64() if dialect in _WIDE_INTEGER_DIALECTS else pa.int32()
    if isinstance(t, sat.Float):  # Float before Numeric: Float subclasses Numeric
        if isinstance(t, sat.REAL) or (t.precision is not None and t.precision <= 24):
            return pa.float32()
        return pa.float64()
    if isinstance(t, sat.Numeric):
        if t.precision is not None and 0 < t.precision <= 38:
            return pa.decimal128(t.precision, t.scale or 0)
        return pa.string()  # unconstrained NUMERIC: exact as text
    if isinstance(t, sat.DateTime):
        return pa.timestamp("us", tz="UTC") if t.timezone else pa.timestamp("us")
    if isinstance(t, sat.Date):
        return pa.date32()
    if isinstance(t, sat.Time):
        return pa.time64("us")
    if isinstance(t, sat.Interval):
        return pa.duration("us")
    if isinstance(t, sat._Binary):
        return pa.binary()
    if isinstance(t, sat.ARRAY):
        return pa.list_(to_arrow(t.item_type, dialect))
    # String, Text, Enum, Uuid, JSON and anything unknown: text
    return pa.string()


def to_sql(arrow_type: pa.DataType, *, key: bool = False) -> sat.TypeEngine[Any]:
    """The SQL type a column of ``arrow_type`` is created with.

    ``key`` columns get a bounded VARCHAR instead of TEXT, because some
    databases (MySQL) cannot index TEXT.
    """
    t = arrow_type
    if pa.types.is_boolean(t):
        return sat.Boolean()
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return sat.SmallInteger()
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return sat.Integer()
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return sat.BigInteger()
    if pa.types.is_uint64(t):
        return sat.Numeric(20, 0)
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return sat.REAL()
    if pa.types.is_floating(t):
        return sat.Double()
    if pa.types.is_decimal(t):
        return sat.Numeric(t.precision, t.scale)
    if pa.types.is_timestamp(t):
        return sat.DateTime(timezone=t.tz is not None)
    if pa.types.is_date(t):
        return sat.Date()
    if pa.types.is_time(t):
        return sat.Time()
    if pa.types.is_duration(t):
        return sat.Interval()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return sat.LargeBinary()
    if pa.types.is_nested(t):
        return sat.JSON()
    return sat.String(255) if key else sat.Text()


def _to_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, sort_keys=True)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def column_converter(arrow_type: pa.DataType) -> Callable[[list[Any]], pa.Array]:
    """A function turning one column of DBAPI values into an Arrow array."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return lambda values: pa.array([_to_text(v) for v in values], type=arrow_type)
    if pa.types.is_boolean(arrow_type):
        return lambda values: pa.array(
            [None if v is None else bool(v) for v in values], type=arrow_type
        )
    if pa.types.is_floating(arrow_type):  # some drivers return Decimal for DOUBLE
        return lambda values: pa.array(
            [None if v is None else float(v) for v in values], type=arrow_type
        )
    if pa.types.is_binary(arrow_type):
        return lambda values: pa.array(
            [None if v is None else bytes(v) for v in values], type=arrow_type
        )
    return lambda values: pa.array(values, type=arrow_type)


def rows_to_batch(rows: list[Any], schema: pa.Schema) -> pa.RecordBatch:
    """DBAPI rows (sequences in schema order) -> one Arrow record batch."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    arrays = [
        column_converter(field.type)(list(col)) for field, col in zip(schema, columns, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def batch_to_rows(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """An Arrow batch -> rows for an executemany insert (nested values as JSON-able Python)."""
    return batch.to_pylist()  # type: ignore[no-any-return]
