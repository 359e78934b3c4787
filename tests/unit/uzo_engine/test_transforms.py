"""Row-wise and whole-table transforms, each against DuckDB SQL or hand-computed data."""

from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa
import pytest
from pydantic import ValidationError

from tests.unit.uzo_engine.helpers import assert_same, duck, rows, run1
from uzo_engine.nodes.base import SchemaError
from uzo_engine.nodes.registry import get_node_type
from uzo_engine.nodes.types import polars_schema

T = pa.table(
    {
        "id": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
        "grp": pa.array(["a", "b", "a", None, "b", "a"]),
        "amount": pa.array([10.0, None, 30.5, 7.25, 0.0, -3.0]),
        "qty": pa.array([1, 2, None, 4, 5, 2], pa.int32()),
        "day": pa.array([dt.date(2024, 1, d) for d in (1, 2, 3, 4, 5, 6)], pa.date32()),
        "txt": pa.array(["10", "x", None, "7", "3", "3"]),
    }
)
EMPTY = T.slice(0, 0)


@pytest.mark.parametrize("table", [T, EMPTY], ids=["rows", "empty"])
@pytest.mark.parametrize(
    "condition",
    [
        "amount > 5",
        "grp = 'a' AND qty IS NOT NULL",
        "grp IS NULL OR amount < 0",
        "day >= DATE '2024-01-04'",
        "qty IN (1, 2)",
        "NOT (amount > 5)",
    ],
)
def test_filter_matches_duckdb(table: pa.Table, condition: str) -> None:
    got = run1("filter", {"condition": condition}, table)
    assert_same(got, duck(f"SELECT * FROM t WHERE {condition}", t=table))


def test_filter_rejects_missing_column_and_non_boolean() -> None:
    nt = get_node_type("filter")
    schema = {"in": polars_schema(T.schema)}
    with pytest.raises(SchemaError, match="'nope' does not exist") as e:
        nt.infer_schema(nt.parse_params({"condition": "nope > 1"}), schema)
    assert e.value.column == "nope"
    with pytest.raises(SchemaError, match="not BOOLEAN"):
        nt.infer_schema(nt.parse_params({"condition": "amount + 1"}), schema)
    with pytest.raises(ValidationError, match="aggregate function sum"):
        nt.parse_params({"condition": "sum(amount) > 1"})


def test_select_rename_drop() -> None:
    got = run1(
        "select",
        {"columns": ["grp", "id", "amount"], "drop": ["amount"], "rename": {"grp": "group"}},
        T,
    )
    assert_same(got, duck('SELECT grp AS "group", id FROM t', t=T), sort=False)
    got = run1("select", {"drop": ["txt", "day"]}, EMPTY)
    assert got.column_names == ["id", "grp", "amount", "qty"]
    assert got.num_rows == 0


def test_derive_matches_duckdb_and_chains_columns() -> None:
    cfg = {
        "columns": {
            "total": "amount * qty",
            "big": "total > 20",
            "label": "upper(coalesce(grp, 'none'))",
            "id": "id + 100",
        }
    }
    got = run1("derive", cfg, T)
    expected = duck(
        "SELECT * REPLACE (id + 100 AS id), amount * qty AS total, amount * qty > 20 AS big, "
        "upper(coalesce(grp, 'none')) AS label FROM t",
        t=T,
    )
    assert_same(got, expected)
    nt = get_node_type("derive")
    assert nt.referenced_columns(nt.parse_params(cfg)) == {"in": ("amount", "qty", "grp", "id")}


def test_cast_converts_and_reports_bad_values() -> None:
    got = run1("cast", {"columns": {"qty": "float64", "day": "string", "id": "int32"}}, T)
    assert got.schema.field("qty").type == pa.float64()
    assert got.schema.field("id").type == pa.int32()
    assert got.column("day").to_pylist()[0] == "2024-01-01"
    lenient = run1("cast", {"columns": {"txt": "int64"}, "strict": False}, T)
    assert lenient.column("txt").to_pylist() == [10, None, None, 7, 3, 3]
    nt = get_node_type("cast")
    params = nt.parse_params({"columns": {"txt": "int64"}})
    from uzo_engine.nodes.types import to_polars

    with pytest.raises(Exception, match="conversion"):
        run1("cast", {"columns": {"txt": "int64"}}, T)
    message = nt.explain_error(params, {"in": to_polars(T)}, ValueError())
    assert message == "column 'txt': value 'x' cannot be converted to int64 (1 bad value(s))"
    with pytest.raises(ValidationError, match="unknown type 'integr'"):
        nt.parse_params({"columns": {"txt": "integr"}})


