"""Run an ExecutionPlan on the node actors, recorded as one Prefect flow run.

- The driver (the caller's process) submits the steps of each stage batch as
  node-actor calls chained by ObjectRef, without waiting: tables never leave
  the object store, and stages pipeline. Consecutive small stages form one
  batch up to ``merge_stages_up_to`` steps (:func:`stage_batches`).
- Alongside, the :class:`~uzo_engine.runtime.record.Recorder` runs the run's
  Prefect flow run on RayTaskRunner, one Prefect task per batch that lasts as
  long as its steps (ADR 0005): Prefect's fixed cost per run never delays the data.
- The driver drops refs nobody needs any more and turns each step's small
  ``StepMeta`` into node events as it completes.
- Failure isolation flows with the data (see ``actors.Absent``); the run, and
  its flow run, end FAILED naming the failed node(s), or CANCELLED.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from uzo_engine.events import NodeEvent, RunEvent
from uzo_engine.plan import NodeResult, StepContext, is_fused_bystander
from uzo_engine.runtime.actors import (
    Absent,
    CallSpec,
    StagePayload,
    StepCall,
    StepMeta,
    dispatch,
    plain_context,
)
from uzo_engine.runtime.record import FlowRunState

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import pyarrow as pa
    from ray import ObjectRef

    from uzo_engine.events import EventSink
    from uzo_engine.plan import ExecutionPlan, NodeStatus, Stage
    from uzo_engine.runtime.actors import ActorPool, PortKey
    from uzo_engine.runtime.record import FlowRecord, Recorder

RunStatus = Literal["succeeded", "failed", "cancelled"]
_FAILED = frozenset({"failed", "upstream_failed"})


class _NullSink:
    def node_event(self, event: NodeEvent) -> None:
        pass

    def run_event(self, event: RunEvent) -> None:
        pass


@dataclass
class RunResult:
    """The outcome of one run; :meth:`table` fetches kept outputs from the object store."""

    execution_id: str
    status: RunStatus
    node_results: dict[str, NodeResult]
    error: str | None
    duration_s: float
    plan: ExecutionPlan
    output_refs: dict[PortKey, ObjectRef[Any] | Absent] = field(default_factory=dict)
    record: FlowRecord | None = None

    @property
    def flow_run_id(self) -> str | None:
        """The Prefect flow run's id once it exists (see :meth:`recorded`)."""
        return self.record.flow_run_id if self.record is not None else None

    def recorded(self, timeout: float | None = 60.0) -> FlowRunState:
        """Wait until the run's Prefect flow run has its final state; returns that state."""
        if self.record is None:
            return FlowRunState(None, None, None, "no Prefect API configured")
        return self.record.wait(timeout)

    @property
    def failed_nodes(self) -> list[str]:
        """Nodes that failed with an error of their own (not just fused with one)."""
        return [
            n
            for n, r in self.node_results.items()
            if r.status == "failed" and not is_fused_bystander(r)
        ]

    def table(self, step_or_node: str, port: str | None = None) -> pa.Table:
        """The output table of a step (or of the step a node belongs to) kept by the run."""
        import ray

        step_id = step_or_node
        if step_id not in self.plan.steps:
            step_id = self.plan.node_to_step[step_or_node]
        step = self.plan.steps[step_id]
        key = (step_id, port or step.outputs[0])
        if key not in self.output_refs:
            raise KeyError(f"output {key} was not kept: pass keep_outputs=[{step_id!r}]")
        ref = self.output_refs[key]
        value = ref if isinstance(ref, Absent) else ray.get(ref)
        if isinstance(value, Absent):
            raise LookupError(f"step {step_id} has no output {key[1]!r}: {value.reason}")
        return value


