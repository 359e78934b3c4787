"""A small profile of an Arrow table: rows, and per column nulls, distinct estimate,
min/max and (numeric) mean. Cheap enough to run at every step boundary."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

# distinct counts above this many rows are estimated on a sample
_SAMPLE_ROWS = 100_000


def _scalar(value: pa.Scalar) -> Any:
    py = value.as_py()
    if isinstance(py, (int, float, str, bool)) or py is None:
        return py
    return str(py)


def profile_table(table: pa.Table) -> dict[str, Any]:
    columns: dict[str, dict[str, Any]] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        info: dict[str, Any] = {"type": str(column.type), "null_count": column.null_count}
        sample = column if len(column) <= _SAMPLE_ROWS else column.slice(0, _SAMPLE_ROWS)
        try:
            distinct = pc.count_distinct(sample, mode="only_valid").as_py()
            if len(column) > _SAMPLE_ROWS:
                info["distinct_estimate"] = min(
                    int(distinct * len(column) / _SAMPLE_ROWS)
                    if distinct > _SAMPLE_ROWS // 2
                    else distinct,
                    len(column) - column.null_count,
                )
            else:
                info["distinct_estimate"] = distinct
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            pass
        t = column.type
        if (
            pa.types.is_integer(t)
            or pa.types.is_floating(t)
            or pa.types.is_decimal(t)
            or pa.types.is_temporal(t)
            or pa.types.is_string(t)
            or pa.types.is_large_string(t)
        ):
            try:
                mm = pc.min_max(column)
                info["min"] = _scalar(mm["min"])
                info["max"] = _scalar(mm["max"])
            except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
                pass
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            info["mean"] = _scalar(pc.mean(column))
        columns[name] = info
    return {"row_count": table.num_rows, "columns": columns}
