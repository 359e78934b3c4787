"""The Prefect side of a run: one flow run on RayTaskRunner that follows the data path.

The driver (:mod:`uzo_engine.runtime.flow`) dispatches a run's steps to the node
actors at once; the :class:`Recorder` runs the matching Prefect flow run
alongside, on its own event loop thread, so Prefect's fixed cost per run (~0.3 s
measured: flow-run creation and states, one RayTaskRunner task per stage) never
delays the data (ADR 0005):

- the flow run is created when the run starts and ends COMPLETED, FAILED (naming
  the failed nodes) or CANCELLED, as the run did;
- one Prefect task per stage batch runs in a Ray worker once its steps are done:
  it reads their small ``StepMeta`` results (never a table), ends FAILED when
  one of its nodes failed, and its message says how long the steps took;
- the recorder thread runs at a lower CPU priority (``UZO_PREFECT_NICE``), as
  does the Prefect server UZO starts: on a busy machine the data goes first;
- setting the flow run to CANCELLING in Prefect (UI, API, CLI) cancels the run;
- the flow run starts ``UZO_PREFECT_RECORD_DELAY_SECONDS`` (1 s) after the run, or
  when it ends if sooner: Prefect's ~0.3 s of CPU per flow run then never competes
  with a short run's own work (measured: it doubled TPC-H SF1 query times).

``FlowRecord.wait()`` returns once the flow run reached its final state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uzo_engine.runtime.loop import LoopThread

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from ray import ObjectRef

log = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Outcome:
    """How the run ended, as the flow run must end."""

    status: str  # succeeded | failed | cancelled
    message: str


@dataclass(frozen=True)
class FlowRunState:
    flow_run_id: str | None
    state: str | None  # COMPLETED, FAILED, CANCELLED, CRASHED...; None: no flow run
    message: str | None
    error: str | None = None  # why the flow run could not be recorded


class StageWatch:
    """Meta refs of one dispatched stage batch; opaque to Prefect (see ``actors.Dispatched``)."""

    __slots__ = ("metas",)

    def __init__(self, metas: Mapping[str, ObjectRef[Any]]) -> None:
        self.metas = dict(metas)


class FlowRecord:
    """The flow run of one run. The driver feeds it from its thread; the recorder reads."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, execution_id: str, cancel: Callable[[], object]
    ) -> None:
        self._loop = loop
        self.execution_id = execution_id
        self.cancel_run = cancel
        self.stages: asyncio.Queue[tuple[str, StageWatch] | None] = asyncio.Queue()
        self.concluded = asyncio.Event()
        self.outcome: Outcome | None = None
        self.flow_run_id: str | None = None
        self.future: concurrent.futures.Future[FlowRunState] | None = None
        self._steps: list[Any] = []

    # -- called by the driver (any thread) ---------------------------------------------------

    def stage(self, label: str, metas: Mapping[str, ObjectRef[Any]]) -> None:
        self._loop.call_soon_threadsafe(self.stages.put_nowait, (label, StageWatch(metas)))

    def step(
        self,
        step_id: str,
        node_ids: Sequence[str],
        status: str,
        started_at: float | None,
        ended_at: float | None,
        message: str | None,
    ) -> None:
        """A finished step; the flow run gets one task for the run's steps when it ends."""
        from uzo_engine.plan import NodeResult
        from uzo_engine.runtime.actors import StepMeta

        seconds = (ended_at - started_at) if started_at and ended_at else 0.0
        each = seconds * 1000 / max(1, len(node_ids))
        results = [
            NodeResult(n, status, duration_ms=each, error=message)  # type: ignore[arg-type]
            for n in node_ids
        ]
        self._steps.append(StepMeta(step_id, status, results))  # type: ignore[arg-type]

    def conclude(self, status: str, message: str) -> None:
        if self._steps:
            import ray

            self.stage("steps", {m.step_id: ray.put(m) for m in self._steps})
            self._steps = []

        def done() -> None:
            self.outcome = Outcome(status, message)
            self.stages.put_nowait(None)
            self.concluded.set()

        self._loop.call_soon_threadsafe(done)

    def wait(self, timeout: float | None = 60.0) -> FlowRunState:
        """Block until the flow run has its final state (or ``timeout`` seconds)."""
        assert self.future is not None
        try:
            return self.future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            return FlowRunState(self.flow_run_id, None, None, f"not recorded after {timeout}s")

    @property
    def done(self) -> bool:
        return self.future is not None and self.future.done()


