"""NodeWorker as a plain class (no Ray): retries, timeout, skipped ports, absent inputs,
failure statuses inside a fused step."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import pyarrow as pa
import stamina

from tests.integration.engine.runners import Fail, FailOnce, Router, Scale, Slow, Source
from uzo_engine.nodes.registry import get_node_type
from uzo_engine.plan import StepContext
from uzo_engine.plan.runners import FusedRunner, NodeSpec, Wire
from uzo_engine.runtime.actors import Absent, NodeWorker, StepCall

if TYPE_CHECKING:
    from pathlib import Path

    from uzo_engine.plan import StepRunner

CTX = StepContext(execution_id="unit")


def call(runner: StepRunner, ports: tuple[str, ...] = (), **kw: object) -> StepCall:
    outputs = kw.pop("outputs", ("out",))
    return StepCall("s", ("n",), ports, outputs, runner, **kw)  # type: ignore[arg-type]


def test_success_fills_rows_bytes_and_schema() -> None:
    meta, tables = NodeWorker().execute(call(Source(rows=3)), CTX, [])
    assert meta.status == "succeeded"
    (result,) = meta.results
    assert (result.node_id, result.rows_out) == ("n", 3)
    assert result.bytes_out > 0
    assert [c.name for c in result.output_schema] == ["x", "pid"]
    assert isinstance(tables[0], pa.Table)


def test_run_step_returns_meta_then_one_table_per_port() -> None:
    out = NodeWorker().run_step(call(Source(rows=2)), CTX)
    assert out[0].status == "succeeded"
    assert out[1].num_rows == 2


def test_failure_gives_absent_outputs_and_names_the_node() -> None:
    meta, tables = NodeWorker().execute(call(Fail("nope")), CTX, [])
    assert meta.status == "failed"
    assert meta.results[0].error == "ValueError: nope"
    assert tables == [Absent("failed", "n")]


def _fused_join_tree() -> FusedRunner:
    """bad -> c (cast fails on 'x') -> join left; good -> g -> join right; join -> d."""

    def spec(node_id: str, node_type: str, **config: object) -> NodeSpec:
        return NodeSpec(node_id, node_type, get_node_type(node_type).parse_params(config))

    specs = (
        spec("good", "values", rows=[{"k": 1, "w": 5}], schema={"k": "int64", "w": "int64"}),
        spec("g", "filter", condition="w > 0"),
        spec("bad", "values", rows=[{"k": 1, "t": "x"}], schema={"k": "int64", "t": "string"}),
        spec("c", "cast", columns={"t": "int64"}),
        spec("j", "join", on=["k"]),
        spec("d", "derive", columns={"u": "t + w"}),
    )
    wiring = (
        (),
        (Wire("in", "good"),),
        (),
        (Wire("in", "bad"),),
        (Wire("left", "c"), Wire("right", "g")),
        (Wire("in", "j"),),
    )
    return FusedRunner(specs, wiring=wiring)


def test_failure_in_one_branch_of_a_fused_join_tree() -> None:
    runner = _fused_join_tree()
    node_ids = tuple(s.node_id for s in runner.specs)
    step = StepCall("s", node_ids, (), ("out",), runner)
    meta, tables = NodeWorker().execute(step, CTX, [])
    assert meta.status == "failed"
    assert tables == [Absent("failed", "c")]
    got = {r.node_id: (r.status, r.error) for r in meta.results}
    error = got["c"][1] or ""
    assert got["c"][0] == "failed"
    assert error.startswith("node 'c' (cast): column 't'")
    sibling = "no output: fused with failing node c (not this node's error)"
    assert got == {
        "good": ("failed", sibling),  # the join's other branch: not downstream of c
        "g": ("failed", sibling),
        "bad": ("failed", f"fused with failing node c: {error}"),  # feeds c
        "c": ("failed", error),
        "j": ("upstream_failed", "upstream node c failed"),
        "d": ("upstream_failed", "upstream node c failed"),
    }


def test_absent_input_is_not_run() -> None:
    worker = NodeWorker()
    meta, tables = worker.execute(call(Scale(2), ("in",)), CTX, [Absent("failed", "up")])
    assert meta.status == "upstream_failed"
    assert meta.results[0].error == "upstream node up failed"
    assert tables == [Absent("failed", "up")]
    meta, _ = worker.execute(call(Scale(2), ("in",)), CTX, [Absent("skipped", "up")])
    assert meta.status == "skipped"


def test_retry_then_success(tmp_path: Path) -> None:
    step = call(FailOnce(str(tmp_path / "m")), ("in",), retries=1, retry_backoff_seconds=0.01)
    meta, _tables = NodeWorker().execute(step, CTX, [pa.table({"x": [1]})])
    assert meta.status == "succeeded"
    assert meta.results[0].attempts == 2


def test_retry_waits_come_from_the_one_retry_policy(tmp_path: Path) -> None:
    """A 30 s backoff: stamina's test mode makes it zero (the worker asks the policy),
    and outside test mode a cancellation still ends the wait at once."""
    step = call(FailOnce(str(tmp_path / "m")), ("in",), retries=1, retry_backoff_seconds=30)
    start = time.monotonic()
    with stamina.set_testing(True, attempts=10, cap=True):
        meta, _tables = NodeWorker().execute(step, CTX, [pa.table({"x": [1]})])
    assert meta.status == "succeeded"
    assert meta.results[0].attempts == 2
    assert time.monotonic() - start < 10

    worker = NodeWorker()
    timer = threading.Timer(0.3, worker.cancel, args=(CTX.execution_id,))
    timer.start()
    start = time.monotonic()
    meta, _ = worker.execute(call(Fail(), retries=3, retry_backoff_seconds=30), CTX, [])
    timer.join()
    assert time.monotonic() - start < 5
    assert meta.status == "cancelled"
    assert meta.results[0].error == "cancelled during retry backoff"


def test_timeout_abandons_the_runner_and_poisons_the_worker() -> None:
    start = time.monotonic()
    meta, _ = NodeWorker().execute(call(Slow(5), timeout_seconds=0.2), CTX, [])
    assert time.monotonic() - start < 2
    assert meta.status == "failed"
    assert "timed out" in (meta.results[0].error or "")
    assert meta.poisoned


def test_cancelled_execution_returns_at_once() -> None:
    worker = NodeWorker()
    worker.cancel("unit")
    meta, tables = worker.execute(call(Source()), CTX, [])
    assert meta.status == "cancelled"
    assert tables == [Absent("cancelled", "n")]


def test_skipped_port_becomes_absent() -> None:
    step = call(Router(threshold=10), ("in",), outputs=("true", "false"))
    meta, tables = NodeWorker().execute(step, CTX, [pa.table({"x": [1, 2]})])
    assert meta.status == "succeeded"
    assert isinstance(tables[0], pa.Table)
    assert tables[1] == Absent("skipped", "n")
    assert meta.skipped_ports == frozenset({"false"})
