"""The in-process executor: events, retries with backoff, timeouts, failure isolation,
cancellation; plus the node-type registry's plugin seam."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
import pytest
import stamina

from tests.unit.uzo_engine.helpers import chain, edge, node, values
from uzo_engine.compiler import compile_workflow
from uzo_engine.events import CollectingSink
from uzo_engine.nodes import registry
from uzo_engine.nodes.base import NodeType, Params
from uzo_engine.plan import StepContext
from uzo_engine.runtime.actors import node_retry_policy
from uzo_engine.runtime.local import LocalExecutor, run_workflow

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import polars as pl


class FlakyParams(Params):
    key: str
    failures: int = 0
    sleep: float = 0.0


class FlakyNode(NodeType[FlakyParams]):
    """Fails `failures` times per key, then passes its input through."""

    name = "flaky"
    Params = FlakyParams
    calls: ClassVar[dict[str, int]] = {}

    def infer_schema(
        self, params: FlakyParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        return {"out": inputs["in"]}

    def run(
        self, params: FlakyParams, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        n = self.calls[params.key] = self.calls.get(params.key, 0) + 1
        time.sleep(params.sleep)
        if n <= params.failures:
            raise RuntimeError(f"boom {n}")
        return {"out": inputs["in"]}


@pytest.fixture(autouse=True)
def flaky_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(registry.BUILTIN_NODE_TYPES, "flaky", f"{__name__}:FlakyNode")
    registry.get_node_type.cache_clear()
    FlakyNode.calls.clear()
    yield
    registry.get_node_type.cache_clear()


SRC = values("src", pa.table({"id": [1, 2, 3]}))


def test_events_for_every_node_in_order() -> None:
    sink = CollectingSink()
    doc = chain(SRC, node("f", "filter", condition="id > 1"), node("x", "flaky", key="a"))
    result = run_workflow(doc, sink=sink)
    assert result.status == "succeeded"
    statuses = [(e.node_id, e.status) for e in sink.node_events]
    for n in ("src", "f", "x"):
        seq = [s for nid, s in statuses if nid == n]
        assert seq == ["queued", "running", "succeeded"]
    assert [e.status for e in sink.run_events] == ["running", "succeeded"]
    final = sink.final()["x"].result
    assert final is not None
    assert (final.rows_in, final.rows_out) == (2, 2)
    assert [c.name for c in final.output_schema] == ["id"]


def test_retries_with_backoff_then_success() -> None:
    doc = chain(
        SRC,
        node(
            "x",
            "flaky",
            key="r",
            failures=2,
            settings={"retries": 2, "retry_backoff_seconds": 0.01},
        ),
    )
    start = time.perf_counter()
    result = run_workflow(doc)
    assert result.status == "succeeded"
    assert result.results["x"].attempts == 3
    assert time.perf_counter() - start >= 0.03  # 0.01 + 0.02


def test_node_retries_wait_as_the_one_retry_policy_says() -> None:
    """Exact doubling waits capped at a minute, from uzo_connectors.retry; stamina's test
    mode turns them off, which proves the executor asks that policy for its waits."""
    policy = node_retry_policy(retries=8, backoff_seconds=1.0)
    assert policy.max_attempts == 9
    assert [policy.backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    doc = chain(
        SRC,
        node(
            "x",
            "flaky",
            key="s",
            failures=2,
            settings={"retries": 2, "retry_backoff_seconds": 30},
        ),
    )
    start = time.perf_counter()
    with stamina.set_testing(True, attempts=10, cap=True):
        result = run_workflow(doc)
    assert result.status == "succeeded"
    assert result.results["x"].attempts == 3
    assert time.perf_counter() - start < 10  # not the 30 s + 60 s of the settings


def test_failure_isolation_marks_downstream_upstream_failed() -> None:
    doc = {
        "nodes": [
            SRC,
            node(
                "x",
                "flaky",
                key="f",
                failures=5,
                settings={"retries": 1, "retry_backoff_seconds": 0},
            ),
            node("after", "filter", condition="id > 0"),
            node("side", "filter", condition="id > 2"),
        ],
        "edges": [edge("src", "x"), edge("x", "after"), edge("src", "side")],
    }
    sink = CollectingSink()
    result = run_workflow(doc, sink=sink)
    assert result.status == "failed"
    assert result.status_of("x") == "failed"
    assert result.results["x"].attempts == 2
    assert result.results["x"].error == "node 'x' (flaky): boom 2"
    assert result.status_of("after") == "upstream_failed"
    assert result.status_of("side") == "succeeded"
    assert sink.run_events[-1].status == "failed"


def test_timeout_is_enforced() -> None:
    doc = chain(SRC, node("x", "flaky", key="t", sleep=2.0, settings={"timeout_seconds": 0.1}))
    start = time.perf_counter()
    result = run_workflow(doc)
    assert time.perf_counter() - start < 1.5
    assert result.status == "failed"
    assert "timed out after 0.1 s" in (result.results["x"].error or "")


def test_cancellation_stops_remaining_steps() -> None:
    cancel = threading.Event()
    doc = chain(SRC, node("x", "flaky", key="c"), node("y", "flaky", key="d"))
    plan = compile_workflow(doc)
    original = plan.steps["x"].runner

    class CancelAfter:
        def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> Any:
            out = original.run(inputs, ctx)
            cancel.set()
            return out

    import dataclasses

    steps = dict(plan.steps)
    steps["x"] = dataclasses.replace(steps["x"], runner=CancelAfter())
    plan = dataclasses.replace(plan, steps=steps)
    result = LocalExecutor().run(plan, StepContext(execution_id="c", cancelled=cancel.is_set))
    assert result.status == "cancelled"
    assert result.status_of("x") == "succeeded"
    assert result.status_of("y") == "cancelled"


def test_unknown_type_suggests_close_matches() -> None:
    with pytest.raises(registry.UnknownNodeTypeError, match="did you mean 'aggregate'"):
        registry.get_node_type("agregate")
    assert "filter" in registry.available_node_types()


def test_entry_point_plugins_are_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    class EP:
        name = "my_plugin"
        value = f"{__name__}:FlakyNode"

    monkeypatch.setattr(registry, "entry_points", lambda group: [EP()])
    registry._plugin_specs.cache_clear()
    try:
        assert isinstance(registry.get_node_type("my_plugin"), FlakyNode)
        assert "my_plugin" in registry.node_types_json_schema()
    finally:
        registry._plugin_specs.cache_clear()


def test_node_types_publish_a_json_schema_form() -> None:
    forms = registry.node_types_json_schema()
    assert forms["join"]["inputs"] == ["left", "right"]
    assert forms["router"]["outputs"] == ["true", "false"]
    assert forms["filter"]["config"]["required"] == ["condition"]
    assert forms["filter"]["config"]["additionalProperties"] is False