@dataclass
class _Run:
    plan: ExecutionPlan
    ctx: StepContext
    sink: EventSink
    pool: ActorPool
    keep: frozenset[str]
    cancel_grace_seconds: float
    merge_stages_up_to: int
    cancel: threading.Event = field(default_factory=threading.Event)
    results: dict[str, NodeResult] = field(default_factory=dict)
    step_status: dict[str, str] = field(default_factory=dict)
    outputs: dict[PortKey, Any] = field(default_factory=dict)
    flow_record: FlowRecord | None = None
    status: RunStatus | None = None
    error: str | None = None
    poisoned: bool = False

    def record(self, meta: StepMeta) -> None:
        self.step_status[meta.step_id] = meta.status
        if meta.poisoned:
            self.poisoned = True
        for r in meta.results:
            self.results[r.node_id] = r
            eid = self.ctx.execution_id
            self.sink.node_event(NodeEvent(eid, r.node_id, r.status, r, r.error))
        if self.flow_record is not None:  # the Prefect mirror: a task run per step
            self.flow_record.step(
                meta.step_id,
                [r.node_id for r in meta.results],
                meta.status,
                getattr(meta, "started_at", None),
                getattr(meta, "ended_at", None),
                next((r.error for r in meta.results if r.error), None),
            )

    def record_all(self, step_id: str, status: NodeStatus, message: str) -> None:
        results = [
            NodeResult(n, status, attempts=0, error=message)
            for n in self.plan.steps[step_id].node_ids
        ]
        self.record(StepMeta(step_id, status, results))  # type: ignore[arg-type]


_RUNS: dict[str, _Run] = {}
_RUNS_LOCK = threading.Lock()
_HEAL_PENDING: set[int] = set()  # ids of pools with an actor to replace once idle


def cancel_run(execution_id: str) -> bool:
    """Ask a run of this process to stop (thread-safe). False if it is not running here."""
    with _RUNS_LOCK:
        run = _RUNS.get(execution_id)
    if run is None:
        return False
    run.cancel.set()
    return True


# -- driving one run ------------------------------------------------------------------------


@dataclass(frozen=True)
class StageBatch:
    """Consecutive stages dispatched together (and followed by one Prefect task)."""

    first: int
    last: int
    step_ids: tuple[str, ...]

    @property
    def label(self) -> str:
        return (
            f"stage-{self.first}" if self.first == self.last else f"stages-{self.first}-{self.last}"
        )


def stage_batches(stages: Sequence[Stage], max_steps: int) -> list[StageBatch]:
    """One batch per stage, except that consecutive stages are merged while the merged batch
    holds at most ``max_steps`` steps (0: never merge). A stage is never split.

    A Prefect task costs ~0.1 s on RayTaskRunner (docs/measured-stack.md): a plan
    whose stages are small (e.g. one per topological level of a long chain) would
    otherwise pay that per node.
    """
    batches: list[StageBatch] = []
    for stage in stages:
        prev = batches[-1] if batches else None
        if prev is not None and len(prev.step_ids) + len(stage.step_ids) <= max_steps:
            batches[-1] = StageBatch(prev.first, stage.index, prev.step_ids + stage.step_ids)
        else:
            batches.append(StageBatch(stage.index, stage.index, tuple(stage.step_ids)))
    return batches


def _ordered(plan: ExecutionPlan, step_ids: Sequence[str]) -> list[str]:
    """Steps of one batch in dependency order (steps of one stage may feed each other)."""
    ids = list(step_ids)
    local = set(ids)
    done: set[str] = set()
    out: list[str] = []
    while ids:
        rest = []
        for sid in ids:
            deps = {i.step_id for i in plan.steps[sid].inputs if i.step_id in local}
            if deps <= done:
                out.append(sid)
                done.add(sid)
            else:
                rest.append(sid)
        if len(rest) == len(ids):
            raise ValueError(f"a cycle among steps {rest}")
        ids = rest
    return out


def _last_use(plan: ExecutionPlan, batch_of: Mapping[str, int]) -> dict[str, int]:
    """Step id -> index of the last batch that reads one of its outputs."""
    last: dict[str, int] = {}
    for step in plan.steps.values():
        for inp in step.inputs:
            last[inp.step_id] = max(last.get(inp.step_id, -1), batch_of[step.step_id])
    return last


