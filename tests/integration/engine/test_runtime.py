"""The runtime on a real local Ray cluster and a real Prefect server (session fixtures).

Plans are built by hand from small picklable runners (tests/integration/engine/runners.py):
the runtime must not depend on the compiler or on node types.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.integration.engine.runners import (
    Fail,
    FailOnce,
    Router,
    Scale,
    Slow,
    Source,
    Union,
    make_plan,
)
from uzo_engine.events import CollectingSink
from uzo_engine.plan import StepContext

if TYPE_CHECKING:
    from pathlib import Path

    from uzo_engine.runtime.core import RunResult
    from uzo_engine.runtime.engine import Runtime
    from uzo_engine.settings import EngineSettings

pytestmark = pytest.mark.integration


def flow_run_state(flow_run_id: str) -> tuple[str, str | None]:
    from prefect.client.orchestration import get_client

    async def read() -> tuple[str, str | None]:
        async with get_client() as client:
            run = await client.read_flow_run(uuid.UUID(flow_run_id))
            assert run.state is not None
            return run.state.type.value, run.state.message

    return asyncio.run(read())


def task_run_count(flow_run_id: str, at_least: int) -> int:
    """The flow run's task runs, once Prefect has recorded ``at_least`` of them.

    Prefect's server records task runs from the client's events in a background service,
    so a count read right after the flow run completes can lag; it is read again until it
    reaches ``at_least`` or 60 s pass, and whatever it then is gets returned.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read() -> int:
        async with get_client() as client:
            flt = FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(flow_run_id)]))
            deadline = time.monotonic() + 60
            while True:
                count = len(await client.read_task_runs(flow_run_filter=flt))
                if count >= at_least or time.monotonic() > deadline:
                    return count
                await asyncio.sleep(0.2)

    return asyncio.run(read())


def flow_run_count() -> int:
    from prefect.client.orchestration import get_client

    async def read() -> int:
        async with get_client() as client:
            return await client.count_flow_runs()

    return asyncio.run(read())


def statuses(result: RunResult) -> dict[str, str]:
    return {n: r.status for n, r in result.results.items()}


def test_steps_run_in_actors_and_the_flow_run_completes(runtime: Runtime) -> None:
    import ray

    plan = make_plan(
        "two-steps",
        [
            ("src", Source(rows=10), [], ["out"]),
            ("double", Scale(2), [("in", "src", "out")], ["out"]),
        ],
        [["src"], ["double"]],
    )
    sink = CollectingSink()
    result = runtime.run_sync(plan, sink=sink, keep_outputs=["double"])

    assert result.status == "succeeded", result.error
    table = result.table("double")
    assert table["x"].to_pylist() == [2 * i for i in range(10)]
    actor_pid = table["pid"][0].as_py()
    assert actor_pid != os.getpid()
    assert actor_pid in {info["pid"] for info in runtime.actor_info()}
    # tables stay in the object store: the result holds ObjectRefs, never values
    assert result.outputs
    assert all(isinstance(ref, ray.ObjectRef) for ref in result.outputs.values())

    recorded = result.recorded()
    assert recorded.state == "COMPLETED", recorded
    assert result.flow_run_id is not None
    assert flow_run_state(result.flow_run_id)[0] == "COMPLETED"
    # the Prefect mirror has a task run per step (tests/integration/engine/test_mirror.py)
    assert task_run_count(result.flow_run_id, at_least=2) == len(plan.steps)

    seen = [(e.node_id, e.status) for e in sink.node_events]
    for node in ("src", "double"):
        assert [s for n, s in seen if n == node] == ["queued", "running", "succeeded"]
    final = sink.final()["double"].result
    assert final is not None
    assert final.rows_out == 10
    assert final.bytes_out > 0
    assert final.duration_ms > 0
    assert [c.name for c in final.output_schema] == ["x", "pid"]
    assert [e.status for e in sink.run_events] == ["running", "succeeded"]


def test_a_failed_node_fails_the_run_and_spares_independent_branches(runtime: Runtime) -> None:
    plan = make_plan(
        "isolation",
        [
            ("src", Source(rows=4), [], ["out"]),
            ("bad", Fail("boom at bad"), [("in", "src", "out")], ["out"]),
            ("after_bad", Scale(3), [("in", "bad", "out")], ["out"]),
            ("good", Scale(2), [("in", "src", "out")], ["out"]),
            ("merge", Union(), [("a", "after_bad", "out"), ("b", "good", "out")], ["out"]),
            ("good_tail", Scale(5), [("in", "good", "out")], ["out"]),
        ],
        [["src"], ["bad", "good", "after_bad"], ["merge", "good_tail"]],
    )
    sink = CollectingSink()
    result = runtime.run_sync(plan, sink=sink, keep_outputs=["good_tail"])

    assert result.status == "failed"
    assert result.failed_nodes == ["bad"]
    assert result.error is not None
    assert "bad" in result.error
    assert "boom at bad" in result.error
    assert statuses(result) == {
        "src": "succeeded",
        "bad": "failed",
        "after_bad": "upstream_failed",
        "good": "succeeded",
        "merge": "upstream_failed",
        "good_tail": "succeeded",
    }
    assert result.table("good_tail")["x"].to_pylist() == [0, 10, 20, 30]
    assert result.recorded().state == "FAILED"
    assert result.flow_run_id is not None
    state, message = flow_run_state(result.flow_run_id)
    assert state == "FAILED"
    assert message is not None
    assert "bad" in message
    assert sink.final()["after_bad"].status == "upstream_failed"
    assert sink.run_events[-1].status == "failed"


