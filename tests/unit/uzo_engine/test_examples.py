"""Every workflow in examples/ validates and runs on the local executor, as the operator's
`uzo run` runs it (the operator's connector context); the TPC-H ones answer like DuckDB
SQL at scale factor 0.1, with default and chain-only fusion."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks import tpch_data as tpch
from tests.unit.uzo_engine.helpers import assert_same, duck, operator_ctx
from uzo_engine.compiler import CompileOptions
from uzo_engine.graph import WorkflowGraph
from uzo_engine.runtime.local import run_workflow
from uzo_engine.validation import validate_workflow

if TYPE_CHECKING:
    from pathlib import Path

    from uzo_engine.runtime.local import RunResult

EXAMPLES = sorted(tpch.EXAMPLES_DIR.glob("*.json"))
NON_TPCH = [p for p in EXAMPLES if not p.name.startswith("tpch_")]


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((tpch.EXAMPLES_DIR / f"{name}.json").read_text())
    return doc


def run_ok(doc: dict[str, Any], **options: Any) -> RunResult:
    result = run_workflow(doc, options=CompileOptions(**options), ctx=operator_ctx())
    assert result.status == "succeeded", result.error
    return result


def values_table(doc: dict[str, Any], node_id: str) -> pa.Table:
    """The rows of a `values` node, typed as the engine types them."""
    from uzo_engine.nodes.io import ValuesParams, values_frame

    config = next(n["data"]["config"] for n in doc["nodes"] if n["id"] == node_id)
    return values_frame(ValuesParams.model_validate(config)).to_arrow()


@pytest.fixture(scope="session")
def tpch_sf01(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TPC-H SF 0.1 Parquet (lineitem, orders, customer, nation), generated once."""
    return tpch.ensure_data(tmp_path_factory.mktemp("tpch") / "sf0.1", scale=0.1)


def test_there_are_enough_examples() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {f"tpch_{q}" for q in tpch.QUERIES} <= names
    assert len(NON_TPCH) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_a_laid_out_reactflow_document(path: Path) -> None:
    raw = json.loads(path.read_text())
    assert set(raw) == {"nodes", "edges", "viewport"}
    graph = WorkflowGraph.model_validate(raw)
    positions = {(n.position.x, n.position.y) for n in graph.nodes}
    assert len(positions) == len(graph.nodes), "two nodes drawn on the same spot"
    by_id = graph.node_map()
    for e in graph.edges:  # left to right
        assert by_id[e.source].position.x < by_id[e.target].position.x, e.id
    assert all(n.data.label for n in graph.nodes)


# the default fuses whole-table nodes and join/union input trees; "chains" only
# fuses row-wise chains (every join input and whole-table node materialised)
FUSION = [{}, {"fuse_wide": False, "fuse_joins": False}]
FUSION_IDS = ["default", "chains"]