async def _drive(run: _Run) -> None:
    plan, eid = run.plan, run.ctx.execution_id
    for step in plan.steps.values():
        for node in step.node_ids:
            run.sink.node_event(NodeEvent(eid, node, "queued"))
    order = {sid: i for i, sid in enumerate(s for st in plan.stages for s in st.step_ids)}
    batches = stage_batches(plan.stages, run.merge_stages_up_to)
    batch_of = {sid: b for b, batch in enumerate(batches) for sid in batch.step_ids}
    last_use = _last_use(plan, batch_of)
    live: dict[PortKey, Any] = {}
    pending: dict[ObjectRef[Any], str] = {}
    ctx = plain_context(run.ctx)
    next_actor = 0
    for b, batch in enumerate(batches):
        if run.cancel.is_set():
            break
        local = set(batch.step_ids)
        specs: list[CallSpec] = []
        upstream: dict[PortKey, Any] = {}
        for sid in _ordered(plan, batch.step_ids):
            step = plan.steps[sid]
            keys = tuple((i.step_id, i.output_port) for i in step.inputs)
            upstream.update({k: live[k] for k in keys if k[0] not in local})
            specs.append(CallSpec(StepCall.from_step(step), keys, next_actor))
            next_actor += 1
            for node in step.node_ids:
                run.sink.node_event(NodeEvent(eid, node, "running"))
        payload = StagePayload(specs, ctx, list(run.pool.actors), upstream)
        try:
            bundle = dispatch(payload)
        except Exception as exc:  # Ray refused the calls (not a node): fail the batch's steps
            for sid in batch.step_ids:
                run.record_all(sid, "failed", f"dispatching {batch.label} failed: {exc!r}")
                first = plan.steps[sid].node_ids[0]
                live.update({(sid, p): Absent("failed", first) for p in plan.steps[sid].outputs})
            continue
        live.update(bundle.outputs)
        pending.update({ref: sid for sid, ref in bundle.metas.items()})
        for key in [k for k in live if last_use.get(k[0], -1) <= b]:
            if key[0] not in run.keep:
                del live[key]
        await _drain(run, pending, order, 0)
    await _finish(run, pending, order)
    run.outputs = {k: v for k, v in live.items() if k[0] in run.keep}
    for sid in plan.steps:
        if sid not in run.step_status:
            run.record_all(sid, "cancelled", "run cancelled before the step started")
    _conclude(run)


async def _finish(run: _Run, pending: dict[ObjectRef[Any], str], order: dict[str, int]) -> None:
    cancel_started: float | None = None
    while pending:
        if run.cancel.is_set() and cancel_started is None:
            cancel_started = time.monotonic()
            run.poisoned = True  # a running runner may need its actor replaced
            # Queued and running calls of this run return "cancelled" within ~50 ms. No
            # ray.cancel: cancelling an actor call that still waits for its arguments
            # leaves a gap in the caller's sequence numbers, and the actor then stalls
            # every later call from that caller for 30 s (ActorUnavailableError).
            run.pool.cancel(run.ctx.execution_id)
        if cancel_started is not None and time.monotonic() - cancel_started > (
            run.cancel_grace_seconds
        ):
            for sid in sorted(pending.values(), key=order.__getitem__):
                run.record_all(sid, "cancelled", "run cancelled")
            pending.clear()
            break
        await _drain(run, pending, order, 0.1)


async def _drain(
    run: _Run, pending: dict[ObjectRef[Any], str], order: dict[str, int], timeout: float
) -> None:
    """Record every step whose meta is ready (waiting up to ``timeout`` seconds)."""
    import ray

    if not pending:
        return
    refs = list(pending)
    if timeout:
        ready, _ = await asyncio.to_thread(
            ray.wait, refs, num_returns=len(refs), timeout=timeout, fetch_local=True
        )
    else:
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=True)
    if not ready:
        return
    ready.sort(key=lambda r: order[pending[r]])
    try:
        metas: list[Any] = ray.get(ready)
    except Exception:
        metas = [_get_or_error(r) for r in ready]
    for ref, meta in zip(ready, metas, strict=True):
        sid = pending.pop(ref)
        if isinstance(meta, StepMeta):
            run.record(meta)
        else:
            _record_error(run, sid, meta)


