"""The Prefect mirror (ADR 0005) against real Prefect servers: the session's, or one of
a test's own on a loopback port, stopped and started again while runs go on."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.engine.runners import Fail, Gate, Probe, Scale, Source, make_plan
from uzo_engine.plan import StepContext
from uzo_engine.runtime import prefect_server
from uzo_engine.runtime.core import execute
from uzo_engine.runtime.record import Recorder

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from uzo_engine.runtime.engine import Runtime
    from uzo_engine.settings import EngineSettings

pytestmark = pytest.mark.integration

WORKFLOW_NAME = "acme-payroll-export"  # stands for tenant data: it must not reach Prefect


def _read(api_url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def read() -> Any:
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            async with get_client() as client:
                if body is None:
                    return (await client.request("GET", path)).json()  # type: ignore[arg-type]
                return (await client.request("POST", path, json=body)).json()  # type: ignore[arg-type]

    return asyncio.run(read())


def flow_run(api_url: str, flow_run_id: str) -> dict[str, Any]:
    result: dict[str, Any] = _read(api_url, f"/flow_runs/{flow_run_id}")
    return result


def task_runs(api_url: str, flow_run_id: str, expected: int) -> list[dict[str, Any]]:
    """The flow run's task runs, once Prefect's server has recorded ``expected`` of them
    (it turns the mirror's task-run events into task runs in a background service): read
    again until then, for at most 60 s, and returned as they are."""
    body = {"flow_runs": {"id": {"any_": [flow_run_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
    deadline = time.monotonic() + 60
    while True:
        found: list[dict[str, Any]] = _read(api_url, "/task_runs/filter", body)
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def set_cancelling(api_url: str, flow_run_id: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Cancelling

    async def cancel() -> None:
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            async with get_client() as client:
                await client.set_flow_run_state(uuid.UUID(flow_run_id), Cancelling(), force=True)

    asyncio.run(cancel())


def wait_for(condition: Any, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def in_thread(fn: Any) -> tuple[threading.Thread, list[Any]]:
    holder: list[Any] = []
    thread = threading.Thread(target=lambda: holder.append(fn()))
    thread.start()
    return thread, holder


def api_url(runtime: Runtime) -> str:
    assert runtime.prefect is not None
    return runtime.prefect.url


# -- what a flow run holds ------------------------------------------------------------------------


def test_a_run_is_a_flow_run_with_a_task_run_per_step_and_ids_only(runtime: Runtime) -> None:
    plan = make_plan(
        WORKFLOW_NAME,
        [
            ("src", Source(rows=5), [], ["out"]),
            ("double", Scale(2), [("in", "src", "out")], ["out"]),
            ("triple", Scale(3), [("in", "double", "out")], ["out"]),
        ],
        [["src"], ["double"], ["triple"]],
    )
    eid = f"mirror-{uuid.uuid4().hex[:8]}"
    result = runtime.run_sync(plan, ctx=StepContext(execution_id=eid))
    assert result.status == "succeeded", result.error

    recorded = result.recorded()
    assert (recorded.state, recorded.error) == ("COMPLETED", None)
    assert recorded.flow_run_id is not None
    run = flow_run(api_url(runtime), recorded.flow_run_id)
    assert run["state_type"] == "COMPLETED"
    assert run["name"] == eid
    assert run["parameters"] == {"execution_id": eid}
    assert "uzo" in run["tags"]
    flow = _read(api_url(runtime), f"/flows/{run['flow_id']}")
    assert flow["name"] == "uzo-workflow"
    assert run["state"]["message"].startswith("succeeded; 3 step(s) (3 succeeded), 3 node(s)")

    tasks = task_runs(api_url(runtime), recorded.flow_run_id, expected=3)
    assert sorted(t["name"] for t in tasks) == ["double", "src", "triple"]
    assert {t["state_type"] for t in tasks} == {"COMPLETED"}
    assert all(t["start_time"] <= t["end_time"] for t in tasks)
    # Prefect's UI has no tenancy: nothing of the workflow but ids
    assert WORKFLOW_NAME not in json.dumps([run, tasks])


def test_a_failed_run_is_failed_in_prefect_naming_the_node_not_the_error(
    runtime: Runtime,
) -> None:
    plan = make_plan(
        WORKFLOW_NAME,
        [
            ("src", Source(rows=4), [], ["out"]),
            ("bad", Fail("boom: salary of jane.doe is 120000"), [("in", "src", "out")], ["out"]),
            ("after_bad", Scale(3), [("in", "bad", "out")], ["out"]),
            ("good", Scale(2), [("in", "src", "out")], ["out"]),
        ],
        [["src"], ["bad", "good"], ["after_bad"]],
    )
    result = runtime.run_sync(plan)
    assert result.status == "failed"

    recorded = result.recorded()
    assert recorded.state == "FAILED", recorded
    assert recorded.flow_run_id is not None
    run = flow_run(api_url(runtime), recorded.flow_run_id)
    assert run["state_type"] == "FAILED"
    assert "node(s) failed: bad;" in run["state"]["message"]
    tasks = {t["name"]: t for t in task_runs(api_url(runtime), recorded.flow_run_id, expected=4)}
    assert {n: (t["state_type"], t["state_name"]) for n, t in tasks.items()} == {
        "src": ("COMPLETED", "Completed"),
        "bad": ("FAILED", "Failed"),
        "after_bad": ("FAILED", "UpstreamFailed"),
        "good": ("COMPLETED", "Completed"),
    }
    # error texts can quote data: they stay in UZO unless UZO_PREFECT_MIRROR_ERRORS is set
    assert "jane.doe" not in json.dumps([run, list(tasks.values())])


def test_no_prefect_url_and_no_prefect_code_reach_the_ray_workers(runtime: Runtime) -> None:
    """The mirror runs in the driver: a loopback Prefect URL is never shipped to the workers
    of a (possibly remote) cluster, and the workers never import Prefect."""
    import ray

    env = ray.get_runtime_context().runtime_env.env_vars()
    assert not [k for k in env if k.startswith("PREFECT_")]
    result = runtime.run_sync(
        make_plan("probe", [("probe", Probe(), [], ["out"])]), keep_outputs=["probe"]
    )
    assert result.status == "succeeded", result.error
    assert result.table("probe").to_pylist() == [
        {"prefect_imported": False, "prefect_api_url": None}
    ]


def test_the_local_prefect_server_serves_its_ui(runtime: Runtime) -> None:
    import httpx

    assert runtime.prefect is not None
    page = httpx.get(prefect_server.ui_url(runtime.prefect), timeout=30)
    assert page.status_code == 200
    assert "<html" in page.text.lower()


# -- cancellation from Prefect ------------------------------------------------------------------


def test_cancelling_in_prefect_cancels_through_the_cancel_path(
    runtime: Runtime, tmp_path: Path
) -> None:
    started, opened = tmp_path / "started", tmp_path / "never-opened"
    plan = make_plan(
        WORKFLOW_NAME,
        [
            ("wait", Gate(str(opened), started=str(started), seconds=60), [], ["out"]),
            ("after", Scale(2), [("in", "wait", "out")], ["out"]),
        ],
    )
    eid = f"cancel-in-prefect-{uuid.uuid4().hex[:8]}"
    asked: list[str] = []

    def cancel_run(execution_id: str) -> bool:  # what the API's cancel path would do
        asked.append(execution_id)
        return runtime.cancel(execution_id)

    recorder = Recorder(api_url(runtime), cancel_run=cancel_run, delay=0)
    try:
        ctx = StepContext(execution_id=eid)
        thread, holder = in_thread(
            lambda: runtime.on_loop(execute(plan, ctx, runtime.backend, recorder=recorder))
        )
        wait_for(started.exists, "the step to start")
        wait_for(lambda: recorder.flow_run_id(eid) is not None, "the flow run")
        flow_run_id = recorder.flow_run_id(eid)
        assert flow_run_id is not None
        set_cancelling(api_url(runtime), flow_run_id)
        thread.join(timeout=120)
        (result,) = holder
        assert asked == [eid]
        assert result.status == "cancelled"
        assert result.recorded().state == "CANCELLED"
        assert flow_run(api_url(runtime), flow_run_id)["state_type"] == "CANCELLED"
    finally:
        recorder.close(timeout=60)


# -- Prefect unreachable or stopped -------------------------------------------------------------


def test_the_runtime_starts_and_runs_with_no_prefect_answering(
    runtime: Runtime, engine_settings: EngineSettings
) -> None:
    from uzo_engine.runtime.engine import Runtime

    dead = engine_settings.model_copy(
        update={"prefect_api_url": "http://127.0.0.1:9/api", "prefect_mirror_give_up_seconds": 1}
    )
    other = Runtime(dead).start()  # attaches to the session's Ray; nothing listens on port 9
    try:
        result = other.run_sync(make_plan("np", [("src", Source(rows=3), [], ["out"])]))
        assert result.status == "succeeded", result.error
        recorded = result.recorded(timeout=120)
        assert recorded.state is None
        assert recorded.error is not None
        assert recorded.error.startswith("mirror gap: ")
    finally:
        other.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def own_prefect(engine_settings: EngineSettings, tmp_path: Path) -> Iterator[EngineSettings]:
    """A Prefect server of the test's own, on a fixed loopback port so it can come back."""
    settings = engine_settings.model_copy(
        update={
            "home": tmp_path / "home",
            "prefect_server_port": _free_port(),
            "prefect_server_start_timeout_seconds": 240,  # a loaded machine starts it slowly
        }
    )
    prefect_server.ensure_prefect_api(settings)
    try:
        yield settings
    finally:
        prefect_server.stop_prefect_server(settings)


@pytest.mark.slow
def test_prefect_stopped_mid_run_and_the_run_still_succeeds(
    runtime: Runtime, own_prefect: EngineSettings, tmp_path: Path
) -> None:
    """A run whose Prefect server stops mid-run succeeds; its mirror, bound to give up
    after 0.5 s, records the gap. A run while Prefect is still down succeeds too, and a
    mirror that keeps its runs writes it once Prefect is back."""
    url = prefect_server.ensure_prefect_api(own_prefect).url
    gives_up = Recorder(url, cancel_run=runtime.cancel, delay=0, give_up_seconds=0.5)
    keeps = Recorder(url, cancel_run=runtime.cancel, delay=0)
    started, opened = tmp_path / "started", tmp_path / "open"
    gated = make_plan(
        WORKFLOW_NAME,
        [
            ("src", Source(rows=3), [], ["out"]),
            ("wait", Gate(str(opened), started=str(started)), [("in", "src", "out")], ["out"]),
        ],
    )
    try:
        eid = f"gap-{uuid.uuid4().hex[:8]}"
        ctx = StepContext(execution_id=eid)
        thread, holder = in_thread(
            lambda: runtime.on_loop(execute(gated, ctx, runtime.backend, recorder=gives_up))
        )
        wait_for(started.exists, "the step to start")
        wait_for(lambda: gives_up.flow_run_id(eid) is not None, "the flow run")
        gap_flow_run = gives_up.flow_run_id(eid)

        prefect_server.stop_prefect_server(own_prefect)  # mid-run: the step is waiting
        opened.touch()
        thread.join(timeout=120)
        (dropped,) = holder
        assert dropped.status == "succeeded", dropped.error
        gap = dropped.recorded(timeout=60)
        assert (gap.flow_run_id, gap.state) == (gap_flow_run, None)
        assert gap.error is not None
        assert gap.error.startswith("mirror gap: ")
        assert gives_up.stats.dropped == 1

        plan = make_plan(
            WORKFLOW_NAME,
            [
                ("src", Source(rows=3), [], ["out"]),
                ("double", Scale(2), [("in", "src", "out")], ["out"]),
            ],
        )
        ctx = StepContext(execution_id=f"kept-{uuid.uuid4().hex[:8]}")
        kept = runtime.on_loop(execute(plan, ctx, runtime.backend, recorder=keeps))
        assert kept.status == "succeeded", kept.error
        assert kept.record is not None
        assert not kept.record.done  # held until Prefect answers again

        prefect_server.ensure_prefect_api(own_prefect)  # the same port and database
        caught_up = kept.recorded(timeout=120)
        assert caught_up.state == "COMPLETED", caught_up
        assert caught_up.flow_run_id is not None
        assert flow_run(url, caught_up.flow_run_id)["state_type"] == "COMPLETED"
        assert len(task_runs(url, caught_up.flow_run_id, expected=2)) == 2
        # the run given up on stays as Prefect last saw it: that is the gap
        assert flow_run(url, str(gap_flow_run))["state_type"] == "RUNNING"
    finally:
        keeps.close(timeout=30)
        gives_up.close(timeout=0)