@pytest.mark.parametrize("path", NON_TPCH, ids=lambda p: p.stem)
@pytest.mark.parametrize("fusion", FUSION, ids=FUSION_IDS)
def test_example_validates_and_runs(
    path: Path, fusion: dict[str, bool], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # sinks write relative to the current directory
    doc = json.loads(path.read_text())
    validate_workflow(doc, connectors=operator_ctx().connectors)
    result = run_ok(doc, **fusion)
    assert all(r.status in ("succeeded", "skipped") for r in result.results.values())
    assert set(result.results) == {n["id"] for n in doc["nodes"]}


def test_orders_router_matches_sql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    doc = load("orders_router")
    result = run_ok(doc)
    orders = values_table(doc, "orders")
    assert orders.num_rows == 12
    expected = duck(
        """
        SELECT region, CASE WHEN amount >= 500 THEN 'large' ELSE 'standard' END AS tier,
               count(*) AS orders, sum(amount) AS revenue,
               sum(CASE WHEN amount >= 500 THEN round(amount * 0.01, 2) ELSE 5.0 END) AS fees
        FROM orders WHERE status <> 'cancelled' AND amount IS NOT NULL
        GROUP BY ALL ORDER BY region, tier
        """,
        orders=orders,
    )
    assert_same(result.table("result"), expected, sort=False)
    written = pq.read_table(tmp_path / "orders_summary.parquet")
    assert written.equals(result.table("result"))


def test_loop_example_matches_sql() -> None:
    doc = load("loop_top_orders")
    result = run_ok(doc)
    orders = values_table(doc, "orders")
    assert orders.num_rows == 12
    expected = duck(
        """
        SELECT * FROM (
            SELECT *, row_number() OVER (
                PARTITION BY region ORDER BY amount DESC, order_id) AS rank_in_region
            FROM orders WHERE amount IS NOT NULL)
        WHERE rank_in_region <= 2 ORDER BY region, rank_in_region
        """,
        orders=orders,
    )
    assert_same(result.table("result"), expected, sort=False)


def test_window_pivot_example_matches_sql() -> None:
    doc = load("sales_window_pivot")
    result = run_ok(doc)
    sales = values_table(doc, "sales")
    assert sales.num_rows == 30
    mix = duck(
        """
        SELECT region, sum(revenue) FILTER (WHERE product = 'widget') AS widget,
               sum(revenue) FILTER (WHERE product = 'gadget') AS gadget,
               widget + gadget AS total, round(widget / total, 3) AS widget_share
        FROM sales GROUP BY region ORDER BY region
        """,
        sales=sales,
    )
    assert_same(result.table("product_mix"), mix, sort=False)
    running = duck(
        """
        WITH daily AS (SELECT region, day, sum(revenue) AS revenue FROM sales GROUP BY ALL),
        w AS (
            SELECT *, row_number() OVER r AS day_no,
                   sum(revenue) OVER (r ROWS UNBOUNDED PRECEDING) AS running_revenue,
                   avg(revenue) OVER (r ROWS 2 PRECEDING) AS avg_3d,
                   lag(revenue) OVER r AS prev_revenue
            FROM daily WINDOW r AS (PARTITION BY region ORDER BY day))
        SELECT *, revenue - prev_revenue AS change,
               rank() OVER (PARTITION BY region ORDER BY revenue DESC) AS revenue_rank
        FROM w ORDER BY region, day
        """,
        sales=sales,
    )
    assert_same(result.table("running_totals"), running, sort=False)


def test_sql_example_reports_inactive_customers() -> None:
    result = run_ok(load("sql_customer_report"))
    segments = result.table("by_segment").to_pylist()
    assert [s["segment"] for s in segments] == ["enterprise", "smb"]
    assert segments[0]["revenue"] == pytest.approx(120 + 610 + 499.99 + 980 + 500 + 75 + 530)
    assert result.table("follow_up").column("task").to_pylist() == ["call vandelay (GB)"]


def test_quality_gate_skips_the_alert_branch() -> None:
    result = run_ok(load("quality_gate"))
    assert result.status_of("alert") == "skipped"
    assert result.status_of("quarantine") == "succeeded"
    assert sorted(result.table("quarantine").column("problem").to_pylist()) == [
        "missing",
        "negative",
    ]
    assert result.table("summary").column("readings").to_pylist() == [4, 4, 5]


# ---------------------------------------------------------------- TPC-H at SF 0.1


@pytest.mark.slow
@pytest.mark.parametrize("query", tpch.QUERIES)
@pytest.mark.parametrize("fusion", FUSION, ids=FUSION_IDS)
def test_tpch_workflow_matches_duckdb(query: str, fusion: dict[str, bool], tpch_sf01: Path) -> None:
    doc = tpch.load_workflow(query, tpch_sf01)
    validate_workflow(doc, connectors=operator_ctx().connectors)  # reads the files' schemas
    result = run_ok(doc, **fusion)
    expected = tpch.duckdb_answer(query, tpch_sf01)
    assert expected.num_rows > 0
    tpch.assert_same_answer(query, result.table("result"), expected)


@pytest.mark.slow
@pytest.mark.parametrize("query", tpch.QUERIES)
def test_tpch_polars_and_pandas_references_match_duckdb(query: str, tpch_sf01: Path) -> None:
    expected = tpch.duckdb_answer(query, tpch_sf01)
    tpch.assert_same_answer(query, tpch.polars_answer(query, tpch_sf01), expected)
    tpch.assert_same_answer(query, tpch.pandas_answer(query, tpch_sf01), expected)


def test_tpch_workflow_paths_are_relative_to_the_data_dir() -> None:
    for query in tpch.QUERIES:
        sources = [
            n["data"]["config"]["path"]
            for n in load(f"tpch_{query}")["nodes"]
            if n["data"]["nodeType"] == "parquet_source"
        ]
        assert sources
        assert all(p.startswith("data/tpch/") for p in sources)
        moved = tpch.load_workflow(query, "/somewhere")
        assert all(
            n["data"]["config"]["path"].startswith("/somewhere/")
            for n in moved["nodes"]
            if n["data"]["nodeType"] == "parquet_source"
        )


def test_answer_comparison_tolerates_ties_at_the_limit_only() -> None:
    columns = ["c_custkey", "c_name", "revenue", "c_acctbal", "n_name", "c_address", "c_phone"]

    def q10(keys: list[int], revenue: list[float]) -> pa.Table:
        data: dict[str, list[Any]] = {c: ["x"] * 3 for c in [*columns, "c_comment"]}
        data.update(c_custkey=keys, revenue=revenue, c_acctbal=[1.0] * 3)
        return pa.table(data)

    expected = q10([1, 2, 3], [30.0, 20.0, 10.0])
    tpch.assert_same_answer("q10", q10([1, 2, 4], [30.0, 20.0, 10.0]), expected)  # tie at cut
    with pytest.raises(AssertionError, match="q10"):
        tpch.assert_same_answer("q10", q10([9, 2, 3], [30.0, 20.0, 10.0]), expected)
    with pytest.raises(AssertionError, match="q10"):
        tpch.assert_same_answer("q10", q10([1, 2, 3], [30.0, 20.5, 10.0]), expected)


def test_price_bands_matches_sql() -> None:
    doc = load("price_bands")
    result = run_ok(doc)
    expected = duck(
        """
        SELECT COALESCE(b.band, 'none') AS band, count(*) AS orders, sum(o.amount) AS revenue
        FROM orders o LEFT JOIN bands b ON o.amount >= b.low AND o.amount < b.high
        GROUP BY ALL ORDER BY band
        """,
        orders=values_table(doc, "orders"),
        bands=values_table(doc, "bands"),
    )
    assert_same(result.table("result"), expected, sort=False)
    assert result.table("result").column("band").to_pylist() == ["large", "medium", "none", "small"]
