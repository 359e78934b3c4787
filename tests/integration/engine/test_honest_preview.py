"""Honest previews: a preview shows the node's true first rows, or says it sampled.

TPC-H SF 0.01 (lineitem 60,175 rows, orders 15,000, customer 1,500): a join or an
aggregate of 1,000-row heads gives other answers than the whole tables (Q3's join of
such heads is nearly empty, Q1's sums are those of 1,000 lines). A preview with the
default budget (1,000,000 rows per source) reads everything here and must equal the
full run; with the budget lowered to 1,000 rows it must say ``sampled`` and the rows
each source read. Most tests run in this process (``LocalPreviewRunner``, the executor
core on the in-process backend); one runs on the Ray runtime.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest
from typer.testing import CliRunner

from benchmarks import tpch_data as tpch
from uzo_api.cli import app
from uzo_engine.compiler import CompileOptions, compile_workflow
from uzo_engine.runtime.local import LocalExecutor, LocalPreviewRunner
from uzo_engine.runtime.preview import PreviewCache, PreviewResult, preview_node

if TYPE_CHECKING:
    from pathlib import Path

    from uzo_engine.runtime.engine import Runtime

pytestmark = pytest.mark.integration

SOURCES_Q3 = {"customer": 1_500, "orders": 15_000, "lineitem": 60_175}


@pytest.fixture(scope="module")
def tpch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tpch.ensure_data(tmp_path_factory.mktemp("tpch") / "sf0.01", scale=0.01)


def _preview_plan(doc: dict[str, Any], node: str) -> Any:
    options = CompileOptions(
        upstream_of=node, materialize=frozenset({node}), fuse_joins=False, profile=False
    )
    return compile_workflow(doc, options=options)


def _preview(
    doc: dict[str, Any],
    node: str,
    limit: int,
    budget: int | None = 1_000_000,
    cache: PreviewCache | None = None,
) -> PreviewResult:
    ctx = tpch.operator_context(f"preview-{node}", preview_limit=budget)
    result = preview_node(
        LocalPreviewRunner(), _preview_plan(doc, node), node, limit=limit, ctx=ctx, cache=cache
    )
    assert result.status == "succeeded", result.error
    return result


def _full(doc: dict[str, Any], node: str) -> list[dict[str, Any]]:
    """The node's whole output in a full run (no budget, nothing limited)."""
    plan = compile_workflow(doc, options=CompileOptions(materialize=frozenset({node})))
    run = LocalExecutor().run(plan, tpch.operator_context(f"full-{node}"))
    assert run.status == "succeeded", run.error
    rows: list[dict[str, Any]] = run.table(node).to_pylist()
    return rows


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def test_join_preview_is_the_joins_true_rows(tpch_dir: Path) -> None:
    doc = tpch.load_workflow("q3", tpch_dir)
    full = _full(doc, "order_lines")
    assert 100 < len(full) < 10_000  # a 1,000-row head of each source joins to almost none
    whole = _preview(doc, "order_lines", limit=10_000)
    assert not whole.sampled
    assert whole.source_rows == SOURCES_Q3
    assert whole.sampled_sources == []
    assert _sorted(whole.rows) == _sorted(full)  # a join does not order: compared as sets
    assert whole.profile["row_count"] == len(full)
    head = _preview(doc, "order_lines", limit=20)
    assert len(head.rows) == 20
    assert not head.sampled
    full_keys = {json.dumps(r, sort_keys=True, default=str) for r in full}
    assert {json.dumps(r, sort_keys=True, default=str) for r in head.rows} <= full_keys


def test_aggregate_and_ordered_previews_equal_the_full_run(tpch_dir: Path) -> None:
    q3 = tpch.load_workflow("q3", tpch_dir)
    top = _preview(q3, "result", limit=10)
    assert not top.sampled
    assert top.rows == _full(q3, "result")  # sorted then limited: same rows, same order
    revenue = _preview(q3, "revenue", limit=10_000)
    assert _sorted(revenue.rows) == _sorted(_full(q3, "revenue"))
    q1 = tpch.load_workflow("q1", tpch_dir)
    last = q1["nodes"][-1]["id"]
    answer = _preview(q1, last, limit=100)
    assert not answer.sampled
    assert answer.source_rows == {"lineitem": 60_175}
    tpch.assert_same_answer("q1", pl.DataFrame(answer.rows), pl.DataFrame(_full(q1, last)))
    tpch.assert_same_answer("q1", pl.DataFrame(answer.rows), tpch.duckdb_answer("q1", tpch_dir))


