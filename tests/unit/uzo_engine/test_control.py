"""Router, branch and loop semantics, run through the local executor."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from tests.unit.uzo_engine.helpers import chain, duck, edge, node, rows, values
from uzo_engine.events import CollectingSink
from uzo_engine.runtime.local import run_workflow
from uzo_engine.validation import validation_errors

DATA = pa.table(
    {
        "id": [1, 2, 3, 4, 5],
        "g": ["a", "b", "a", "c", "b"],
        "v": pa.array([10.0, None, 30.0, 40.0, 50.0]),
    }
)


def routed(condition: str) -> dict[str, Any]:
    return {
        "nodes": [
            values("src", DATA),
            node("r", "router", condition=condition),
            node("yes", "select", columns=["id"]),
            node("no", "select", columns=["id"]),
        ],
        "edges": [
            edge("src", "r"),
            edge("r", "yes", source_handle="true"),
            edge("r", "no", source_handle="false"),
        ],
    }


def test_router_splits_rows_null_goes_to_false() -> None:
    result = run_workflow(routed("v > 20"))
    assert result.status == "succeeded"
    assert result.table("yes").column("id").to_pylist() == [3, 4, 5]
    assert result.table("no").column("id").to_pylist() == [1, 2]
    expected_false = duck("SELECT id FROM t WHERE NOT coalesce(v > 20, false)", t=DATA)
    assert rows(result.table("no")) == rows(expected_false)
    assert result.results["r"].rows_out == 5


def test_router_validates_its_condition() -> None:
    errors = validation_errors(routed("nope = 1"))
    assert [(e.code, e.node_id, e.column) for e in errors] == [("missing_column", "r", "nope")]


def branch_doc(condition: str, source: pa.Table) -> dict[str, Any]:
    return {
        "nodes": [
            values("src", source),
            node("b", "branch", condition=condition),
            node("f", "filter", condition="id > 0"),
            node("agg", "aggregate", aggregations=[{"func": "count", "alias": "n"}]),
            node("other", "select", columns=["id"]),
        ],
        "edges": [edge("src", "b"), edge("b", "f"), edge("f", "agg"), edge("src", "other")],
    }


def test_branch_passes_when_condition_holds() -> None:
    result = run_workflow(branch_doc("row_count > 0", DATA))
    assert result.status == "succeeded"
    assert result.table("agg").to_pylist() == [{"n": 5}]


def test_branch_skips_downstream_when_condition_fails() -> None:
    sink = CollectingSink()
    result = run_workflow(branch_doc("row_count > 0", DATA.slice(0, 0)), sink=sink)
    assert result.status == "succeeded"  # skipped is not failed
    assert result.status_of("b") == "succeeded"
    assert result.status_of("f") == "skipped"
    assert result.status_of("agg") == "skipped"
    assert result.status_of("other") == "succeeded"
    assert sink.final()["agg"].status == "skipped"
    assert (
        run_workflow(branch_doc("row_count >= 3 AND column_count = 3", DATA)).status_of("agg")
        == "succeeded"
    )


def test_branch_rejects_unknown_variables() -> None:
    errors = validation_errors(branch_doc("rows > 0", DATA))
    assert errors[0].code == "invalid_config"
    assert "unknown variable 'rows'" in errors[0].message


def sub_workflow() -> dict[str, Any]:
    return chain(
        node("item", "loop_input"),
        node(
            "agg",
            "aggregate",
            group_by=["g"],
            aggregations=[
                {"func": "sum", "column": "v", "alias": "total"},
                {"func": "count", "alias": "n"},
            ],
        ),
        node("d", "derive", columns={"doubled": "total * 2"}),
    )


def loop_doc(**config: Any) -> dict[str, Any]:
    return chain(
        values("src", DATA),
        node("loop", "loop", workflow=sub_workflow(), input_node="item", output_node="d", **config),
        node("after", "sort", by=["g"]),
    )


def test_loop_per_partition_matches_group_by() -> None:
    result = run_workflow(loop_doc(partition_by=["g"], max_parallel=2))
    assert result.status == "succeeded", result.error
    expected = duck(
        "SELECT g, sum(v) AS total, count(*) AS n, sum(v) * 2 AS doubled "
        "FROM t GROUP BY g ORDER BY g",
        t=DATA,
    )
    assert rows(result.table("after"), sort=False) == rows(expected, sort=False)


def test_loop_per_row_and_per_chunk() -> None:
    per_row = run_workflow(loop_doc())
    assert per_row.table("after").num_rows == 5
    chunks = run_workflow(loop_doc(chunk_size=2))
    assert chunks.table("after").num_rows == 5  # chunks [a,b] [a,c] [b]: 2 + 2 + 1 groups


def test_loop_output_schema_is_inferred_statically() -> None:
    doc = loop_doc(partition_by=["g"])
    doc["nodes"].append(node("bad", "filter", condition="missing > 0"))
    doc["edges"].append(edge("loop", "bad"))
    errors = validation_errors(doc)
    assert [(e.code, e.node_id, e.column) for e in errors] == [("missing_column", "bad", "missing")]


def test_loop_is_bounded() -> None:
    result = run_workflow(loop_doc(max_iterations=3))
    assert result.status == "failed"
    assert "would run 5 iterations; max_iterations is 3" in (result.error or "")


def test_loop_sub_workflow_errors_name_the_node() -> None:
    sub = chain(node("item", "loop_input"), node("bad", "filter", condition="nope > 1"))
    doc = chain(
        values("src", DATA),
        node("loop", "loop", workflow=sub, input_node="item", output_node="bad"),
    )
    errors = validation_errors(doc)
    assert [(e.node_id, e.code) for e in errors] == [("loop", "missing_column")]
    assert "sub-workflow: node 'bad'" in errors[0].message
    bad_ref = chain(
        values("src", DATA), node("loop", "loop", workflow=sub, input_node="bad", output_node="bad")
    )
    assert "must be a loop_input node" in validation_errors(bad_ref)[0].message


def test_loop_failure_inside_iteration_fails_the_loop() -> None:
    sub = chain(node("item", "loop_input"), node("c", "cast", columns={"g": "int64"}))
    doc = chain(
        values("src", DATA), node("loop", "loop", workflow=sub, input_node="item", output_node="c")
    )
    result = run_workflow(doc)
    assert result.status == "failed"
    assert "node 'loop' (loop): iteration 0: node 'c' (cast): column 'g'" in (result.error or "")


def test_loop_over_empty_input_yields_empty_typed_output() -> None:
    doc = chain(
        values("src", DATA.slice(0, 0)),
        node(
            "loop",
            "loop",
            workflow=sub_workflow(),
            input_node="item",
            output_node="d",
            partition_by=["g"],
        ),
    )
    result = run_workflow(doc)
    assert result.status == "succeeded"
    out = result.table("loop")
    assert out.num_rows == 0
    assert out.column_names == ["g", "total", "n", "doubled"]


@pytest.mark.parametrize("node_type", ["loop_input"])
def test_loop_input_outside_a_loop_fails_clearly(node_type: str) -> None:
    result = run_workflow({"nodes": [node("x", node_type)], "edges": []})
    assert result.status == "failed"
    assert "only runs inside a loop" in (result.error or "")
