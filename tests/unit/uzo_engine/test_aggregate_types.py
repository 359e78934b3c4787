"""Aggregate and window nodes against DuckDB: same values AND DuckDB's result types.

DuckDB widens integer sums (HUGEINT, exported to Arrow as decimal128(38, 0)), keeps
a decimal's scale in SUM and MEDIAN, and returns AVG, STDDEV and VARIANCE as DOUBLE.
Polars would sum an INTEGER column in 32 bits and wrap, and average a decimal at its
scale; each case here failed that way before.
"""

from __future__ import annotations

import decimal
import math

import pyarrow as pa
import pytest

from tests.unit.uzo_engine.helpers import duck, run1

D = decimal.Decimal

T = pa.table(
    {
        "g": pa.array([1, 1, 1, 2, 2, 2, 3], pa.int64()),
        "o": pa.array([1, 2, 3, 1, 2, 3, 1], pa.int64()),
        "i8": pa.array([100, 100, 100, -100, None, -100, 7], pa.int8()),
        "i32": pa.array([2_000_000_000, 2_000_000_000, 1, -5, None, 3, 2], pa.int32()),
        "i64": pa.array([2**62, 2**62, 2**62, 1, None, -1, 0], pa.int64()),
        "dec": pa.array(
            [D("2.50"), D("-2.50"), D("9.99"), D("0.01"), None, D("1.25"), D("3.33")],
            pa.decimal128(15, 2),
        ),
        "f": pa.array([1e16, 1.0, -1e16, 1.0, None, 0.5, 2.0], pa.float64()),
        "s": pa.array(["b", "a", "c", "z", None, "y", "m"], pa.string()),
    }
)
NUMERIC = ["i8", "i32", "i64", "dec", "f"]
FAMILY = {
    pa.types.is_integer: "integer",
    pa.types.is_decimal: "decimal",
    pa.types.is_floating: "float",
    pa.types.is_string: "string",
    pa.types.is_large_string: "string",
}


def family(t: pa.DataType) -> str:
    return next((name for test, name in FAMILY.items() if test(t)), str(t))


def values(table: pa.Table, column: str) -> list[object]:
    out = []
    for v in table.column(column).to_pylist():
        if isinstance(v, D):
            out.append(v.normalize() if v == v else v)
        elif isinstance(v, float):
            out.append(round(v, 9) if not math.isnan(v) else "nan")
        else:
            out.append(v)
    return out


AGGREGATES = [
    ("sum", "sum"),
    ("avg", "avg"),
    ("median", "median"),
    ("std", "stddev_samp"),
    ("var", "var_samp"),
    ("min", "min"),
    ("max", "max"),
    ("count", "count"),
]


@pytest.mark.parametrize("column", NUMERIC)
@pytest.mark.parametrize(("func", "sql"), AGGREGATES)
def test_aggregates_have_duckdbs_values_and_types(column: str, func: str, sql: str) -> None:
    got = run1(
        "aggregate",
        {
            "group_by": ["g"],
            "aggregations": [{"func": func, "column": column, "alias": "r"}],
        },
        T,
    ).sort_by("g")
    want = duck(f"SELECT g, {sql}({column}) AS r FROM t GROUP BY g ORDER BY g", t=T)
    assert family(got.schema.field("r").type) == family(want.schema.field("r").type), (
        f"{func}({column}): UZO {got.schema.field('r').type}, DuckDB {want.schema.field('r').type}"
    )
    assert values(got, "r") == values(want, "r"), f"{func}({column})"


def test_integer_sums_do_not_wrap() -> None:
    got = run1("aggregate", {"aggregations": [{"func": "sum", "column": "i32"}]}, T)
    assert got.column(0).to_pylist() == [D(4_000_000_001)]  # Polars alone: -294967295


WINDOWS = [
    ("cum_sum", "sum({c}) OVER (PARTITION BY g ORDER BY o ROWS UNBOUNDED PRECEDING)"),
    ("cum_avg", "avg({c}) OVER (PARTITION BY g ORDER BY o ROWS UNBOUNDED PRECEDING)"),
    ("cum_min", "min({c}) OVER (PARTITION BY g ORDER BY o ROWS UNBOUNDED PRECEDING)"),
    ("cum_max", "max({c}) OVER (PARTITION BY g ORDER BY o ROWS UNBOUNDED PRECEDING)"),
    ("moving_sum", "sum({c}) OVER (PARTITION BY g ORDER BY o ROWS 1 PRECEDING)"),
    ("moving_avg", "avg({c}) OVER (PARTITION BY g ORDER BY o ROWS 1 PRECEDING)"),
    ("moving_min", "min({c}) OVER (PARTITION BY g ORDER BY o ROWS 1 PRECEDING)"),
    ("moving_max", "max({c}) OVER (PARTITION BY g ORDER BY o ROWS 1 PRECEDING)"),
    ("sum", "sum({c}) OVER (PARTITION BY g)"),
    ("avg", "avg({c}) OVER (PARTITION BY g)"),
]


ORDERED = ("cum_min", "cum_max", "moving_min", "moving_max")  # also defined for strings
WINDOW_CASES = [
    (column, func, sql)
    for column in [*NUMERIC, "s"]
    for func, sql in WINDOWS
    if column != "s" or func in ORDERED
]


@pytest.mark.parametrize(("column", "func", "sql"), WINDOW_CASES)
def test_windows_have_duckdbs_values_and_types(column: str, func: str, sql: str) -> None:
    config = {
        "partition_by": ["g"],
        "order_by": ["o"],
        "functions": [{"func": func, "column": column, "alias": "r", "size": 2}],
    }
    got = run1("window", config, T)
    want = duck(f"SELECT {sql.format(c=column)} AS r FROM t ORDER BY g, o", t=T)
    ordered = got.sort_by([("g", "ascending"), ("o", "ascending")])
    assert family(ordered.schema.field("r").type) == family(want.schema.field("r").type), (
        f"{func}({column}): UZO {ordered.schema.field('r').type}, "
        f"DuckDB {want.schema.field('r').type}"
    )
    assert values(ordered, "r") == values(want, "r"), f"{func}({column})"


def test_a_moving_sum_is_computed_per_frame() -> None:
    """A running add/subtract would lose 1.0 next to 1e16; each frame is summed afresh."""
    table = pa.table({"o": [1, 2, 3, 4], "f": [1e16, 1.0, -1e16, 1.0]})
    config = {
        "order_by": ["o"],
        "functions": [{"func": "moving_sum", "column": "f", "alias": "r", "size": 2}],
    }
    got = run1("window", config, table).column("r").to_pylist()
    want = duck("SELECT sum(f) OVER (ORDER BY o ROWS 1 PRECEDING) AS r FROM t ORDER BY o", t=table)
    assert got == want.column("r").to_pylist()
