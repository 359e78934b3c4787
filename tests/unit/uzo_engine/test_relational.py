"""aggregate, join, union, pivot, unpivot, window against DuckDB or hand-computed data."""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from tests.unit.uzo_engine.helpers import assert_same, duck, rows, run1, run_node
from uzo_engine.nodes.base import SchemaError
from uzo_engine.nodes.registry import get_node_type
from uzo_engine.nodes.types import polars_schema

T = pa.table(
    {
        "k": pa.array(["a", "b", "a", None, "b", "a", "c"]),
        "k2": pa.array([1, 1, 2, 1, 1, 1, 3], pa.int32()),
        "v": pa.array([10.0, None, 30.5, 7.25, 0.0, -3.0, None]),
        "n": pa.array([1, 2, None, 4, 5, 2, None], pa.int64()),
    }
)
EMPTY = T.slice(0, 0)

AGGS = [
    {"func": "sum", "column": "v"},
    {"func": "count", "column": "v"},
    {"func": "count", "alias": "rows"},
    {"func": "count_distinct", "column": "n"},
    {"func": "avg", "column": "v"},
    {"func": "min", "column": "n"},
    {"func": "max", "column": "v"},
    {"func": "median", "column": "v"},
    {"func": "std", "column": "v"},
]
AGG_SQL = (
    "sum(v) AS sum_v, count(v) AS count_v, count(*) AS rows, count(DISTINCT n) AS "
    "count_distinct_n, avg(v) AS avg_v, min(n) AS min_n, max(v) AS max_v, median(v) AS median_v, "
    "stddev_samp(v) AS std_v"
)


@pytest.mark.parametrize("table", [T, EMPTY], ids=["rows", "empty"])
def test_aggregate_grouped_matches_duckdb(table: pa.Table) -> None:
    got = run1("aggregate", {"group_by": ["k", "k2"], "aggregations": AGGS}, table)
    assert_same(got, duck(f"SELECT k, k2, {AGG_SQL} FROM t GROUP BY k, k2", t=table))


@pytest.mark.parametrize("table", [T, EMPTY], ids=["rows", "empty"])
def test_aggregate_global_matches_duckdb(table: pa.Table) -> None:
    got = run1("aggregate", {"aggregations": AGGS}, table)
    assert_same(got, duck(f"SELECT {AGG_SQL} FROM t", t=table))


def test_aggregate_first_last_and_all_null_sum() -> None:
    t = pa.table({"g": ["x", "x", "y"], "v": pa.array([None, None, 1.0], pa.float64())})
    got = run1(
        "aggregate",
        {
            "group_by": ["g"],
            "aggregations": [
                {"func": "sum", "column": "v"},
                {"func": "first", "column": "v", "alias": "f"},
                {"func": "last", "column": "g", "alias": "l"},
            ],
        },
        t,
    )
    assert sorted(got.to_pylist(), key=lambda r: r["g"]) == [  # group order is not kept
        {"g": "x", "sum_v": None, "f": None, "l": "x"},
        {"g": "y", "sum_v": 1.0, "f": 1.0, "l": "y"},
    ]


# many groups in random order: Polars' parallel hash group-by / join do not keep it by default
ORDER_ROWS = 100_000
_rng = random.Random(42)
BIG = pa.table(
    {
        "k": pa.array([_rng.randrange(20_000) for _ in range(ORDER_ROWS)], pa.int64()),
        "i": pa.array(range(ORDER_ROWS), pa.int64()),
    }
)


def test_aggregate_keeps_first_appearance_order_only_when_asked() -> None:
    cfg: dict[str, Any] = {"group_by": ["k"], "aggregations": [{"func": "min", "column": "i"}]}
    ordered = run1("aggregate", {**cfg, "maintain_order": True}, BIG)
    first_seen = list(dict.fromkeys(BIG.column("k").to_pylist()))
    assert ordered.column("k").to_pylist() == first_seen
    assert ordered.column("min_i").to_pylist() == sorted(ordered.column("min_i").to_pylist())
    default = run1("aggregate", cfg, BIG)
    assert rows(default) == rows(ordered)  # same groups, in no promised order


