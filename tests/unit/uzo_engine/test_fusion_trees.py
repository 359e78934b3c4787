"""Multi-input fusion: a join/union step absorbs the lazy chains that feed only it."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.unit.uzo_engine.helpers import assert_same, duck, edge, node, values
from uzo_engine.compiler import CompileOptions, FusedRunner, compile_workflow
from uzo_engine.plan import StepInput
from uzo_engine.runtime.local import LocalExecutor

ORDERS = pa.table(
    {
        "id": [1, 2, 3, 4, 5, 6],
        "cust": [10, 20, 10, 30, 20, 10],
        "amount": [5.0, 7.5, 1.25, 9.0, 2.0, 4.0],
    }
)
CUSTOMERS = pa.table({"cust": [10, 20, 30], "region": ["eu", "us", "eu"]})


def tree_doc() -> dict[str, object]:
    """orders fans out (to a filter feeding the join, and to a SQL count);
    customers -> derive feeds the join; join -> aggregate -> sort."""
    return {
        "nodes": [
            values("orders", ORDERS),
            values("customers", CUSTOMERS),
            node("up", "derive", columns={"region": "upper(region)"}),
            node("big", "filter", condition="amount > 1.5"),
            node("q", "sql", query="SELECT count(*) AS n FROM orders"),
            node("j", "join", on=["cust"]),
            node(
                "a",
                "aggregate",
                group_by=["region"],
                aggregations=[{"func": "sum", "column": "amount", "alias": "total"}],
            ),
            node("s", "sort", by=["region"]),
        ],
        "edges": [
            edge("orders", "big"),
            edge("orders", "q"),
            edge("customers", "up"),
            edge("big", "j", target_handle="left"),
            edge("up", "j", target_handle="right"),
            edge("j", "a"),
            edge("a", "s"),
        ],
    }


EXPECTED_SQL = """
    SELECT upper(region) AS region, sum(amount) AS total
    FROM orders JOIN customers USING (cust) WHERE amount > 1.5
    GROUP BY ALL ORDER BY region
