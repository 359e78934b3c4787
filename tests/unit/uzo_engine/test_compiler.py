"""Compiler: fusion, materialisation points, stages, settings, picklable runners."""

from __future__ import annotations

import pickle

import pyarrow as pa
import pytest

from tests.unit.uzo_engine.helpers import chain, edge, node, values
from uzo_engine.compiler import CompileOptions, FusedRunner, NodeRunner, compile_workflow
from uzo_engine.plan import StepContext
from uzo_engine.runtime.local import LocalExecutor, run_workflow
from uzo_engine.validation import WorkflowValidationError

SRC = values(
    "src", pa.table({"id": [1, 2, 3, 4], "v": [1.5, None, 3.0, -1.0], "s": ["a", "b", "c", "d"]})
)
ROWWISE = [
    node("f", "filter", condition="id > 1"),
    node("d", "derive", columns={"w": "coalesce(v, 0) * 2"}),
    node("c", "cast", columns={"id": "int32"}),
    node("n", "fill_null", values={"v": 0.0}),
    node("s", "select", drop=["s"], rename={"w": "double_v"}),
]


def test_five_node_rowwise_chain_is_one_step() -> None:
    plan = compile_workflow(
        chain(*ROWWISE[:1], *ROWWISE[1:])
        | {"nodes": [SRC, *ROWWISE], "edges": chain(SRC, *ROWWISE)["edges"]}
    )
    assert [s.node_ids for s in plan.steps.values()] == [("src", "f", "d", "c", "n", "s")]
    step = plan.steps["src"]
    assert isinstance(step.runner, FusedRunner)
    assert step.outputs == ("out",)
    assert plan.node_to_step == dict.fromkeys(["src", "f", "d", "c", "n", "s"], "src")
    result = LocalExecutor().run(plan)
    assert result.status == "succeeded"
    assert result.table("s").to_pylist() == [
        {"id": 2, "v": 0.0, "double_v": 0.0},
        {"id": 3, "v": 3.0, "double_v": 6.0},
        {"id": 4, "v": -1.0, "double_v": -2.0},
    ]
    # per-node results even when fused: schema per node, rows at the boundary
    assert [c.name for c in result.results["d"].output_schema] == ["id", "v", "s", "w"]
    assert result.results["c"].output_schema[0].dtype == "int32"
    assert result.results["s"].rows_out == 3
    assert result.results["f"].rows_out == -1
    assert result.results["s"].profile is not None
    assert result.results["s"].profile["row_count"] == 3


def test_fan_out_materialises() -> None:
    doc = {
        "nodes": [
            SRC,
            *ROWWISE[:2],
            node("g", "filter", condition="id < 4"),
            node("h", "select", columns=["id"]),
        ],
        "edges": [edge("src", "f"), edge("f", "d"), edge("f", "g"), edge("g", "h")],
    }
    plan = compile_workflow(doc)
    assert sorted(s.node_ids for s in plan.steps.values()) == [("d",), ("g", "h"), ("src", "f")]
    assert {(i.step_id, i.output_port) for i in plan.steps["g"].inputs} == {("src", "out")}
    result = LocalExecutor().run(plan)
    assert result.table("h").column("id").to_pylist() == [2, 3]
    assert result.table("d").num_rows == 3


def test_whole_table_nodes_fuse_by_default() -> None:
    doc = chain(
        SRC,
        node("f", "filter", condition="id > 0"),
        node("a", "aggregate", aggregations=[{"func": "count", "alias": "n"}]),
        node("d", "derive", columns={"m": "n * 10"}),
    )
    wide = compile_workflow(doc)
    assert [s.node_ids for s in wide.steps.values()] == [("src", "f", "a", "d")]
    assert LocalExecutor().run(wide).table("d").to_pylist() == [{"n": 4, "m": 40}]
    # without fuse_wide a whole-table node starts a new step (and can head a chain)
    narrow = compile_workflow(doc, options=CompileOptions(fuse_wide=False))
    assert [s.node_ids for s in narrow.steps.values()] == [("src", "f"), ("a", "d")]
    unfused = compile_workflow(doc, options=CompileOptions(fuse=False))
    assert len(unfused.steps) == 4


def test_eager_nodes_are_their_own_steps_and_joins_absorb_their_inputs() -> None:
    doc = {
        "nodes": [
            SRC,
            values("other", pa.table({"id": [2, 3], "z": ["x", "y"]})),
            node("j", "join", on=["id"]),
            node("f", "filter", condition="z = 'x'"),
            node("q", "sql", query="SELECT count(*) AS n FROM f"),
        ],
        "edges": [
            edge("src", "j", target_handle="left"),
            edge("other", "j", target_handle="right"),
            edge("j", "f"),
            edge("f", "q"),
        ],
    }
    plan = compile_workflow(doc)
    assert [s.node_ids for s in plan.steps.values()] == [("src", "other", "j", "f"), ("q",)]
    assert isinstance(plan.steps["q"].runner, NodeRunner)
    assert plan.steps["src"].inputs == ()
    assert plan.steps["q"].inputs[0].port == "f"
    assert plan.steps["q"].inputs[0].step_id == "src"
    assert LocalExecutor().run(plan).table("q").to_pylist() == [{"n": 1}]
    # without fuse_joins every input of a join is materialised first
    split = compile_workflow(doc, options=CompileOptions(fuse_joins=False))
    assert [s.node_ids for s in split.steps.values()] == [("src",), ("other",), ("j", "f"), ("q",)]
    inputs = {(i.port, i.step_id) for i in split.steps["j"].inputs}
    assert inputs == {("left", "src"), ("right", "other")}
    assert LocalExecutor().run(split).table("q").to_pylist() == [{"n": 1}]