def test_router_skips_downstream_of_a_skipped_port(runtime: Runtime) -> None:
    plan = make_plan(
        "router",
        [
            ("src", Source(rows=5), [], ["out"]),
            ("router", Router(threshold=100), [("in", "src", "out")], ["true", "false"]),
            ("yes", Scale(2), [("in", "router", "true")], ["out"]),
            ("no", Scale(2), [("in", "router", "false")], ["out"]),
            ("no_tail", Scale(2), [("in", "no", "out")], ["out"]),
        ],
        [["src", "router"], ["yes", "no", "no_tail"]],
    )
    result = runtime.run_sync(plan, keep_outputs=["yes"])
    assert result.status == "succeeded", result.error
    assert statuses(result) == {
        "src": "succeeded",
        "router": "succeeded",
        "yes": "succeeded",
        "no": "skipped",
        "no_tail": "skipped",
    }
    assert result.results["router"].rows_out == 5
    assert result.table("yes").num_rows == 5


def test_retries_with_backoff(runtime: Runtime, tmp_path: Path) -> None:
    plan = make_plan(
        "retry",
        [
            ("src", Source(rows=3), [], ["out"]),
            ("flaky", FailOnce(str(tmp_path / "failed-once")), [("in", "src", "out")], ["out"]),
        ],
        flaky__retries=2,
        flaky__retry_backoff_seconds=0.2,
    )
    result = runtime.run_sync(plan)
    assert result.status == "succeeded", result.error
    assert result.results["flaky"].attempts == 2
    assert result.results["flaky"].duration_ms >= 200  # the backoff happened


def test_timeout_is_enforced_by_uzo(runtime: Runtime, tmp_path: Path) -> None:
    finished = tmp_path / "finished"
    plan = make_plan(
        "timeout",
        [
            ("slow", Slow(30, finished=str(finished)), [], ["out"]),
            ("after", Scale(2), [("in", "slow", "out")], ["out"]),
        ],
        slow__timeout_seconds=1.0,
    )
    started = time.monotonic()
    result = runtime.run_sync(plan)
    elapsed = time.monotonic() - started
    assert result.status == "failed"
    assert statuses(result) == {"slow": "failed", "after": "upstream_failed"}
    assert result.results["slow"].error == "timed out after 1 s"
    assert elapsed < 15
    # the actor running the abandoned thread was replaced: the sleep never finishes
    assert {info["zombies"] for info in runtime.actor_info()} == {0}
    time.sleep(1)
    assert not finished.exists()


@pytest.mark.slow
def test_cancellation_stops_a_long_step_within_seconds(runtime: Runtime, tmp_path: Path) -> None:
    started_file, finished = tmp_path / "started", tmp_path / "finished"
    plan = make_plan(
        "cancel",
        [
            ("src", Source(rows=3), [], ["out"]),
            (
                "slow",
                Slow(60, started=str(started_file), finished=str(finished)),
                [("in", "src", "out")],
                ["out"],
            ),
            ("after", Scale(2), [("in", "slow", "out")], ["out"]),
        ],
        [["src", "slow"], ["after"]],
    )
    eid = f"cancel-{uuid.uuid4().hex[:8]}"
    cancelled_at: list[float] = []

    def cancel_when_started() -> None:
        deadline = time.monotonic() + 60
        while not started_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        cancelled_at.append(time.monotonic())
        assert runtime.cancel(eid)

    watcher = threading.Thread(target=cancel_when_started)
    watcher.start()
    sink = CollectingSink()
    result = runtime.run_sync(plan, ctx=StepContext(execution_id=eid), sink=sink)
    returned_at = time.monotonic()
    watcher.join()

    assert result.status == "cancelled"
    latency = returned_at - cancelled_at[0]
    assert latency < 8, f"cancellation took {latency:.1f}s"
    assert statuses(result) == {"src": "succeeded", "slow": "cancelled", "after": "cancelled"}
    assert sink.run_events[-1].status == "cancelled"
    assert result.recorded().state == "CANCELLED"
    assert result.flow_run_id is not None
    assert flow_run_state(result.flow_run_id)[0] == "CANCELLED"
    time.sleep(1)
    assert not finished.exists()  # the actor running the step was replaced