"""


def test_join_absorbs_lazy_inputs_into_one_step() -> None:
    plan = compile_workflow(tree_doc())
    assert [s.node_ids for s in plan.steps.values()] == [
        ("orders",),
        ("q",),
        ("customers", "up", "big", "j", "a", "s"),
    ]
    step = plan.steps["customers"]
    assert isinstance(step.runner, FusedRunner)
    # the materialised fan-out enters an inner node: the port names the node
    assert step.inputs == (StepInput(port="big:in", step_id="orders", output_port="out"),)
    assert plan.node_to_step["j"] == "customers"
    assert plan.steps["q"].inputs == (
        StepInput(port="orders", step_id="orders", output_port="out"),
    )
    result = LocalExecutor().run(plan)
    assert result.status == "succeeded", result.error
    expected = duck(EXPECTED_SQL, orders=ORDERS, customers=CUSTOMERS)
    assert_same(result.table("s"), expected, sort=False)
    assert result.table("q").to_pylist() == [{"n": 6}]
    # a NodeResult per node, schemas per node, rows at the boundaries
    assert set(result.results) == {n["id"] for n in tree_doc()["nodes"]}  # type: ignore[index]
    assert [c.name for c in result.results["j"].output_schema] == ["id", "cust", "amount", "region"]
    assert result.results["big"].rows_in == 6
    assert result.results["customers"].rows_in == 0
    assert result.results["j"].rows_out == -1
    assert result.results["s"].rows_out == 2
    assert result.results["s"].profile is not None


def test_without_fuse_joins_the_inputs_are_materialised() -> None:
    plan = compile_workflow(tree_doc(), options=CompileOptions(fuse_joins=False))
    assert [s.node_ids for s in plan.steps.values()] == [
        ("orders",),
        ("customers", "up"),
        ("big",),
        ("q",),
        ("j", "a", "s"),
    ]
    assert {(i.port, i.step_id) for i in plan.steps["j"].inputs} == {
        ("left", "big"),
        ("right", "customers"),
    }
    fused = LocalExecutor().run(compile_workflow(tree_doc())).table("s")
    assert LocalExecutor().run(plan).table("s").equals(fused)


def test_preview_point_and_fan_out_stay_materialised() -> None:
    plan = compile_workflow(tree_doc(), options=CompileOptions(materialize=frozenset({"up"})))
    steps = [s.node_ids for s in plan.steps.values()]
    assert ("customers", "up") in steps
    join_step = plan.steps[plan.node_to_step["j"]]
    assert join_step.node_ids == ("big", "j", "a", "s")
    assert {(i.port, i.step_id) for i in join_step.inputs} == {
        ("in", "orders"),
        ("j:right", "customers"),
    }
    result = LocalExecutor().run(plan)
    assert_same(
        result.table("s"), duck(EXPECTED_SQL, orders=ORDERS, customers=CUSTOMERS), sort=False
    )
    # a self-join reads one materialised table on both ports
    doc = {
        "nodes": [
            values("orders", ORDERS),
            node("f", "filter", condition="amount > 3"),
            node("j", "join", on=["id"]),
        ],
        "edges": [
            edge("orders", "f"),
            edge("f", "j", target_handle="left") | {"id": "fl"},
            edge("f", "j", target_handle="right") | {"id": "fr"},
        ],
    }
    self_join = compile_workflow(doc)
    assert [s.node_ids for s in self_join.steps.values()] == [("orders", "f"), ("j",)]
    assert {i.port for i in self_join.steps["j"].inputs} == {"left", "right"}
    assert LocalExecutor().run(self_join).table("j").num_rows == 4


def test_union_absorbs_lazy_chains_and_takes_eager_inputs() -> None:
    doc = {
        "nodes": [
            values("orders", ORDERS),
            node("cheap", "filter", condition="amount < 3"),
            values("more", pa.table({"id": [7], "cust": [40], "amount": [0.5]})),
            node("rich", "sql", query="SELECT * FROM orders WHERE amount > 8"),
            node("u", "union", order=["a", "b", "c"]),
            node("s", "sort", by=["id"]),
        ],
        "edges": [
            edge("orders", "cheap"),
            edge("orders", "rich"),
            edge("cheap", "u", target_handle="a"),
            edge("more", "u", target_handle="b"),
            edge("rich", "u", target_handle="c"),
            edge("u", "s"),
        ],
    }
    plan = compile_workflow(doc)
    step = plan.steps[plan.node_to_step["u"]]
    assert step.node_ids == ("cheap", "more", "u", "s")
    assert {(i.port, i.step_id) for i in step.inputs} == {("in", "orders"), ("u:c", "rich")}
    result = LocalExecutor().run(plan)
    assert result.status == "succeeded", result.error
    expected = duck(
        """SELECT * FROM (SELECT * FROM orders WHERE amount < 3 UNION ALL SELECT 7, 40, 0.5
           UNION ALL SELECT * FROM orders WHERE amount > 8) ORDER BY id""",
        orders=ORDERS,
    )
    assert_same(result.table("s"), expected, sort=False)


def test_failure_in_a_fused_tree_names_the_node() -> None:
    doc = tree_doc()
    doc["nodes"][2] = node("up", "cast", columns={"region": "int64"})  # type: ignore[index]
    result = LocalExecutor().run(compile_workflow(doc))
    assert result.status == "failed"
    assert result.error is not None
    assert "node 'up' (cast)" in result.error
    assert {n: r.status for n, r in result.results.items()} == {
        "orders": "succeeded",  # its own step
        "q": "succeeded",
        "customers": "failed",  # feeds the culprit, fused with it
        "up": "failed",
        "big": "failed",  # the join's other branch: no output, not its error
        "j": "upstream_failed",
        "a": "upstream_failed",
        "s": "upstream_failed",
    }


def branch_failure_doc(culprit_first: bool) -> dict[str, object]:
    """bad -> c (cast fails on 'x') -> join left; good -> g -> join right; join -> d."""
    left = [
        values("bad", pa.table({"k": [1, 2], "t": ["1", "x"]})),
        node("c", "cast", columns={"t": "int64"}),
    ]
    right = [
        values("good", pa.table({"k": [1, 2], "w": [5, 6]})),
        node("g", "filter", condition="w > 0"),
    ]
    return {
        "nodes": [
            *(left + right if culprit_first else right + left),
            node("j", "join", on=["k"]),
            node("d", "derive", columns={"u": "t + w"}),
        ],
        "edges": [
            edge("bad", "c"),
            edge("good", "g"),
            edge("c", "j", target_handle="left"),
            edge("g", "j", target_handle="right"),
            edge("j", "d"),
        ],
    }


@pytest.mark.parametrize("culprit_first", [True, False], ids=["culprit-first", "sibling-first"])
def test_failure_in_one_branch_of_a_fused_join(culprit_first: bool) -> None:
    plan = compile_workflow(branch_failure_doc(culprit_first))
    (step,) = plan.steps.values()
    assert set(step.node_ids) == {"bad", "c", "good", "g", "j", "d"}
    result = LocalExecutor().run(plan)
    assert result.status == "failed"
    error = "node 'c' (cast): column 't': value 'x' cannot be converted to int64 (1 bad value(s))"
    assert (
        result.error
        == f"1 node(s) failed: c: {error} (3 node(s) fused with them produced no output)"
    )
    got = {n: (r.status, r.error) for n, r in result.results.items()}
    sibling = "no output: fused with failing node c (not this node's error)"
    assert got == {
        "bad": ("failed", f"fused with failing node c: {error}"),
        "c": ("failed", error),
        "good": ("failed", sibling),
        "g": ("failed", sibling),
        "j": ("upstream_failed", "upstream node c failed"),
        "d": ("upstream_failed", "upstream node c failed"),
    }


def test_fused_runner_knows_what_depends_on_what() -> None:
    plan = compile_workflow(branch_failure_doc(culprit_first=False))
    runner = next(iter(plan.steps.values())).runner
    assert isinstance(runner, FusedRunner)
    assert runner.downstream_of("c") == {"j", "d"}
    assert runner.upstream_of("c") == {"bad"}
    assert runner.upstream_of("j") == {"bad", "c", "good", "g"}
    assert runner.downstream_of("d") == set()
    chain = FusedRunner(runner.specs[:3])  # no wiring: a linear chain in spec order
    first, second, third = (s.node_id for s in chain.specs)
    assert chain.downstream_of(first) == {second, third}
    assert chain.upstream_of(third) == {first, second}