def test_join_keeps_the_preserved_sides_order_only_when_asked() -> None:
    keys = list(range(0, 20_000, 2))
    _rng.shuffle(keys)
    right = pa.table({"k": pa.array(keys, pa.int64()), "r": pa.array(range(len(keys)), pa.int64())})
    r_of = dict(zip(keys, range(len(keys)), strict=True))
    inputs = {"left": BIG, "right": right}
    ordered = run_node("join", {"on": ["k"], "maintain_order": True}, inputs)["out"]
    expected = [
        (k, i, r_of[k]) for k, i in zip(*BIG.to_pydict().values(), strict=True) if k in r_of
    ]
    assert rows(ordered, sort=False) == expected  # left order
    default = run_node("join", {"on": ["k"]}, inputs)["out"]
    assert rows(default) == rows(ordered)
    # a right join keeps the right side's order
    cfg = {"how": "right", "on": ["k"], "maintain_order": True}
    by_right = run_node("join", cfg, {"left": right, "right": BIG})["out"]
    assert by_right.column("i").to_pylist() == BIG.column("i").to_pylist()
    cfg = {"how": "right", "on": ["k"]}
    assert rows(run_node("join", cfg, {"left": right, "right": BIG})["out"]) == rows(by_right)


def test_union_distinct_keeps_first_appearance_order_only_when_asked() -> None:
    keys = BIG.select(["k"])
    ordered = run_node("union", {"distinct": True, "maintain_order": True}, {"a": keys, "b": keys})
    first_seen = list(dict.fromkeys(keys.column("k").to_pylist()))
    assert ordered["out"].column("k").to_pylist() == first_seen
    default = run_node("union", {"distinct": True}, {"a": keys, "b": keys})["out"]
    assert sorted(default.column("k").to_pylist()) == sorted(first_seen)


def test_aggregate_rejects_sum_of_strings_and_missing_columns() -> None:
    nt = get_node_type("aggregate")
    schema = {"in": polars_schema(T.schema)}
    with pytest.raises(SchemaError, match="numeric") as e:
        nt.infer_schema(nt.parse_params({"aggregations": [{"func": "sum", "column": "k"}]}), schema)
    assert e.value.column == "k"
    with pytest.raises(SchemaError, match="'zz' does not exist"):
        nt.infer_schema(
            nt.parse_params({"group_by": ["zz"], "aggregations": [{"func": "count"}]}), schema
        )
    with pytest.raises(ValidationError, match="needs a `column`"):
        nt.parse_params({"aggregations": [{"func": "sum"}]})


L = pa.table(
    {
        "id": pa.array([1, 2, 2, 3, None], pa.int64()),
        "x": ["a", "b", "c", "d", "e"],
        "y": [1, 2, 3, 4, 5],
    }
)
R = pa.table(
    {"id": pa.array([2, 3, 4, None], pa.int32()), "y": [20, 30, 40, 50], "z": ["p", "q", "r", "s"]}
)


@pytest.mark.parametrize(
    ("how", "sql"),
    [
        ("inner", "SELECT l.*, r.y AS y_right, r.z FROM l JOIN r USING (id)"),
        ("left", "SELECT l.*, r.y AS y_right, r.z FROM l LEFT JOIN r USING (id)"),
        ("right", "SELECT r.id, l.x, l.y, r.y AS y_right, r.z FROM l RIGHT JOIN r USING (id)"),
        (
            "full",
            "SELECT coalesce(l.id, r.id) AS id, l.x, l.y, r.y AS y_right, r.z "
            "FROM l FULL JOIN r ON l.id = r.id",
        ),
        ("semi", "SELECT * FROM l SEMI JOIN r USING (id)"),
        ("anti", "SELECT * FROM l ANTI JOIN r USING (id)"),
    ],
)
def test_join_matches_duckdb(how: str, sql: str) -> None:
    got = run_node("join", {"how": how, "on": ["id"]}, {"left": L, "right": R})["out"]
    expected = duck(sql, l=L, r=R)
    assert sorted(got.column_names) == sorted(expected.column_names)
    assert_same(got.select(expected.column_names), expected)


