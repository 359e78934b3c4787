"""uzo_connectors.arrow: schema JSON round trips, rechunking, conforming, Polars types."""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pytest

from uzo_connectors import arrow

SCHEMA = pa.schema(
    [
        pa.field("i", pa.int64(), nullable=False),
        pa.field("s", pa.string()),
        pa.field("ls", pa.large_string()),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("t", pa.time64("ns")),
        pa.field("d", pa.decimal128(12, 3)),
        pa.field("big", pa.decimal256(50, 2)),
        pa.field("dur", pa.duration("ms")),
        pa.field("fsb", pa.binary(16)),
        pa.field("l", pa.list_(pa.field("item", pa.int32()))),
        pa.field("st", pa.struct([pa.field("a", pa.float64()), pa.field("b", pa.date32())])),
        pa.field("m", pa.map_(pa.string(), pa.int64())),
        pa.field("dict", pa.dictionary(pa.int32(), pa.string())),
        pa.field("fsl", pa.list_(pa.int8(), 3)),  # via the IPC fallback
    ]
)


def test_schema_json_round_trip() -> None:
    encoded = arrow.schema_to_dict(SCHEMA)
    decoded = arrow.schema_from_dict(json.loads(json.dumps(encoded)))
    assert decoded.equals(SCHEMA)
    assert encoded["fields"][0] == {"name": "i", "nullable": False, "type": "int64"}
    with pytest.raises(ValueError, match="unknown"):
        arrow.type_from_json({"type": "quaternion"})


def test_rechunk_to_exact_sizes() -> None:
    table = pa.table({"x": list(range(25))})
    pieces = table.to_batches(max_chunksize=3) + table.to_batches(max_chunksize=11)
    out = list(arrow.rechunk(pieces, 10))
    assert [b.num_rows for b in out] == [10, 10, 10, 10, 10]
    assert pa.Table.from_batches(out).column("x").to_pylist() == list(range(25)) * 2
    with pytest.raises(ValueError, match="positive"):
        list(arrow.rechunk(pieces, 0))


def test_limit_batches() -> None:
    batches = pa.table({"x": list(range(10))}).to_batches(max_chunksize=4)
    assert sum(b.num_rows for b in arrow.limit_batches(batches, 5)) == 5
    assert list(arrow.limit_batches(batches, 0)) == []
    assert sum(b.num_rows for b in arrow.limit_batches(batches, None)) == 10


def test_unify_and_conform() -> None:
    a = pa.schema([("x", pa.int32()), ("y", pa.string())])
    b = pa.schema([("x", pa.int64()), ("z", pa.float64())])
    unified = arrow.unify_schemas([a, b])
    assert unified.names == ["x", "y", "z"]
    assert unified.field("x").type == pa.int64()
    batch = pa.RecordBatch.from_pydict({"y": ["a"], "x": pa.array([1], pa.int32())})
    conformed = arrow.conform_batch(batch, unified)
    assert conformed.schema.equals(unified)
    assert conformed.to_pylist() == [{"x": 1, "y": "a", "z": None}]
    assert arrow.conform_table(pa.Table.from_batches([batch]), unified).num_rows == 1
    assert arrow.unify_schemas([]).names == []


def test_polars_round_trip_normalises_types() -> None:
    frame = pl.DataFrame({"s": ["a", None], "l": [["x"], []], "b": [b"1", b"2"]})
    table = arrow.from_polars(frame)
    assert table.schema.field("s").type == pa.string()
    assert table.schema.field("l").type == pa.list_(pa.field("item", pa.string()))
    assert table.schema.field("b").type == pa.binary()
    assert arrow.to_polars(table.to_batches()[0]).shape == (2, 3)


def test_estimated_bytes_counts_slices_by_share() -> None:
    table = pa.table({"x": pa.array(range(100_000), pa.int64())})
    assert arrow.estimated_bytes(table) >= 800_000
    assert arrow.estimated_bytes(table.column("x")) >= 800_000