def test_cast_strings_to_dates_and_bools() -> None:
    t = pa.table({"d": ["2024-02-29", None], "b": ["true", "no"]})
    got = run1("cast", {"columns": {"d": "date", "b": "bool"}}, t)
    assert got.column("d").to_pylist() == [dt.date(2024, 2, 29), None]
    assert got.column("b").to_pylist() == [True, False]


def test_fill_null_modes() -> None:
    got = run1("fill_null", {"values": {"amount": 0.0, "grp": "?"}}, T)
    assert_same(
        got,
        duck(
            "SELECT * REPLACE (coalesce(grp, '?') AS grp, coalesce(amount, 0.0) AS amount) FROM t",
            t=T,
        ),
    )
    got = run1("fill_null", {"strategy": "forward", "columns": ["amount", "qty"]}, T)
    assert got.column("amount").to_pylist() == [10.0, 10.0, 30.5, 7.25, 0.0, -3.0]
    assert got.column("qty").to_pylist() == [1, 2, 2, 4, 5, 2]
    got = run1("fill_null", {"value": 0, "columns": ["qty"]}, T)
    assert got.column("qty").to_pylist() == [1, 2, 0, 4, 5, 2]
    with pytest.raises(ValidationError, match="exactly one"):
        get_node_type("fill_null").parse_params({})


@pytest.mark.parametrize("table", [T, EMPTY], ids=["rows", "empty"])
def test_sort_matches_duckdb(table: pa.Table) -> None:
    cfg = {"by": ["grp", {"column": "amount", "descending": True}]}
    got = run1("sort", cfg, table)
    expected = duck("SELECT * FROM t ORDER BY grp ASC NULLS LAST, amount DESC NULLS LAST", t=table)
    assert_same(got, expected, sort=False)


def test_limit_and_offset() -> None:
    assert run1("limit", {"n": 2}, T).column("id").to_pylist() == [1, 2]
    assert run1("limit", {"n": 2, "offset": 3}, T).column("id").to_pylist() == [4, 5]
    assert run1("limit", {"n": 0}, T).num_rows == 0
    assert run1("limit", {"n": 5}, EMPTY).num_rows == 0


def test_distinct_keep_first_last_and_full_rows() -> None:
    first = run1("distinct", {"subset": ["grp"], "keep": "first"}, T)
    assert first.column("id").to_pylist() == [1, 2, 4]
    last = run1("distinct", {"subset": ["grp"], "keep": "last"}, T)
    assert sorted(last.column("id").to_pylist()) == [4, 5, 6]
    dup = pa.concat_tables([T, T])
    assert_same(run1("distinct", {}, dup), duck("SELECT DISTINCT * FROM t", t=dup))


def test_plain_distinct_keeps_first_appearance_order_only_when_asked() -> None:
    rng = random.Random(7)
    big = pa.table({"k": pa.array([rng.randrange(20_000) for _ in range(100_000)], pa.int64())})
    first_seen = list(dict.fromkeys(big.column("k").to_pylist()))
    ordered = run1("distinct", {"maintain_order": True}, big)
    assert ordered.column("k").to_pylist() == first_seen
    assert sorted(run1("distinct", {}, big).column("k").to_pylist()) == sorted(first_seen)
    # with a subset, keep first/last decides which row survives: input order is always kept
    tagged = big.append_column("i", pa.array(range(big.num_rows), pa.int64()))
    first = run1("distinct", {"subset": ["k"]}, tagged)
    assert first.column("k").to_pylist() == first_seen
    assert first.column("i").to_pylist() == sorted(first.column("i").to_pylist())


def test_sample_is_seeded_and_bounded() -> None:
    a = run1("sample", {"n": 3, "seed": 7}, T)
    b = run1("sample", {"n": 3, "seed": 7}, T)
    assert a.equals(b)
    assert a.num_rows == 3
    assert set(a.column("id").to_pylist()) <= set(range(1, 7))
    assert run1("sample", {"n": 100}, T).num_rows == 6
    assert run1("sample", {"fraction": 0.5, "seed": 1}, T).num_rows == 3
    assert run1("sample", {"n": 3}, EMPTY).num_rows == 0
    with pytest.raises(ValidationError, match="exactly one"):
        get_node_type("sample").parse_params({"n": 1, "fraction": 0.1})


def test_rows_helper_handles_nulls() -> None:
    assert rows(pa.table({"a": [None, 1]})) == [(1,), (None,)]