_RECORDS: dict[str, FlowRecord] = {}


# -- the Prefect objects ------------------------------------------------------------------------


def _stage_task(stages: str, watch: StageWatch) -> Any:
    """Body of a stage task (in a Ray worker), submitted once its steps are done: sum them up."""
    import ray
    from prefect.states import Cancelled, Completed, Failed

    refs = list(watch.metas.values())
    ready, rest = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=True)
    try:
        metas = ray.get(ready)
    except Exception as exc:  # an actor died: the driver reports the nodes
        return Failed(message=f"a node actor failed: {type(exc).__name__}")
    nodes = [r for m in metas for r in m.results]
    failed = [r.node_id for r in nodes if r.status == "failed"]
    seconds = sum(r.duration_ms for r in nodes) / 1000
    summary = f"{len(metas)} step(s), {len(nodes)} node(s), {seconds:.3f} s in node actors"
    if failed:
        return Failed(message=f"node(s) failed: {', '.join(failed[:20])}; {summary}")
    if rest or any(r.status == "cancelled" for r in nodes):
        return Cancelled(message=f"run cancelled; {summary}")
    return Completed(message=summary)


async def _flow_body(execution_id: str, workflow_name: str, record_key: str) -> Any:
    from prefect.context import FlowRunContext
    from prefect.states import Cancelled, Completed, Failed

    record = _RECORDS[record_key]
    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        record.flow_run_id = str(flow_ctx.flow_run.id)
    watcher = asyncio.create_task(_watch_cancellation(record))
    stages = []
    while (item := await record.stages.get()) is not None:
        stages.append(asyncio.create_task(_record_stage(record, *item)))
    await watcher
    for stage in stages:
        await stage
    outcome = record.outcome
    assert outcome is not None
    if outcome.status == "cancelled":
        return Cancelled(message=outcome.message)
    if outcome.status == "failed":
        return Failed(message=outcome.message)
    return Completed(message=outcome.message)


async def _record_stage(record: FlowRecord, label: str, watch: StageWatch) -> None:
    """Submit the stage's Prefect task once its steps are done (or the run has ended):
    Prefect's work for the stage (~0.1 s of CPU) then never competes with the stage's own."""
    import ray

    _, stage_task = prefect_objects()
    refs = list(watch.metas.values())
    while not record.concluded.is_set():
        ready, _ = await asyncio.to_thread(
            ray.wait, refs, num_returns=len(refs), timeout=CANCEL_POLL_SECONDS, fetch_local=False
        )
        if len(ready) == len(refs):
            break
    from prefect_ray.context import remote_options

    with remote_options(num_cpus=0):  # the node actors hold the cluster's CPUs
        future = stage_task.submit(label, watch)
    await future.wrapped_future  # the stage task's final state


async def _watch_cancellation(record: FlowRecord) -> None:
    """Until the run concludes: a flow run set to CANCELLING in Prefect cancels the run."""
    from prefect.client.orchestration import get_client

    if record.concluded.is_set():  # a short run, recorded once it was over
        return
    asked = False
    async with get_client() as client:
        while not record.concluded.is_set():
            try:
                await asyncio.wait_for(record.concluded.wait(), CANCEL_POLL_SECONDS)
                return
            except TimeoutError:
                pass
            if asked or record.flow_run_id is None:
                continue
            try:
                run = await client.read_flow_run(uuid.UUID(record.flow_run_id))
            except Exception:  # Prefect unreachable for a moment: the data path goes on
                log.debug("reading flow run %s failed", record.flow_run_id, exc_info=True)
                continue
            if run.state is not None and run.state.type.value in {"CANCELLING", "CANCELLED"}:
                log.info("flow run %s cancelled in Prefect: cancelling", record.flow_run_id)
                record.cancel_run()
                asked = True


