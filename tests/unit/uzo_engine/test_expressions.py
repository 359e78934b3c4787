"""SQL expression strings -> Polars, checked against DuckDB evaluating the same SQL."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pyarrow as pa
import pytest

from tests.unit.uzo_engine.helpers import duck, rows
from uzo_engine.expressions import ExpressionError, check, compile_expression
from uzo_engine.expressions.constructs import like_regex
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


SCHEMA = to_polars(T).schema


def compiled(sql: str) -> pl.Expr:
    return compile_expression(sql, SCHEMA).expr


@pytest.mark.parametrize("sql", CASES)
def test_expression_matches_duckdb(sql: str) -> None:
    got = to_polars(T).select(compiled(sql).alias("r"))
    expected = duck(f"SELECT {sql} AS r FROM t", t=T)
    assert rows(to_arrow(got), sort=False) == rows(expected, sort=False), sql


def test_a_constant_date_plus_interval_is_folded_to_a_literal() -> None:
    """So Polars can push it into a Parquet scan as a plain comparison."""
    folded = compiled("d < DATE '2024-01-31' + INTERVAL '1' MONTH")
    assert "offset_by" not in str(folded)
    assert "2024-02-29" in str(folded)
    assert "offset_by" in str(compiled("d + INTERVAL 1 MONTH"))
    assert pl.select(compiled("DATE '2024-01-31' + INTERVAL 1 MONTH")).item() == (
        dt.datetime(2024, 2, 29)  # a TIMESTAMP, as DuckDB
    )


def test_referenced_columns_in_first_use_order() -> None:
    assert check("b LIKE 'x' AND a + a > x") == ("b", "a", "x")
    assert check('"my col" + 1') == ("my col",)
    assert check("1 + 2") == ()


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("sum(a) > 1", "aggregate function sum() is not allowed"),
        ("row_number() OVER ()", "row_number"),
        ("a IN (SELECT 1)", "IN (subquery) is not supported"),
        ("a >", "cannot parse"),
        ("", "non-empty"),
        ("INTERVAL 1 MONTH", "an INTERVAL of months"),
        ("CAST(a AS INTERVAL)", "unsupported type INTERVAL"),
        ("d + INTERVAL 1 FORTNIGHT", "INTERVAL unit"),
        ("frobnicate(a)", "unsupported function frobnicate()"),
        ("lowr(b)", "did you mean lower"),
        ("b + 1", r"cannot convert|could not convert|no \+"),
        ("t.a > 1", "qualified name"),
    ],
)
def test_unsupported_constructs_are_named(sql: str, fragment: str) -> None:
    pattern = "(?i)" + fragment.replace("(", r"\(").replace(")", r"\)")

    def compile_it() -> None:
        check(sql)
        compile_expression(sql, SCHEMA)

    with pytest.raises(ExpressionError, match=pattern):
        compile_it()


def test_like_escapes_regex_metacharacters() -> None:
    s = pl.Series(["a.c", "abc", "a+c", "a%c"])
    assert s.str.contains(like_regex("a.c", None, False)).to_list() == [True, False, False, False]
    assert s.str.contains(like_regex("a_c", None, False)).to_list() == [True, True, True, True]
    assert s.str.contains(like_regex("a!%c", "!", False)).to_list() == [False, False, False, True]


def test_failing_cast_in_expression_is_strict() -> None:
    df = pl.DataFrame({"s": ["1", "x"]})
    with pytest.raises(ValueError, match="could not convert string to INTEGER"):
        df.select(compile_expression("CAST(s AS INTEGER)", df.schema).expr)
    got = df.select(compile_expression("TRY_CAST(s AS INTEGER)", df.schema).expr.alias("r"))
    assert got["r"].to_list() == [1, None]


def test_string_to_date_cast() -> None:
    df = pl.DataFrame({"s": ["2024-02-29", None, "2024-2-3"]})
    got = df.select(compile_expression("CAST(s AS DATE)", df.schema).expr.alias("r"))
    assert got["r"].to_list() == [dt.date(2024, 2, 29), None, dt.date(2024, 2, 3)]