def test_materialize_option_breaks_chain_for_preview() -> None:
    doc = chain(SRC, *ROWWISE)
    plan = compile_workflow(doc, options=CompileOptions(materialize=frozenset({"d"})))
    assert [s.node_ids for s in plan.steps.values()] == [("src", "f", "d"), ("c", "n", "s")]
    sub = compile_workflow(doc, options=CompileOptions(upstream_of="d"))
    assert [s.node_ids for s in sub.steps.values()] == [("src", "f", "d")]
    result = LocalExecutor().run(sub, StepContext(execution_id="p", preview_limit=2))
    assert result.table("d").num_rows == 1  # two source rows, one passes id > 1


def test_stages_are_topological_slices_with_a_cap() -> None:
    nodes = [SRC]
    edges = []
    for i in range(10):
        nodes.append(
            node(f"a{i}", "aggregate", aggregations=[{"func": "count", "alias": "n"}])
            if i == 0
            else node(f"a{i}", "sort", by=["n"])
        )
        edges.append(edge("src" if i == 0 else f"a{i - 1}", f"a{i}"))
    plan = compile_workflow(
        {"nodes": nodes, "edges": edges},
        options=CompileOptions(max_steps_per_stage=4, fuse_wide=False),
    )
    assert len(plan.steps) == 11
    assert [len(s.step_ids) for s in plan.stages] == [4, 4, 3]
    seen: set[str] = set()
    for stage in plan.stages:
        for sid in stage.step_ids:
            assert all(i.step_id in seen for i in plan.steps[sid].inputs)
            seen.add(sid)


def test_settings_become_step_settings_and_split_chains() -> None:
    slow = node(
        "d",
        "derive",
        settings={"retries": 3, "retry_backoff_seconds": 0.5, "timeout_seconds": 9},
        columns={"x": "id + 1"},
    )
    plan = compile_workflow(chain(SRC, node("f", "filter", condition="id > 1"), slow))
    assert [s.node_ids for s in plan.steps.values()] == [("src", "f"), ("d",)]
    step = plan.steps["d"]
    assert (step.retries, step.retry_backoff_seconds, step.timeout_seconds) == (3, 0.5, 9)
    with pytest.raises(WorkflowValidationError, match="retries"):
        compile_workflow(
            chain(SRC, node("g", "filter", settings={"retries": -1}, condition="id > 1"))
        )


def test_runners_are_picklable_and_rerunnable() -> None:
    doc = chain(SRC, *ROWWISE)
    plan = compile_workflow(doc)
    runner = pickle.loads(pickle.dumps(plan.steps["src"].runner))
    out = runner.run({}, StepContext(execution_id="x"))
    assert out.tables["out"].num_rows == 3
    assert [r.node_id for r in out.results] == ["src", "f", "d", "c", "n", "s"]
    plan2 = compile_workflow(
        {
            "nodes": [SRC, node("q", "sql", query="SELECT 1 AS one FROM src")],
            "edges": [edge("src", "q")],
        }
    )
    q = pickle.loads(pickle.dumps(plan2.steps["q"].runner))
    assert (
        q.run({"src": pa.table({"a": [1]})}, StepContext(execution_id="x")).tables["out"].num_rows
        == 1
    )


def test_run_workflow_reports_fused_failure_at_the_right_node() -> None:
    doc = chain(
        values("src", pa.table({"t": ["1", "x"]})),
        node("f", "filter", condition="true"),
        node("c", "cast", columns={"t": "int64"}),
        node("d", "derive", columns={"u": "t + 1"}),
    )
    result = run_workflow(doc)
    assert result.status == "failed"
    # the nodes fused before the culprit produced no output either (as in the runtime)
    assert [result.status_of(n) for n in ("src", "f", "c", "d")] == [
        "failed",
        "failed",
        "failed",
        "upstream_failed",
    ]
    error = "node 'c' (cast): column 't': value 'x' cannot be converted to int64 (1 bad value(s))"
    assert result.error == (
        f"1 node(s) failed: c: {error} (2 node(s) fused with them produced no output)"
    )
    assert result.results["c"].error == error
    assert result.results["f"].error == f"fused with failing node c: {error}"
    assert result.results["d"].error == "upstream node c failed"
