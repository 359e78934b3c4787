"""The one place that knows Arrow's and Polars' quirks for connectors.

Schemas to JSON-able dicts and back (for the API, lineage and the metadata
DB), rechunking record-batch streams to a target size, unifying and casting
schemas, Polars <-> Arrow with normalised types, and size estimates.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import polars as pl

_PRIMITIVES: dict[str, pa.DataType] = {
    str(t): t
    for t in (
        pa.null(),
        pa.bool_(),
        pa.int8(),
        pa.int16(),
        pa.int32(),
        pa.int64(),
        pa.uint8(),
        pa.uint16(),
        pa.uint32(),
        pa.uint64(),
        pa.float16(),
        pa.float32(),
        pa.float64(),
        pa.string(),
        pa.large_string(),
        pa.string_view(),
        pa.binary(),
        pa.large_binary(),
        pa.binary_view(),
        pa.date32(),
        pa.date64(),
    )
}


def type_to_json(t: pa.DataType) -> dict[str, Any]:
    """A JSON-able description of an Arrow type (``{"type": "int64"}``, nested for lists...)."""
    name = str(t)
    if name in _PRIMITIVES:
        return {"type": name}
    if pa.types.is_timestamp(t):
        return {"type": "timestamp", "unit": t.unit, "tz": t.tz}
    if pa.types.is_time32(t) or pa.types.is_time64(t):
        return {"type": "time", "unit": t.unit}
    if pa.types.is_duration(t):
        return {"type": "duration", "unit": t.unit}
    if pa.types.is_decimal(t):
        return {"type": "decimal", "precision": t.precision, "scale": t.scale}
    if pa.types.is_fixed_size_binary(t):
        return {"type": "fixed_size_binary", "byte_width": t.byte_width}
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        kind = "list" if pa.types.is_list(t) else "large_list"
        return {"type": kind, "item": field_to_json(t.value_field)}
    if pa.types.is_struct(t):
        fields = [field_to_json(t.field(i)) for i in range(t.num_fields)]
        return {"type": "struct", "fields": fields}
    if pa.types.is_map(t):
        return {"type": "map", "key": type_to_json(t.key_type), "item": type_to_json(t.item_type)}
    if pa.types.is_dictionary(t):
        return {
            "type": "dictionary",
            "index": type_to_json(t.index_type),
            "value": type_to_json(t.value_type),
        }
    # Anything rarer round-trips through Arrow's own IPC serialisation.
    blob = pa.schema([pa.field("x", t)]).serialize().to_pybytes()
    return {"type": name, "ipc": base64.b64encode(blob).decode("ascii")}


def type_from_json(d: dict[str, Any]) -> pa.DataType:
    kind = d["type"]
    if "ipc" in d:
        return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(d["ipc"]))).field(0).type
    if kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    if kind == "timestamp":
        return pa.timestamp(d["unit"], tz=d.get("tz"))
    if kind == "time":
        unit = d["unit"]
        return pa.time32(unit) if unit in ("s", "ms") else pa.time64(unit)
    if kind == "duration":
        return pa.duration(d["unit"])
    if kind == "decimal":
        p, s = d["precision"], d["scale"]
        return pa.decimal128(p, s) if p <= 38 else pa.decimal256(p, s)
    if kind == "fixed_size_binary":
        return pa.binary(d["byte_width"])
    if kind in ("list", "large_list"):
        item = field_from_json(d["item"])
        return pa.list_(item) if kind == "list" else pa.large_list(item)
    if kind == "struct":
        return pa.struct([field_from_json(f) for f in d["fields"]])
    if kind == "map":
        return pa.map_(type_from_json(d["key"]), type_from_json(d["item"]))
    if kind == "dictionary":
        return pa.dictionary(type_from_json(d["index"]), type_from_json(d["value"]))
    raise ValueError(f"unknown Arrow type description {kind!r}")


def field_to_json(f: pa.Field) -> dict[str, Any]:
    return {"name": f.name, "nullable": f.nullable, **type_to_json(f.type)}


def field_from_json(d: dict[str, Any]) -> pa.Field:
    return pa.field(d["name"], type_from_json(d), nullable=d.get("nullable", True))


def schema_to_dict(schema: pa.Schema) -> dict[str, Any]:
    """``{"fields": [{"name", "type", "nullable", ...}, ...]}`` (metadata is dropped)."""
    return {"fields": [field_to_json(f) for f in schema]}


def schema_from_dict(d: dict[str, Any]) -> pa.Schema:
    return pa.schema([field_from_json(f) for f in d["fields"]])


def normalize_type(t: pa.DataType) -> pa.DataType:
    """Large and view string/binary types -> the plain ones, recursively (Polars emits them)."""
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        return pa.list_(normalize_field(t.value_field))
    if pa.types.is_list(t):
        return pa.list_(normalize_field(t.value_field))
    if pa.types.is_struct(t):
        return pa.struct([normalize_field(t.field(i)) for i in range(t.num_fields)])
    return t


def normalize_field(f: pa.Field) -> pa.Field:
    return f.with_type(normalize_type(f.type))


def normalize_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([normalize_field(f) for f in schema], metadata=schema.metadata)


def unify_schemas(schemas: Iterable[pa.Schema]) -> pa.Schema:
    """One schema for several (missing columns become nullable, int widens to float...)."""
    items = list(schemas)
    if not items:
        return pa.schema([])
    return pa.unify_schemas(items, promote_options="permissive")


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with exactly ``schema``'s columns, in order: cast, and null-filled if missing."""
    if batch.schema.equals(schema):
        return batch
    names = set(batch.schema.names)
    columns = []
    for f in schema:
        if f.name in names:
            col = batch.column(f.name)
            columns.append(col if col.type.equals(f.type) else col.cast(f.type))
        else:
            columns.append(pa.nulls(batch.num_rows, type=f.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def conform_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_batches(
        [conform_batch(b, schema) for b in table.to_batches()], schema=schema
    )


def rechunk(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Re-slice a batch stream into batches of exactly ``rows`` rows (the last may be short).

    Large batches are sliced without copying; small ones are buffered and combined.
    """
    if rows <= 0:
        raise ValueError("rows must be positive")
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in batches:
        offset = 0
        while offset < batch.num_rows:
            take = min(rows - pending_rows, batch.num_rows - offset)
            piece = batch.slice(offset, take)
            offset += take
            if not pending and take == rows:
                yield piece
                continue
            pending.append(piece)
            pending_rows += take
            if pending_rows == rows:
                yield _combine(pending)
                pending, pending_rows = [], 0
    if pending:
        yield _combine(pending)


def _combine(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def limit_batches(batches: Iterable[pa.RecordBatch], limit: int | None) -> Iterator[pa.RecordBatch]:
    """Stop the stream after ``limit`` rows (None: no limit)."""
    if limit is None:
        yield from batches
        return
    remaining = limit
    for batch in batches:
        if remaining <= 0:
            return
        if batch.num_rows > remaining:
            batch = batch.slice(0, remaining)
        remaining -= batch.num_rows
        yield batch


def estimated_bytes(data: pa.Table | pa.RecordBatch | pa.Array | pa.ChunkedArray) -> int:
    """Bytes of the buffers actually referenced (slices count their share only)."""
    try:
        return int(data.get_total_buffer_size())
    except AttributeError:
        return int(data.nbytes)


def to_polars(data: pa.Table | pa.RecordBatch) -> pl.DataFrame:
    import polars as pl

    table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
    frame = pl.from_arrow(table, rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame


def from_polars(frame: pl.DataFrame) -> pa.Table:
    """Polars -> Arrow with plain string/binary/list types (Polars emits large/view ones)."""
    table = frame.to_arrow()
    schema = normalize_schema(table.schema)
    return table if schema.equals(table.schema) else table.cast(schema)