def test_join_multi_key_left_on_right_on_and_cross() -> None:
    right = R.rename_columns(["rid", "ry", "z"])
    got = run_node(
        "join",
        {"how": "inner", "left_on": ["id", "y"], "right_on": ["rid", "ry"]},
        {"left": L, "right": right},
    )["out"]
    assert got.num_rows == 0
    r2 = pa.table({"rid": pa.array([2, 2], pa.int64()), "ry": [2, 3], "w": [1, 2]})
    got = run_node(
        "join", {"left_on": ["id", "y"], "right_on": ["rid", "ry"]}, {"left": L, "right": r2}
    )["out"]
    expected = duck("SELECT * FROM l JOIN r ON l.id = r.rid AND l.y = r.ry", l=L, r=r2)
    assert_same(got, expected)
    cross = run_node("join", {"how": "cross", "suffix": "_r"}, {"left": L, "right": R})["out"]
    assert cross.num_rows == 20
    assert "id_r" in cross.column_names


def test_join_rejects_incompatible_keys() -> None:
    nt = get_node_type("join")
    schemas = {
        "left": polars_schema(L.schema),
        "right": polars_schema(R.schema.set(2, pa.field("z", pa.string()))),
    }
    params = nt.parse_params({"left_on": ["x"], "right_on": ["id"]})
    with pytest.raises(SchemaError, match="incompatible types") as e:
        nt.infer_schema(params, schemas)
    assert e.value.code == "incompatible_join_keys"
    assert e.value.column == "x"
    with pytest.raises(ValidationError, match="join keys"):
        nt.parse_params({"how": "inner"})


def test_join_with_empty_side() -> None:
    got = run_node("join", {"how": "left", "on": ["id"]}, {"left": L, "right": R.slice(0, 0)})
    assert got["out"].num_rows == 5


def test_union_by_name_unifies_types() -> None:
    a = pa.table({"id": pa.array([1, 2], pa.int32()), "name": ["x", "y"]})
    b = pa.table({"name": ["z"], "id": pa.array([3.5], pa.float64()), "extra": [True]})
    got = run_node("union", {}, {"a": a, "b": b})["out"]
    assert got.schema.field("id").type == pa.float64()
    assert got.to_pylist() == [
        {"id": 1.0, "name": "x", "extra": None},
        {"id": 2.0, "name": "y", "extra": None},
        {"id": 3.5, "name": "z", "extra": True},
    ]
    expected = duck("SELECT * FROM a UNION ALL BY NAME SELECT * FROM b", a=a, b=b)
    assert_same(got, expected, names=False)
    dup = run_node("union", {"distinct": True}, {"a": a, "b": a})["out"]
    assert dup.num_rows == 2


def test_union_rejects_incompatible_schemas() -> None:
    nt = get_node_type("union")
    a = polars_schema(pa.schema([("id", pa.int64())]))
    b = polars_schema(pa.schema([("id", pa.string())]))
    with pytest.raises(SchemaError, match="column 'id'") as e:
        nt.infer_schema(nt.parse_params({}), {"a": a, "b": b})
    assert e.value.code == "incompatible_union"
    c = polars_schema(pa.schema([("other", pa.int64())]))
    with pytest.raises(SchemaError, match="lacks column"):
        nt.infer_schema(nt.parse_params({"allow_missing": False}), {"a": a, "c": c})


SALES = pa.table(
    {
        "region": ["eu", "eu", "us", "us", "us", "ap"],
        "q": ["q1", "q2", "q1", "q1", "q3", None],
        "amount": [1.0, 2.0, 3.0, 4.0, None, 6.0],
    }
)