def test_preview_reuses_cached_upstream_and_creates_no_flow_run(
    runtime: Runtime, tmp_path: Path
) -> None:
    src_count, dbl_count = tmp_path / "src.count", tmp_path / "dbl.count"

    def plan_with(factor: int) -> object:
        return make_plan(
            "preview",
            [
                ("src", Source(rows=1000, counter=str(src_count)), [], ["out"]),
                ("double", Scale(factor, counter=str(dbl_count)), [("in", "src", "out")], ["out"]),
                ("unrelated", Fail(), [], ["out"]),
            ],
            [["src", "unrelated"], ["double"]],
        )

    assert runtime.flush_records() == 0  # earlier tests' flow runs are all recorded
    runs_before = flow_run_count()
    first = runtime.preview(plan_with(2), "double", limit=5)  # type: ignore[arg-type]
    assert first.status == "succeeded", first.error
    assert [r["x"] for r in first.rows] == [0, 2, 4, 6, 8]
    assert [c.name for c in first.schema] == ["x", "pid"]
    assert first.profile["row_count"] == 5
    assert first.profile["columns"]["x"]["max"] == 8
    assert first.executed_steps == ["src", "double"]  # not the unrelated failing step

    second = runtime.preview(plan_with(2), "double", limit=5)  # type: ignore[arg-type]
    assert second.rows == first.rows
    assert second.executed_steps == []
    assert second.cached_steps == ["src", "double"]
    assert src_count.read_text().count("x") == 1
    assert dbl_count.read_text().count("x") == 1

    changed = runtime.preview(plan_with(3), "double", limit=5)  # type: ignore[arg-type]
    assert [r["x"] for r in changed.rows] == [0, 3, 6, 9, 12]
    assert changed.cached_steps == ["src"]
    assert changed.executed_steps == ["double"]
    assert src_count.read_text().count("x") == 1
    assert flow_run_count() == runs_before  # previews never create flow runs


def test_prefect_server_and_cluster_are_shared_not_restarted(
    runtime: Runtime, engine_settings: EngineSettings
) -> None:
    import ray

    from uzo_engine.runtime import cluster, prefect_server

    assert runtime.prefect is not None
    again = prefect_server.ensure_prefect_api(engine_settings)  # what another process does
    assert (again.url, again.pid) == (runtime.prefect.url, runtime.prefect.pid)
    assert again.url.startswith("http://127.0.0.1:")
    external = engine_settings.model_copy(update={"prefect_api_url": runtime.prefect.url + "/"})
    assert prefect_server.ensure_prefect_api(external).url == runtime.prefect.url
    assert cluster.connect(engine_settings) == runtime.cluster
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")


def test_warm_up_runs_on_every_actor(runtime: Runtime) -> None:
    assert runtime.warm_up() > 0