def test_a_lowered_budget_marks_a_join_and_an_aggregate_sampled(tpch_dir: Path) -> None:
    q3 = tpch.load_workflow("q3", tpch_dir)
    join = _preview(q3, "order_lines", limit=100, budget=1_000)
    assert join.sampled
    assert join.source_row_budget == 1_000
    assert join.source_rows == dict.fromkeys(SOURCES_Q3, 1_000)
    assert sorted(join.sampled_sources) == sorted(SOURCES_Q3)
    assert len(join.rows) < 100 <= len(_full(q3, "order_lines"))  # the sample's answer
    q1 = tpch.load_workflow("q1", tpch_dir)
    agg = _preview(q1, q1["nodes"][-1]["id"], limit=100, budget=1_000)
    assert agg.sampled
    assert agg.source_rows == {"lineitem": 1_000}


def test_a_row_wise_chain_that_fills_the_limit_is_exact_within_any_budget(
    tpch_dir: Path,
) -> None:
    q3 = tpch.load_workflow("q3", tpch_dir)
    shown = _preview(q3, "late_lines", limit=20, budget=1_000)
    assert shown.source_rows == {"lineitem": 1_000}  # the source reached its budget...
    assert shown.sampled_sources == ["lineitem"]
    assert not shown.sampled  # ...but the first 20 filtered lines are the first 20 of all
    assert shown.rows == _full(q3, "late_lines")[:20]
    source = _preview(q3, "lineitem", limit=5, budget=1_000)
    assert not source.sampled
    assert source.rows == _full(q3, "lineitem")[:5]


def test_the_cached_target_depends_on_the_limit(tpch_dir: Path) -> None:
    q3 = tpch.load_workflow("q3", tpch_dir)
    cache = PreviewCache()
    first = _preview(q3, "order_lines", limit=5, cache=cache)
    again = _preview(q3, "order_lines", limit=5, cache=cache)
    assert again.executed_steps == []
    assert again.rows == first.rows
    assert again.source_rows == first.source_rows  # from the cached steps' results
    more = _preview(q3, "order_lines", limit=50, cache=cache)
    assert more.executed_steps == ["order_lines"]  # the upstream steps stay cached
    assert len(more.rows) == 50


def test_cli_prints_the_profile_and_says_sampled(tpch_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "q3.json"
    path.write_text(json.dumps(tpch.load_workflow("q3", tpch_dir)))
    runner = CliRunner()
    args = ["preview", "--local", str(path), "order_lines", "--limit", "5"]
    exact = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert exact.exit_code == 0, exact.stdout
    assert "profile of the 5 rows shown" in exact.stdout
    assert "l_orderkey" in exact.stdout
    assert "sampled" not in exact.stdout
    assert "lineitem 60,175" in exact.stdout
    sampled = runner.invoke(app, [*args, "--max-source-rows", "1000"], env={"COLUMNS": "200"})
    assert sampled.exit_code == 0, sampled.stdout
    assert "sampled" in sampled.stdout
    assert "profile of the" in sampled.stdout
    doc = json.loads(runner.invoke(app, [*args, "--json", "--max-source-rows", "1000"]).stdout)
    assert doc["sampled"] is True
    assert doc["max_source_rows"] == 1_000
    assert doc["source_rows"] == dict.fromkeys(SOURCES_Q3, 1_000)
    assert doc["profile"]["row_count"] == len(doc["rows"])


@pytest.mark.slow
def test_ray_preview_of_a_join_is_true_or_sampled(runtime: Runtime, tpch_dir: Path) -> None:
    q3 = tpch.load_workflow("q3", tpch_dir)
    plan = _preview_plan(q3, "order_lines")
    ctx = tpch.operator_context("ray-preview")  # the budget: the runtime's setting
    whole = runtime.preview(plan, "order_lines", limit=10_000, ctx=ctx)
    assert whole.status == "succeeded", whole.error
    assert (whole.sampled, whole.source_row_budget) == (False, 1_000_000)
    assert _sorted(whole.rows) == _sorted(_full(q3, "order_lines"))
    low = tpch.operator_context("ray-preview-low", preview_limit=1_000)
    sampled = runtime.preview(plan, "order_lines", limit=100, ctx=low)
    assert sampled.sampled
    assert sampled.source_rows == dict.fromkeys(SOURCES_Q3, 1_000)
