"""JSON records -> Arrow: schema inference from a sample, declared schemas, nesting options.

Nested objects stay structs (``nested="struct"``), become ``a.b`` columns
(``"flatten"``) or JSON strings (``"json"``). A column whose sample mixes types
that Arrow cannot unify is read as JSON text rather than failing; a column that
is null throughout the sample is read as text. Later pages follow the planned
schema: unknown fields are dropped, missing ones are null.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import pyarrow as pa

from uzo_connectors.errors import ConnectorError

Nested = Literal["struct", "flatten", "json"]

_ALIASES: dict[str, pa.DataType] = {
    "json": pa.string(),  # any value, serialised as JSON text
    "timestamp": pa.timestamp("us", tz="UTC"),
    "datetime": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "integer": pa.int64(),
    "int": pa.int64(),
    "number": pa.float64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "text": pa.string(),
}
_JSON_TYPE = "uzo.json"


def arrow_type(alias: str) -> pa.DataType:
    """An Arrow type from a short name (``int64``, ``string``, ``timestamp``, ``json``...)."""
    key = alias.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    try:
        return pa.type_for_alias(key)
    except (ValueError, KeyError):
        raise ValueError(f"unknown column type {alias!r}") from None


def declared_schema(columns: Mapping[str, str]) -> pa.Schema:
    fields = []
    for name, alias in columns.items():
        metadata = {b"uzo.type": _JSON_TYPE.encode()} if alias.strip().lower() == "json" else None
        fields.append(pa.field(name, arrow_type(alias), metadata=metadata))
    return pa.schema(fields)


def flatten(record: Mapping[str, Any], separator: str = ".", prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists are kept as values)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{separator}{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, separator, name))
        else:
            out[name] = value
    return out


def shape(
    records: Iterable[Mapping[str, Any]], nested: Nested, separator: str
) -> list[dict[str, Any]]:
    """Apply the nesting option to raw records."""
    if nested == "flatten":
        return [flatten(r, separator) for r in records]
    if nested == "json":
        return [
            {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in r.items()}
            for r in records
        ]
    return [dict(r) for r in records]


def _is_json(field: pa.Field) -> bool:
    return bool(field.metadata) and field.metadata.get(b"uzo.type") == _JSON_TYPE.encode()


def infer_schema(records: Sequence[Mapping[str, Any]]) -> pa.Schema:
    """A schema for ``records``: the union of their keys, in first-seen order."""
    names: dict[str, None] = {}
    for record in records:
        for key in record:
            names.setdefault(key, None)
    fields = []
    for name in names:
        values = [r.get(name) for r in records]
        try:
            inferred = pa.array(values).type
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            inferred = None
        if inferred is None or _has_null_type(inferred):
            fields.append(pa.field(name, pa.string(), metadata={b"uzo.type": _JSON_TYPE.encode()}))
        else:
            fields.append(pa.field(name, inferred))
    return pa.schema(fields)


def _has_null_type(dtype: pa.DataType) -> bool:
    if pa.types.is_null(dtype):
        return True
    return any(_has_null_type(dtype.field(i).type) for i in range(dtype.num_fields))


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _column(name: str, values: list[Any], field: pa.Field) -> pa.Array:
    dtype = field.type
    if _is_json(field) or pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return pa.array([_json_text(v) for v in values], type=dtype)
    try:
        if pa.types.is_temporal(dtype) and any(isinstance(v, str) for v in values):
            return pa.array(values, type=pa.string()).cast(dtype)
        return pa.array(values, type=dtype)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        raise ConnectorError(
            f"column {name!r}: a value does not fit the type {dtype} ({exc}); "
            "declare the column's type in the resource's `columns` (\"json\" accepts anything)"
        ) from None


def to_batch(records: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    """Records as a batch with exactly ``schema`` (extra keys dropped, missing ones null)."""
    arrays = [_column(field.name, [r.get(field.name) for r in records], field) for field in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