@functools.cache
def prefect_objects() -> tuple[Any, Any]:
    """``(flow, stage_task)``: the flow runs on RayTaskRunner attached to the current Ray."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect_ray import RayTaskRunner

    stage_task = task(
        name="uzo-stage",
        cache_policy=NO_CACHE,
        persist_result=False,
        task_run_name="{stages}",
        retries=0,
    )(_stage_task)
    run_flow = flow(
        name="uzo-workflow",
        flow_run_name="{workflow_name}",
        task_runner=RayTaskRunner(address="auto"),  # Ray is initialised first: reused
        persist_result=False,
        validate_parameters=False,
        log_prints=False,
    )(_flow_body)
    return run_flow, stage_task


# -- the recorder thread ------------------------------------------------------------------------


class Recorder:
    """Runs flow runs on an event loop thread of its own, one per process and Prefect API."""

    def __init__(
        self,
        api_url: str,
        nice: int = 0,
        delay: float = 0.0,
        cancel_run: Callable[[str], object] | None = None,
    ) -> None:
        self.api_url = api_url
        self.cancel_run = cancel_run
        self.delay = delay
        self._thread = LoopThread("uzo-prefect-record", nice=nice)
        self._loop = self._thread.loop
        self._pending: set[FlowRecord] = set()
        self._lock = threading.Lock()

    def start(self, execution_id: str) -> FlowRecord:
        """Begin the flow run of a run (returns at once); named by the execution id only."""
        cancel_run = self.cancel_run

        def cancel() -> object:
            return cancel_run(execution_id) if cancel_run is not None else None

        workflow_name = execution_id
        record = FlowRecord(self._loop, execution_id, cancel)
        key = f"{execution_id}:{uuid.uuid4().hex[:12]}"
        _RECORDS[key] = record
        with self._lock:
            self._pending.add(record)
        record.future = self._thread.submit(self._record(key, record, execution_id, workflow_name))
        return record

    async def _record(
        self, key: str, record: FlowRecord, execution_id: str, workflow_name: str
    ) -> FlowRunState:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        run_flow, _ = prefect_objects()
        try:
            if self.delay > 0:  # a short run is recorded once it is over, not while it runs
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(record.concluded.wait(), self.delay)
            with temporary_settings(updates={PREFECT_API_URL: self.api_url}):
                state = await run_flow(
                    execution_id=execution_id,
                    workflow_name=workflow_name,
                    record_key=key,
                    return_state=True,
                )
            return FlowRunState(record.flow_run_id, state.type.value, state.message)
        except Exception as exc:  # Prefect unreachable: the run itself is unaffected
            log.warning("flow run of %s not recorded: %r", execution_id, exc)
            return FlowRunState(record.flow_run_id, None, None, f"{type(exc).__name__}: {exc}")
        finally:
            _RECORDS.pop(key, None)
            with self._lock:
                self._pending.discard(record)

    def flow_run_id(self, execution_id: str) -> str | None:
        """The flow run of a run still being recorded (None until Prefect created it)."""
        with self._lock:
            ids = [r.flow_run_id for r in self._pending if r.execution_id == execution_id]
        return next((i for i in ids if i), None)

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for every flow run still being recorded; returns how many did not finish."""
        with self._lock:
            futures = [r.future for r in self._pending if r.future is not None]
        _, not_done = concurrent.futures.wait(futures, timeout=timeout)
        return len(not_done)

    def close(self, timeout: float = 30.0) -> None:
        self.flush(timeout)
        self._thread.stop()
