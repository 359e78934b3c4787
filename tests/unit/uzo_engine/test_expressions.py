"""SQL expression strings -> Polars, checked against DuckDB evaluating the same SQL."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pyarrow as pa
import pytest

from tests.unit.uzo_engine.helpers import duck, rows
from uzo_engine.nodes.expressions import ExpressionError, compile_expression, like_to_regex
from uzo_engine.nodes.types import to_arrow, to_polars

T = pa.table(
    {
        "a": pa.array([1, 2, None, 4, -5], pa.int64()),
        "b": pa.array(["Xa", "yb", None, "ab_c", "  pad "], pa.string()),
        "x": pa.array([1.5, None, 3.25, -0.5, 10.0], pa.float64()),
        "d": pa.array(
            [
                dt.date(2020, 1, 5),
                dt.date(2021, 3, 31),
                None,
                dt.date(2024, 2, 29),
                dt.date(1999, 12, 31),
            ],
            pa.date32(),
        ),
        "flag": pa.array([True, False, None, True, False]),
    }
)

CASES = [
    "a > 1",
    "a >= 2 AND x < 5",
    "a = 1 OR b = 'yb'",
    "NOT (a < 3)",
    "a <> 4",
    "a + 1",
    "a * 2 - 3",
    "x / 2",
    "a % 2",
    "a % -3",
    "a // 2",
    "x % 2",
    "-a",
    "a IS NULL",
    "b IS NOT NULL",
    "a IN (1, 4, 7)",
    "a NOT IN (1, 4)",
    "a BETWEEN 1 AND 3",
    "x NOT BETWEEN 0 AND 2",
    "b LIKE '%b'",
    "b LIKE 'ab\\_c'",
    "b NOT LIKE 'X%'",
    "b ILIKE 'x%'",
    "b LIKE '_b'",
    "CASE WHEN a > 1 THEN 'big' WHEN a < 0 THEN 'neg' ELSE 'small' END",
    "CASE a WHEN 1 THEN 10 WHEN 2 THEN 20 END",
    "CASE WHEN a > 100 THEN 1 END",
    "CAST(a AS VARCHAR)",
    "CAST(x AS BIGINT)",
    "a::DOUBLE / 3",
    "COALESCE(a, 0)",
    "COALESCE(x, a, -1)",
    "NULLIF(a, 4)",
    "lower(b)",
    "upper(b)",
    "length(b)",
    "substr(b, 2, 1)",
    "substring(b, 2)",
    "trim(b)",
    "ltrim(b)",
    "rtrim(b)",
    "concat(b, '!', b)",
    "b || '-' || b",
    "replace(b, 'a', 'A')",
    "starts_with(b, 'a')",
    "year(d)",
    "month(d)",
    "day(d)",
    "extract(year FROM d)",
    "date_trunc('month', d)",
    "date_trunc('year', d)",
    "d < DATE '2021-01-01'",
    "d + INTERVAL 1 MONTH",
    "d - INTERVAL 10 DAY",
    "d < DATE '2021-01-31' + INTERVAL 1 MONTH",
    "d >= DATE '2024-03-31' - INTERVAL '1' MONTH",
    "abs(a)",
    "round(x, 1)",
    "floor(x)",
    "ceil(x)",
    "greatest(a, 2)",
    "least(a, 2)",
    "flag AND a > 1",
    "flag OR a > 1",
    "IF(a > 1, 'y', 'n')",
    "true AND a > 0",
]


def _dates(values: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """DuckDB returns TIMESTAMP for date arithmetic on DATE; UZO keeps DATE."""
    return [
        tuple(v.date() if isinstance(v, dt.datetime) and v.time() == dt.time() else v for v in r)
        for r in values
    ]


@pytest.mark.parametrize("sql", CASES)
def test_expression_matches_duckdb(sql: str) -> None:
    compiled = compile_expression(sql)
    got = to_polars(T).select(compiled.expr.alias("r"))
    expected = duck(f"SELECT {sql} AS r FROM t", t=T)
    assert rows(to_arrow(got), sort=False) == _dates(rows(expected, sort=False)), sql


def test_a_constant_date_plus_interval_is_folded_to_a_literal() -> None:
    """So Polars can push it into a Parquet scan as a plain comparison."""
    folded = compile_expression("d < DATE '2024-01-31' + INTERVAL '1' MONTH").expr
    assert "offset_by" not in str(folded)
    assert "2024-02-29" in str(folded)
    assert "offset_by" in str(compile_expression("d + INTERVAL 1 MONTH").expr)
    assert pl.select(compile_expression("DATE '2024-01-31' + INTERVAL 1 MONTH").expr).item() == (
        dt.date(2024, 2, 29)
    )


def test_referenced_columns_in_first_use_order() -> None:
    assert compile_expression("b LIKE 'x' AND a + a > x").columns == ("b", "a", "x")
    assert compile_expression('"my col" + 1').columns == ("my col",)
    assert compile_expression("t.a > 1").columns == ("a",)
    assert compile_expression("1 + 2").columns == ()


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("sum(a) > 1", "aggregate/window function SUM"),
        ("row_number() OVER ()", "ROW_NUMBER"),
        ("regexp_matches(b, 'x')", "unsupported SQL construct"),
        ("a IN (SELECT 1)", "IN with a subquery"),
        ("a >", "cannot parse"),
        ("", "non-empty"),
        ("b LIKE a", "LIKE pattern must be a string literal"),
        ("CAST(a AS INTERVAL)", "CAST to interval"),
        ("d + INTERVAL 1 MILLENNIUM", "INTERVAL unit"),
    ],
)
def test_unsupported_constructs_are_named(sql: str, fragment: str) -> None:
    with pytest.raises(ExpressionError, match="(?i)" + fragment.replace("(", r"\(")):
        compile_expression(sql)


def test_like_escapes_regex_metacharacters() -> None:
    s = pl.Series(["a.c", "abc", "a+c"])
    assert s.str.contains(like_to_regex("a.c")).to_list() == [True, False, False]
    assert s.str.contains(like_to_regex("a_c")).to_list() == [True, True, True]


def test_failing_cast_in_expression_is_strict() -> None:
    df = pl.DataFrame({"s": ["1", "x"]})
    with pytest.raises(pl.exceptions.InvalidOperationError):
        df.select(compile_expression("CAST(s AS INTEGER)").expr)
    got = df.select(compile_expression("TRY_CAST(s AS INTEGER)").expr.alias("r"))
    assert got["r"].to_list() == [1, None]


def test_string_to_date_cast() -> None:
    df = pl.DataFrame({"s": ["2024-02-29", None]})
    got = df.select(compile_expression("CAST(s AS DATE)").expr.alias("r"))
    assert got["r"].to_list() == [dt.date(2024, 2, 29), None]