@pytest.mark.slow
def test_cancelling_the_flow_run_in_prefect_cancels_the_run(
    runtime: Runtime, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    started_file = tmp_path / "started"
    plan = make_plan(
        "cancel-in-prefect",
        [
            ("slow", Slow(60, started=str(started_file)), [], ["out"]),
            ("after", Scale(2), [("in", "slow", "out")], ["out"]),
        ],
    )
    holder: list[RunResult] = []
    eid = f"prefect-cancel-{uuid.uuid4().hex[:8]}"
    ctx = StepContext(execution_id=eid)
    worker = threading.Thread(target=lambda: holder.append(runtime.run_sync(plan, ctx=ctx)))
    worker.start()
    deadline = time.monotonic() + 60
    while not started_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    flow_run_id = None
    while flow_run_id is None and time.monotonic() < deadline:  # the flow run is being created
        flow_run_id = runtime.flow_run_id(eid)
        time.sleep(0.05)
    assert flow_run_id is not None

    async def cancel() -> None:
        async with get_client() as client:
            await client.set_flow_run_state(uuid.UUID(flow_run_id), Cancelling(), force=True)

    asked_at = time.monotonic()
    asyncio.run(cancel())
    worker.join(timeout=60)
    latency = time.monotonic() - asked_at
    (result,) = holder
    assert result.status == "cancelled"
    assert latency < 10, f"cancellation from Prefect took {latency:.1f}s"
    assert statuses(result) == {"slow": "cancelled", "after": "cancelled"}
    assert result.recorded().state == "CANCELLED"
    assert flow_run_state(flow_run_id)[0] == "CANCELLED"


def test_a_run_goes_on_when_prefect_is_unreachable(runtime: Runtime) -> None:
    from uzo_engine.runtime.core import execute
    from uzo_engine.runtime.record import Recorder

    plan = make_plan("no-prefect", [("src", Source(rows=3), [], ["out"])])
    # nothing listens on the discard port; the mirror gives up after 1 s
    recorder = Recorder("http://127.0.0.1:9/api", cancel_run=runtime.cancel, give_up_seconds=1)
    try:
        ctx = StepContext(execution_id="np")
        result = runtime.on_loop(execute(plan, ctx, runtime.backend, recorder=recorder))
        assert result.status == "succeeded", result.error
        recorded = result.recorded(timeout=120)
        assert recorded.state is None
        assert recorded.error is not None
        assert recorded.error.startswith("mirror gap: ")
    finally:
        recorder.close(timeout=60)


@pytest.mark.slow
def test_a_poisoned_actor_is_replaced_at_once_and_other_runs_go_on(
    runtime: Runtime, tmp_path: Path
) -> None:
    """A timed-out step leaves its thread running; its actor takes no other call and is
    replaced as soon as that step's call returns, while another run keeps going."""
    started = tmp_path / "stuck-started"
    stuck = make_plan(
        "stuck", [("stuck", Slow(30, started=str(started)), [], ["out"])], stuck__timeout_seconds=1
    )
    long_run = make_plan("long", [(f"s{i}", Slow(0.5), [], ["out"]) for i in range(8)])
    holder: list[RunResult] = []
    worker = threading.Thread(target=lambda: holder.append(runtime.run_sync(stuck)))
    worker.start()
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    replaced_before = runtime.backend.replaced

    long_result = runtime.run_sync(long_run)  # runs while the stuck step times out
    worker.join(timeout=60)

    (timed_out,) = holder
    assert timed_out.status == "failed"
    assert timed_out.results["stuck"].error == "timed out after 1 s"
    assert long_result.status == "succeeded", long_result.error
    assert set(statuses(long_result).values()) == {"succeeded"}
    assert runtime.backend.replaced == replaced_before + 1
    assert {info["zombies"] for info in runtime.actor_info()} == {0}


def test_a_long_step_does_not_hold_up_a_run_submitted_after_it(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Two CPU actors: one busy with run A's long step, run B's steps all go to the other
    (nothing is queued behind a busy actor), so B ends while A's step still runs."""
    a_started, a_finished = tmp_path / "a-started", tmp_path / "a-finished"
    long_run = make_plan(
        "long-a", [("slow", Slow(8, started=str(a_started), finished=str(a_finished)), [], ["out"])]
    )
    short = make_plan(
        "short-b",
        [
            ("src", Source(rows=3), [], ["out"]),
            *((f"s{i}", Scale(2), [("in", "src", "out")], ["out"]) for i in range(6)),
        ],
    )
    holder: list[RunResult] = []
    worker = threading.Thread(target=lambda: holder.append(runtime.run_sync(long_run)))
    worker.start()
    deadline = time.monotonic() + 30
    while not a_started.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert a_started.exists()

    b = runtime.run_sync(short)
    b_done_while_a_ran = not a_finished.exists()
    worker.join(timeout=60)

    assert b.status == "succeeded", b.error
    assert b_done_while_a_ran
    (a,) = holder
    assert a.status == "succeeded", a.error
    assert a_finished.exists()
    busy = a.results["slow"]
    starts = {m.started_at for m in b.steps.values()}
    assert None not in starts
    assert a.steps["slow"].ended_at is not None
    assert max(s for s in starts if s is not None) < a.steps["slow"].ended_at
    assert busy.status == "succeeded"


def test_steps_ask_ray_for_their_resources(runtime: Runtime) -> None:
    """A step with a resource request runs as a Ray task asking exactly that; one the
    cluster can never hold fails at once, saying what is missing."""
    from uzo_engine.plan import StepResources

    plan = make_plan(
        "resources",
        [
            ("src", Source(rows=4), [], ["out"]),
            ("big", Source(rows=4), [], ["out"]),
            ("odd", Scale(3), [("in", "src", "out")], ["out"]),
        ],
        big__resources=StepResources(cpus=1.0, memory_bytes=64 * 1024 * 1024),
        odd__resources=StepResources(cpus=1.0, custom=(("uzo_no_such_resource", 1.0),)),
    )
    result = runtime.run_sync(plan, keep_outputs=["big"])
    assert statuses(result) == {"src": "succeeded", "big": "succeeded", "odd": "failed"}
    actor_pids = {info["pid"] for info in runtime.actor_info()}
    assert result.table("big")["pid"][0].as_py() not in actor_pids  # a task, not an actor
    assert result.table("big")["x"].to_pylist() == [0, 1, 2, 3]
    error = result.results["odd"].error or ""
    assert "uzo_no_such_resource 1 (the cluster has 0)" in error
    # the CPU actors the task borrowed are back
    later = runtime.run_sync(make_plan("after", [("src", Source(rows=2), [], ["out"])]))
    assert later.status == "succeeded", later.error