def test_pivot_matches_duckdb() -> None:
    cfg = {
        "index": ["region"],
        "on": "q",
        "values": "amount",
        "aggregate": "sum",
        "columns": ["q1", "q2", "q3", "q4"],
    }
    got = run1("pivot", cfg, SALES)
    expected = duck(
        "SELECT region, sum(amount) FILTER (q = 'q1') AS q1, sum(amount) FILTER (q = 'q2') AS q2,"
        " sum(amount) FILTER (q = 'q3') AS q3, sum(amount) FILTER (q = 'q4') AS q4 "
        "FROM t WHERE q IN ('q1','q2','q3','q4') GROUP BY region",
        t=SALES,
    )
    assert_same(got, expected)
    dynamic = run_node(
        "pivot",
        {"index": ["region"], "on": "q", "values": "amount"},
        {"in": SALES},
        check_schema=False,
    )["out"]
    assert dynamic.column_names == ["region", "q1", "q2", "q3"]


def test_unpivot_matches_duckdb() -> None:
    wide = pa.table({"id": [1, 2], "a": [1.0, None], "b": [3.0, 4.0]})
    got = run1("unpivot", {"index": ["id"], "variable_name": "k", "value_name": "val"}, wide)
    expected = duck("UNPIVOT t ON a, b INTO NAME k VALUE val", t=wide)
    # DuckDB drops NULL values by default; UZO keeps them (like INCLUDE NULLS)
    assert_same(got.filter(got.column("val").is_valid()), expected)
    assert (1, "a", 1.0) in [tuple(r.values()) for r in got.to_pylist()]
    assert {"id": 2, "k": "a", "val": None} in got.to_pylist()
    assert got.num_rows == 4


W = pa.table(
    {
        "p": ["x", "x", "x", "y", "y", "x", None],
        "o": pa.array([3, 1, 2, 5, 5, 2, 1], pa.int64()),
        "v": pa.array([1.0, 2.0, None, 4.0, 5.0, 6.0, 7.0]),
    }
)


def test_window_matches_duckdb() -> None:
    funcs = [
        {"func": "row_number", "alias": "rn"},
        {"func": "rank", "alias": "rk"},
        {"func": "dense_rank", "alias": "drk"},
        {"func": "lag", "column": "v", "alias": "prev"},
        {"func": "lead", "column": "v", "alias": "nxt", "offset": 2, "default": -1.0},
        {"func": "cum_sum", "column": "v", "alias": "cs"},
        {"func": "cum_max", "column": "v", "alias": "cm"},
        {"func": "cum_count", "column": "v", "alias": "cc"},
        {"func": "moving_avg", "column": "v", "alias": "ma", "size": 2},
        {"func": "sum", "column": "v", "alias": "total"},
    ]
    cfg = {
        "partition_by": ["p"],
        "order_by": ["o", {"column": "v", "descending": True}],
        "functions": funcs,
    }
    got = run1("window", cfg, W)
    w = "PARTITION BY p ORDER BY o ASC NULLS LAST, v DESC NULLS LAST"
    rows_frame = f"({w} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    expected = duck(
        f"SELECT *, row_number() OVER ({w}) AS rn, rank() OVER ({w}) AS rk, "
        f"dense_rank() OVER ({w}) AS drk, lag(v) OVER ({w}) AS prev, "
        f"lead(v, 2, -1.0) OVER ({w}) AS nxt, sum(v) OVER {rows_frame} AS cs, "
        f"max(v) OVER {rows_frame} AS cm, count(v) OVER {rows_frame} AS cc, "
        f"avg(v) OVER ({w} ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS ma, "
        "sum(v) OVER (PARTITION BY p) AS total FROM t",
        t=W,
    )
    assert_same(got, expected)
    assert got.column("p").to_pylist() == W.column("p").to_pylist()  # input order kept


def test_window_needs_order_for_ranking() -> None:
    nt = get_node_type("window")
    params = nt.parse_params({"functions": [{"func": "rank", "alias": "r"}]})
    with pytest.raises(SchemaError, match="needs `order_by`"):
        nt.infer_schema(params, {"in": polars_schema(W.schema)})
    assert (
        run1(
            "window",
            {"order_by": ["o"], "functions": [{"func": "row_number", "alias": "r"}]},
            W.slice(0, 0),
        ).num_rows
        == 0
    )