def _get_or_error(ref: ObjectRef[Any]) -> Any:
    import ray

    try:
        return ray.get(ref)
    except Exception as exc:
        return exc


def _record_error(run: _Run, step_id: str, error: BaseException) -> None:
    """A step call that returned no meta: the actor died, or the call was cancelled."""
    from ray.exceptions import TaskCancelledError

    if run.cancel.is_set() or isinstance(error, TaskCancelledError):
        run.record_all(step_id, "cancelled", "run cancelled")
        return
    inputs = {i.step_id for i in run.plan.steps[step_id].inputs}
    if any(run.step_status.get(s) in _FAILED for s in inputs):
        run.record_all(step_id, "upstream_failed", "an upstream step failed")
        return
    run.poisoned = True
    run.record_all(step_id, "failed", f"node actor failed: {type(error).__name__}: {error}")


def _conclude(run: _Run) -> None:
    statuses = {r.status for r in run.results.values()}
    if run.cancel.is_set():
        run.status, run.error = "cancelled", "run cancelled"
    elif statuses & _FAILED:
        failed = [r for r in run.results.values() if r.status == "failed"]
        culprits = [r for r in failed if not is_fused_bystander(r)] or failed
        names = "; ".join(f"{r.node_id}: {r.error}" for r in culprits[:20])
        more = f" (+{len(culprits) - 20} more)" if len(culprits) > 20 else ""
        fused = len(failed) - len(culprits)
        also = f" ({fused} node(s) fused with them produced no output)" if fused else ""
        run.status = "failed"
        run.error = f"{len(culprits)} node(s) failed: {names}{more}{also}"
    else:
        run.status = "succeeded"


async def run_plan(
    plan: ExecutionPlan,
    pool: ActorPool,
    ctx: StepContext,
    *,
    recorder: Recorder | None,
    sink: EventSink | None = None,
    keep_outputs: Iterable[str] = (),
    cancel_grace_seconds: float = 5.0,
    merge_stages_up_to: int = 1000,
) -> RunResult:
    """Run ``plan`` on ``pool`` (Ray initialised, pool started); ``recorder`` records it as a
    Prefect flow run alongside. Returns when every step has finished; the flow run reaches its
    final state moments later (``RunResult.recorded()``)."""
    started = time.perf_counter()
    eid = ctx.execution_id
    run = _Run(
        plan,
        ctx,
        sink or _NullSink(),
        pool,
        frozenset(keep_outputs),
        cancel_grace_seconds,
        merge_stages_up_to,
    )
    with _RUNS_LOCK:
        if eid in _RUNS:
            raise ValueError(f"execution {eid} is already running in this process")
        _RUNS[eid] = run
    run.sink.run_event(RunEvent(eid, "running"))
    try:
        if recorder is not None:
            run.flow_record = recorder.start(eid)
        await _drive(run)
    except BaseException as exc:
        run.status = "failed"
        run.error = f"run crashed: {type(exc).__name__}: {exc}"
        for sid in plan.steps:
            if sid not in run.step_status:
                run.record_all(sid, "failed", run.error)
        raise
    finally:
        with _RUNS_LOCK:
            _RUNS.pop(eid, None)
            if run.poisoned:
                _HEAL_PENDING.add(id(pool))
            # Replacing an actor kills the calls other runs have queued on it: heal once
            # no run of this process is using the pool (the last one out does it).
            heal = id(pool) in _HEAL_PENDING and not any(r.pool is pool for r in _RUNS.values())
            if heal:
                _HEAL_PENDING.discard(id(pool))
        if run.flow_record is not None:
            run.flow_record.conclude(run.status or "failed", _summary(run))
        if heal:
            await asyncio.to_thread(pool.heal)
    status: RunStatus = run.status or "failed"
    run.sink.run_event(RunEvent(eid, status, run.error))
    return RunResult(
        execution_id=eid,
        status=status,
        node_results=run.results,
        error=run.error,
        duration_s=time.perf_counter() - started,
        plan=plan,
        output_refs=run.outputs,
        record=run.flow_record,
    )


def _summary(run: _Run) -> str:
    if run.error:
        return run.error
    return f"{len(run.results)} node(s) succeeded"
