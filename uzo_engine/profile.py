"""A small profile of an Arrow table: rows, and per column nulls, distinct estimate,
min/max and (numeric) mean. Cheap enough to run at every step boundary.

Up to ``sample_rows`` rows everything is exact. Above, the profile stays cheap:
null counts are exact (Arrow keeps them), min/max/mean of fixed-width columns
(integers, floats, dates, timestamps) are exact (one vectorised pass), and
what costs more — the distinct count of any column, min/max/mean of decimal and
string columns — is computed on a sample of ``sample_rows`` rows taken as
evenly spaced slices; such columns carry ``"sampled": True`` and the profile
``"sample_rows"``. The distinct count is then an estimate (scaled up when the
sample is mostly distinct).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

SAMPLE_ROWS = 100_000
_SLICES = 8


def _scalar(value: pa.Scalar) -> Any:
    try:
        py = value.as_py()
    except (OverflowError, ValueError):  # a date before year 1 or after 9999 (Python's range)
        return str(value.cast(pa.string()).as_py()) if value.is_valid else None
    if isinstance(py, (int, float, str, bool)) or py is None:
        return py
    return str(py)


def _sample(column: pa.ChunkedArray, rows: int) -> pa.ChunkedArray:
    if len(column) <= rows:
        return column
    step, size = len(column) // _SLICES, rows // _SLICES
    chunks = [column.slice(i * step, size) for i in range(_SLICES)]
    return pa.chunked_array([c for part in chunks for c in part.chunks], type=column.type)


def _cheap(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_temporal(t))


def _ordered(t: pa.DataType) -> bool:
    return (
        _cheap(t) or pa.types.is_decimal(t) or pa.types.is_string(t) or pa.types.is_large_string(t)
    )


def _distinct(column: pa.ChunkedArray, sample: pa.ChunkedArray) -> int | None:
    try:
        distinct = int(pc.count_distinct(sample, mode="only_valid").as_py())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return None
    if len(sample) == len(column):
        return distinct
    if distinct > len(sample) // 2:  # mostly distinct: scale up to the whole column
        distinct = int(distinct * len(column) / len(sample))
    return min(distinct, len(column) - int(column.null_count))


def profile_table(table: pa.Table, *, sample_rows: int = SAMPLE_ROWS) -> dict[str, Any]:
    columns: dict[str, dict[str, Any]] = {}
    sampled = table.num_rows > sample_rows
    for name, column in zip(table.column_names, table.columns, strict=True):
        t = column.type
        info: dict[str, Any] = {"type": str(t), "null_count": column.null_count}
        sample = _sample(column, sample_rows)
        distinct = _distinct(column, sample)
        if distinct is not None:
            info["distinct_estimate"] = distinct
        source = column if _cheap(t) else sample
        if _ordered(t):
            try:
                mm = pc.min_max(source)
                info["min"] = _scalar(mm["min"])
                info["max"] = _scalar(mm["max"])
            except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
                pass
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            info["mean"] = _scalar(pc.mean(source))
        if sampled:
            info["sampled"] = True
        columns[name] = info
    profile: dict[str, Any] = {"row_count": table.num_rows, "columns": columns}
    if sampled:
        profile["sample_rows"] = sample_rows
    return profile
