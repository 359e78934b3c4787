"""Decimal literals, decimal arithmetic and ROUND: UZO against DuckDB on the same SQL."""

from __future__ import annotations

import decimal

import pyarrow as pa
import pytest

from tests.unit.uzo_engine.helpers import duck
from uzo_engine.expressions import compile_expression
from uzo_engine.nodes.types import to_arrow, to_polars

D = decimal.Decimal
MONEY = pa.decimal128(15, 2)
T = pa.table(
    {
        "x": pa.array([D("0.07"), D("0.05"), D("0.08"), None, D("-7.50")], MONEY),
        "p": pa.array([D("24386.67"), D("901.00"), D("0.01"), D("5.00"), D("-1.25")], MONEY),
        "d": pa.array([D("0.04"), D("0.10"), D("0.00"), D("0.06"), D("0.03")], MONEY),
        "s": pa.array(
            [D("1.234"), D("0.005"), D("-0.015"), D("2.500"), None], pa.decimal128(10, 3)
        ),
        "i": pa.array([1, 2, None, 4, -5], pa.int64()),
        "a": pa.array([980.5, 2.675, 0.125, 1.005, -9.805], pa.float64()),
    }
)


def uzo(sql: str) -> pa.Table:
    frame = to_polars(T)
    return to_arrow(frame.select(compile_expression(sql, frame.schema).expr.alias("r")))


def exact(table: pa.Table) -> list[object]:
    """Values as Python objects: Decimals stay exact, floats are compared as stored."""
    return table.column(0).to_pylist()


EXACT_CASES = [
    # 1. numeric literals with a point are decimals
    "0.06 + 0.01",
    "x BETWEEN 0.06 - 0.01 AND 0.06 + 0.01",
    "x = 0.07",
    "x > 0.065",
    "x IN (0.05, 0.07)",
    "i * 0.5",
    "i + 1.25",
    "i IN (1.0, 4)",
    "a * 0.01",
    "a > 2.6",
    "a IN (980.5, 0.125)",
    "x + i",
    "x - 1",
    "x * a",
    "x < a",
    "1e3 + a",
    "-0.5 * x",
    "CASE WHEN x > 0.06 THEN x ELSE 0.5 END",
    # 2. decimal x decimal keeps the sum of the scales; division is a double
    "p * d",
    "p * (1 - d)",
    "p * (1 - d) * (1 + d)",
    "p * s",
    "p + s",
    "p - d",
    "p % (d + 1)",
    "p / d",
    "p / 4",
    "i / 0.5",
    # 3. ROUND at halfway values, doubles and decimals
    "round(a * 0.01, 2)",
    "round(a, 2)",
    "round(a, 1)",
    "round(a)",
    "round(a, -1)",
    "round(s, 2)",
    "round(s, 1)",
    "round(s)",
    "round(p * d, 2)",
    "round(i, 0)",
]


@pytest.mark.parametrize("sql", EXACT_CASES)
def test_numbers_match_duckdb_exactly(sql: str) -> None:
    expected = duck(f"SELECT {sql} AS r FROM t", t=T)
    actual = uzo(sql)
    if pa.types.is_decimal(expected.schema.field("r").type):
        assert pa.types.is_decimal(actual.schema.field("r").type), actual.schema
        assert actual.schema.field("r").type.scale == expected.schema.field("r").type.scale
    else:
        assert actual.schema.field("r").type == expected.schema.field("r").type, sql
    got, want = exact(actual), exact(expected)
    if len(got) == 1:  # a constant: DuckDB repeats it per row
        got = got * len(want)
    assert got == want, f"{sql}: UZO {got} != DuckDB {want}"


def test_decimal_literal_repro_from_the_bug_report() -> None:
    table = pa.table({"x": pa.array([D("0.07")], MONEY)})
    frame = to_polars(table)
    cond = compile_expression("x BETWEEN 0.06 - 0.01 AND 0.06 + 0.01", frame.schema).expr
    assert frame.select(cond).item() is True
    assert frame.select(compile_expression("0.06 + 0.01", frame.schema).expr).item() == D("0.07")


def test_decimal_product_keeps_the_scale_of_sql() -> None:
    table = pa.table({"p": pa.array([D("24386.67")], MONEY), "d": pa.array([D("0.04")], MONEY)})
    frame = to_polars(table)
    out = to_arrow(frame.select(compile_expression("p * d", frame.schema).expr.alias("r")))
    assert out.schema.field("r").type == pa.decimal128(38, 4)
    assert out.column("r").to_pylist() == [D("975.4668")]


def test_round_halfway_double_like_duckdb() -> None:
    halves = [9.805, 2.675, 0.125, 1.005, 0.285, 1.115, 10.005, 0.045, 123.455, -9.805, 1e20]
    halves += [25.0, -15.0, 5.015, 14.999999999999998, 1e308, float("nan"), float("inf"), 0.0]
    table = pa.table({"a": pa.array(halves, pa.float64())})
    for places in (-2, -1, 0, 1, 2, 3, 7):
        sql = f"round(a, {places})"
        frame = to_polars(table)
        got = frame.select(compile_expression(sql, frame.schema).expr).to_series().to_list()
        want = duck(f"SELECT {sql} FROM t", t=table).column(0).to_pylist()
        assert [str(v) for v in got] == [str(v) for v in want], sql  # str: nan == nan


def test_tpch_q6_standard_text_matches_duckdb() -> None:
    lineitem = pa.table(
        {
            "l_discount": pa.array([D(f"0.0{k}") for k in range(10)] * 3, MONEY),
            "l_quantity": pa.array([D(q) for q in range(10, 40)], MONEY),
            "l_extendedprice": pa.array([D(f"{1000 + k}.37") for k in range(30)], MONEY),
        }
    )
    cond = "l_discount BETWEEN 0.06 - 0.01 AND 0.06 + 0.01 AND l_quantity < 24"
    schema = to_polars(lineitem).schema
    frame = to_polars(lineitem).filter(compile_expression(cond, schema).expr)
    product = compile_expression("l_extendedprice * l_discount", schema).expr
    revenue = frame.select(product).sum().item()
    expected = duck(
        f"SELECT sum(l_extendedprice * l_discount) FROM t WHERE {cond}", t=lineitem
    ).column(0)[0]
    assert revenue == expected.as_py()
