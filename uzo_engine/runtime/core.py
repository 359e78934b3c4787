"""The executor core: one driver for every run, in this process or on Ray.

A run is driven by one coroutine on the caller's event loop. A step starts as soon
as every step it reads from has finished, on a free worker of its lane (the
backend deals free workers fairly between runs: :mod:`.backends`, :mod:`.slots`);
nothing is queued behind a busy worker and nothing polls. The driver decides what
does not run: a step reading a failed output is ``upstream_failed``, one reading
a skipped output (a branch not taken) ``skipped``, one not started when the run
was cancelled ``cancelled``; everything that does run goes through
:meth:`NodeWorker.execute`, so retries, timeouts, error text and per-node results
are the same on both backends.

Tables stay where the backend keeps them (Ray's object store, or this process);
the driver drops an output once every step reading it has started, unless the
caller asked to keep it. Events go to the caller's sink through a queue
(:mod:`.sink`) and each finished step to the Prefect mirror, if any: neither can
slow a step down.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from uzo_engine.events import NodeEvent, RunEvent
from uzo_engine.plan import NodeResult, StepContext, failed_step_results, is_fused_bystander
from uzo_engine.runtime.actors import (
    Absent,
    StepCall,
    StepMeta,
    never_cancelled,
    not_run_meta,
    plain_context,
)
from uzo_engine.runtime.sink import QueuedSink

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    import pyarrow as pa

    from uzo_engine.events import EventSink
    from uzo_engine.plan import ExecutionPlan, NodeStatus, PlanStep
    from uzo_engine.runtime.backends import Backend, StepDone
    from uzo_engine.runtime.record import FlowRecord, FlowRunState, Recorder

RunStatus = Literal["succeeded", "failed", "cancelled"]
PortKey = tuple[str, str]  # (step id, output port)
_FAILED = frozenset({"failed", "upstream_failed"})


class _Discard:
    """A run nobody listens to: its events are dropped here, with no trip to the writer."""

    def node_event(self, event: NodeEvent) -> None:
        del event

    def run_event(self, event: RunEvent) -> None:
        del event

    async def aflush(self) -> bool:
        return True


@dataclass
class RunResult:
    """The outcome of one run, whichever backend ran it."""

    execution_id: str
    status: RunStatus
    plan: ExecutionPlan
    results: dict[str, NodeResult] = field(default_factory=dict)  # node id -> result
    steps: dict[str, StepMeta] = field(default_factory=dict)  # step id -> status, times
    outputs: dict[PortKey, Any] = field(default_factory=dict)  # kept: table, ref or Absent
    error: str | None = None
    duration_s: float = 0.0
    record: FlowRecord | None = None
    fetch: Callable[[Any], Any] = field(default=lambda value: value, repr=False)

    @property
    def failed_nodes(self) -> list[str]:
        """Nodes that failed with an error of their own (not just fused with one)."""
        return [
            n for n, r in self.results.items() if r.status == "failed" and not is_fused_bystander(r)
        ]

    def status_of(self, node_id: str) -> NodeStatus:
        return self.results[node_id].status

    def table(self, step_or_node: str, port: str | None = None) -> pa.Table:
        """The output table of a step, or of a node that ends its step, kept by the run."""
        plan = self.plan
        if step_or_node in plan.steps:
            step = plan.steps[step_or_node]
        else:
            step = plan.steps[plan.node_to_step[step_or_node]]
            if step.node_ids[-1] != step_or_node:
                raise KeyError(
                    f"node {step_or_node!r} is fused into step {step.step_id!r}; its output "
                    f"is not materialised (compile with materialize={{{step_or_node!r}}})"
                )
        key = (step.step_id, port or (step.outputs[0] if step.outputs else "out"))
        if key not in self.outputs:
            last = step.node_ids[-1]
            status = self.results[last].status if last in self.results else "not run"
            raise KeyError(f"no output {key[1]!r} of step {step.step_id!r} (status: {status})")
        value = self.fetch(self.outputs[key])
        if isinstance(value, Absent):
            raise LookupError(f"step {step.step_id} has no output {key[1]!r}: {value.reason}")
        return value

    @property
    def flow_run_id(self) -> str | None:
        """The Prefect flow run's id once it exists (see :meth:`recorded`)."""
        return self.record.flow_run_id if self.record is not None else None

    def recorded(self, timeout: float | None = 60.0) -> FlowRunState:
        """Wait until the run's Prefect flow run has its final state; returns that state."""
        from uzo_engine.runtime.record import FlowRunState

        if self.record is None:
            return FlowRunState(None, None, None, "no Prefect API configured")
        return self.record.wait(timeout)


# -- cancellation from any thread -------------------------------------------------------------


@dataclass
class _Live:
    loop: asyncio.AbstractEventLoop
    cancel: asyncio.Event


_RUNS: dict[str, _Live] = {}
_RUNS_LOCK = threading.Lock()


def cancel_run(execution_id: str) -> bool:
    """Ask a run of this process to stop (thread-safe). False if it is not running here."""
    with _RUNS_LOCK:
        live = _RUNS.get(execution_id)
    if live is None:
        return False
    try:
        live.loop.call_soon_threadsafe(live.cancel.set)
    except RuntimeError:  # its loop just closed: the run is over
        return False
    return True


# -- one run ------------------------------------------------------------------------------------


class _Driver:
    def __init__(
        self,
        plan: ExecutionPlan,
        ctx: StepContext,
        backend: Backend,
        sink: QueuedSink | _Discard,
        keep: frozenset[str],
        record: FlowRecord | None,
    ) -> None:
        self.plan = plan
        self.ctx = ctx
        self.eid = ctx.execution_id
        self.backend = backend
        self.sink = sink
        self.keep = keep
        self.flow_record = record
        self.results: dict[str, NodeResult] = {}
        self.steps: dict[str, StepMeta] = {}
        self.outputs: dict[PortKey, Any] = {}
        self.cancel = asyncio.Event()
        # steps outside the plan are given: their outputs are in ``outputs`` already
        self.waiting = {
            sid: sum(1 for up in step.upstream_steps if up in plan.steps)
            for sid, step in plan.steps.items()
        }
        self.readers: dict[str, list[str]] = {sid: [] for sid in plan.steps}
        for sid, step in plan.steps.items():
            for up in step.upstream_steps:
                self.readers.setdefault(up, []).append(sid)
        self.unread = {sid: len(r) for sid, r in self.readers.items()}
        self.running: dict[asyncio.Future[StepDone], str] = {}
        self.finished: collections.deque[asyncio.Future[StepDone]] = collections.deque()
        self._wake = asyncio.Event()
        self.chained: set[str] = set()  # started with the step before them (see _chain)
        self.caller_cancelled: Callable[[], bool] | None = None

    # -- recording ----------------------------------------------------------------------

    def _emit(self, node_id: str, status: NodeStatus, result: NodeResult | None = None) -> None:
        message = result.error if result is not None else None
        self.sink.node_event(NodeEvent(self.eid, node_id, status, result, message))

    def _finish(self, step: PlanStep, meta: StepMeta, values: Mapping[str, Any]) -> list[str]:
        """Record a finished (or not run) step; returns the steps now ready."""
        self.steps[step.step_id] = meta
        for r in meta.results:
            self.results[r.node_id] = r
            self._emit(r.node_id, r.status, r)
        if self.flow_record is not None:
            message = next((r.error for r in meta.results if r.error), None)
            self.flow_record.step(
                step.step_id, step.node_ids, meta.status, meta.started_at, meta.ended_at, message
            )
        for port in step.outputs:
            self.outputs[(step.step_id, port)] = self._output(step, meta, port, values)
        ready = []
        for reader in self.readers[step.step_id]:
            self.waiting[reader] -= 1
            if self.waiting[reader] == 0 and reader not in self.chained:
                ready.append(reader)
        if self.unread.get(step.step_id, 0) == 0 and step.step_id not in self.keep:
            self._drop(step.step_id)  # nobody reads it, or every reader has it already
        return ready

    @staticmethod
    def _output(step: PlanStep, meta: StepMeta, port: str, values: Mapping[str, Any]) -> Any:
        if meta.status == "succeeded":
            if port in meta.skipped_ports:
                return Absent("skipped", step.node_ids[-1])
            return values[port]
        if meta.status == "failed":
            culprits = [
                r.node_id
                for r in meta.results
                if r.status == "failed" and not is_fused_bystander(r)
            ]
            return Absent("failed", culprits[0] if culprits else step.node_ids[0])
        given = values.get(port)
        if isinstance(given, Absent):  # not run: pass on why, and who caused it
            return given
        reason = "cancelled" if meta.status == "cancelled" else "skipped"
        if meta.status == "upstream_failed":
            reason = "failed"
        return Absent(reason, meta.origin or step.node_ids[0])  # type: ignore[arg-type]

    def _drop(self, step_id: str) -> None:
        step = self.plan.steps.get(step_id)
        keys = (
            [(step_id, p) for p in step.outputs]
            if step is not None
            else [k for k in self.outputs if k[0] == step_id]  # a given step's outputs
        )
        for key in keys:
            self.outputs.pop(key, None)

    def _all(self, step: PlanStep, status: StepStatusText, message: str) -> StepMeta:
        results = [NodeResult(n, status, attempts=0, error=message) for n in step.node_ids]
        return StepMeta(step.step_id, status, results)

    # -- running ------------------------------------------------------------------------

    def _start(self, sid: str) -> list[str]:
        """Start a ready step, or record why it does not run; returns steps made ready."""
        step = self.plan.steps[sid]
        values = [self.outputs[(i.step_id, i.output_port)] for i in step.inputs]
        for up in step.upstream_steps:  # this reader has its inputs now
            self.unread[up] -= 1
            if self.unread[up] == 0 and up not in self.keep:
                self._drop(up)
        absent = [v for v in values if isinstance(v, Absent)]
        call = StepCall.from_step(step)
        if absent:
            meta = not_run_meta(call, absent)
            origin = _strongest(absent)
            return self._finish(step, meta, dict.fromkeys(step.outputs, origin))
        if self.cancel.is_set():
            return self._finish(step, self._all(step, "cancelled", "run cancelled"), {})
        chain = self._chain(step)
        for member in chain:
            for node in member.node_ids:
                self._emit(node, "running")
        for before, member in itertools.pairwise(chain):  # read inside the chain
            self.chained.add(member.step_id)
            self.unread[before.step_id] -= 1
        futures = self.backend.run_chain(self.eid, chain, self.ctx, values, self._stopping)
        for member, future in zip(chain, futures, strict=True):
            self._track(future, member.step_id)
        return []

    def _stopping(self) -> bool:
        """Cancelled, by ``cancel_run`` or by the caller's own callable (any thread)."""
        asked = self.caller_cancelled
        return self.cancel.is_set() or (asked is not None and asked())

    def _chain(self, step: PlanStep) -> list[PlanStep]:
        """``step`` and the steps that only it feeds, each only the one before (a chain):
        they go to one worker together, so Ray passes each its input with no round trip
        to the driver. Steps with a resource request are never chained."""
        chain = [step]
        while len(chain) < _CHAIN_MAX and step.resources is None:
            readers = self.readers.get(step.step_id, [])
            if len(readers) != 1:
                break
            nxt = self.plan.steps[readers[0]]
            if nxt.upstream_steps != (step.step_id,) or nxt.lane != step.lane:
                break
            if nxt.resources is not None:
                break
            chain.append(nxt)
            step = nxt
        return chain

    def _done(self, task: asyncio.Future[StepDone]) -> list[str]:
        sid = self.running.pop(task)
        step = self.plan.steps[sid]
        done = task.result()
        if done.meta is not None:
            return self._finish(step, done.meta, done.outputs)
        error = done.error or "the step returned nothing"
        if self.cancel.is_set():
            return self._finish(step, self._all(step, "cancelled", "run cancelled"), {})
        results = failed_step_results(
            step.runner, step.node_ids, step.node_ids[0], error, attempts=1
        )
        return self._finish(step, StepMeta(sid, "failed", results), {})

    async def drive(self, grace_seconds: float) -> None:
        for step in self.plan.steps.values():
            for node in step.node_ids:
                self._emit(node, "queued")
        ready = collections.deque(sid for sid, n in self.waiting.items() if n == 0)
        cancel_wait = asyncio.ensure_future(self.cancel.wait())
        cancel_wait.add_done_callback(lambda _: self._wake.set())
        # a caller's own cancellation callable (an in-process caller, a loop node's
        # enclosing step) is polled; the runtime's callers use cancel_run instead
        asked = self.caller_cancelled
        poll = None if asked is None else _CALLER_POLL_SECONDS
        try:
            while True:
                if asked is not None and asked():
                    self.cancel.set()
                while ready and not self.cancel.is_set():
                    ready.extend(self._start(ready.popleft()))
                if not self.running:
                    while ready:  # cancelled: what is ready is recorded as not started
                        ready.extend(self._start(ready.popleft()))
                    break
                await self._next_finished(poll)
                if asked is not None and asked():
                    self.cancel.set()
                while self.finished:
                    task = self.finished.popleft()
                    if task in self.running:
                        ready.extend(self._done(task))
                if self.cancel.is_set():
                    await self._stop(grace_seconds)
                    break
        finally:
            cancel_wait.cancel()
        for sid, step in self.plan.steps.items():  # never reached: cancelled first
            if sid not in self.steps:
                self._finish(
                    step, self._all(step, "cancelled", "run cancelled before the step started"), {}
                )

    async def _next_finished(self, poll: float | None) -> None:
        """Until a running step finishes, the run is cancelled or ``poll`` seconds pass.

        Each running future reports itself to ``finished`` when it ends, so a wait costs
        the same with one step running as with thousands (``asyncio.wait`` over all of
        them would add and remove a callback on each, every time one finishes)."""
        if self.finished or self.cancel.is_set():
            return
        self._wake.clear()
        if poll is None:
            await self._wake.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), poll)

    def _track(self, future: asyncio.Future[StepDone], sid: str) -> None:
        self.running[future] = sid
        future.add_done_callback(self._on_finished)

    def _on_finished(self, future: asyncio.Future[StepDone]) -> None:
        self.finished.append(future)
        self._wake.set()

    async def _stop(self, grace_seconds: float) -> None:
        """Cancelled: running calls of this run stop within ~50 ms; give them ``grace``."""
        await self.backend.cancel(self.eid)
        deadline = time.monotonic() + grace_seconds
        ready: collections.deque[str] = collections.deque()
        while self.running:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            done, _ = await asyncio.wait(list(self.running), timeout=left)
            for task in done:
                ready.extend(self._done(task))
        for task, sid in list(self.running.items()):  # left running: its worker is replaced
            self.running.pop(task)
            step = self.plan.steps[sid]
            self._finish(step, self._all(step, "cancelled", "run cancelled"), {})
        while ready:  # what became ready meanwhile does not start
            ready.extend(self._start(ready.popleft()))

    def in_plan_order(self) -> dict[str, NodeResult]:
        """The results in the plan's order, not the order steps happened to finish in:
        a run's error text and report read the same on every backend and every run."""
        ordered = {
            r.node_id: self.results[r.node_id]
            for sid in self.plan.steps
            if sid in self.steps
            for r in self.steps[sid].results
            if r.node_id in self.results
        }
        ordered.update((k, v) for k, v in self.results.items() if k not in ordered)
        return ordered

    def conclude(self) -> tuple[RunStatus, str | None]:
        return conclude(self.in_plan_order(), cancelled=self.cancel.is_set())


def conclude(results: Mapping[str, NodeResult], *, cancelled: bool) -> tuple[RunStatus, str | None]:
    """A run's status and error text from its node results: the culprits are named, the
    nodes fused with them only counted."""
    if cancelled:
        return "cancelled", "run cancelled"
    if not {r.status for r in results.values()} & _FAILED:
        return "succeeded", None
    failed = [r for r in results.values() if r.status == "failed"]
    culprits = [r for r in failed if not is_fused_bystander(r)] or failed
    names = "; ".join(f"{r.node_id}: {r.error}" for r in culprits[:20])
    more = f" (+{len(culprits) - 20} more)" if len(culprits) > 20 else ""
    fused = len(failed) - len(culprits)
    also = f" ({fused} node(s) fused with them produced no output)" if fused else ""
    return "failed", f"{len(culprits)} node(s) failed: {names}{more}{also}"


_CALLER_POLL_SECONDS = 0.05
_CHAIN_MAX = 64  # steps sent to one worker at once
_DEFAULT_CANCELLED = StepContext.__dataclass_fields__["cancelled"].default

StepStatusText = Literal["succeeded", "failed", "skipped", "upstream_failed", "cancelled"]


def _strongest(absent: list[Absent]) -> Absent:
    for reason in ("failed", "cancelled", "skipped"):
        for a in absent:
            if a.reason == reason:
                return a
    return absent[0]


async def execute(
    plan: ExecutionPlan,
    ctx: StepContext,
    backend: Backend,
    *,
    sink: EventSink | None = None,
    recorder: Recorder | None = None,
    keep_outputs: Iterable[str] = (),
    cancel_grace_seconds: float = 5.0,
    given: Mapping[PortKey, Any] | None = None,
) -> RunResult:
    """Run ``plan`` on ``backend``; returns when every step has finished (or was given up
    on after a cancellation). ``keep_outputs``: step ids whose outputs the result keeps;
    ``given``: outputs of steps the plan reads but does not hold (a preview's cache)."""
    started = time.perf_counter()
    eid = ctx.execution_id
    queued = QueuedSink(sink) if sink is not None else _Discard()
    record = recorder.start(eid) if recorder is not None else None
    driver = _Driver(plan, plain_context(ctx), backend, queued, frozenset(keep_outputs), record)
    driver.outputs.update(given or {})
    if ctx.cancelled is not _DEFAULT_CANCELLED and ctx.cancelled is not never_cancelled:
        driver.caller_cancelled = ctx.cancelled
    with _RUNS_LOCK:
        if eid in _RUNS:
            raise ValueError(f"execution {eid} is already running in this process")
        _RUNS[eid] = _Live(asyncio.get_running_loop(), driver.cancel)
    backend.begin(eid)
    queued.run_event(RunEvent(eid, "running"))
    status: RunStatus = "failed"
    error: str | None = None
    try:
        await driver.drive(cancel_grace_seconds)
        status, error = driver.conclude()
    except BaseException as exc:
        error = f"run crashed: {type(exc).__name__}: {exc}"
        for sid, step in plan.steps.items():
            if sid not in driver.steps:
                driver._finish(step, driver._all(step, "failed", error), {})
        raise
    finally:
        with _RUNS_LOCK:
            _RUNS.pop(eid, None)
        if record is not None:
            record.conclude(status, error or f"{len(driver.results)} node(s) succeeded")
        queued.run_event(RunEvent(eid, status, error))
        await queued.aflush()
    return RunResult(
        execution_id=eid,
        status=status,
        plan=plan,
        results=driver.in_plan_order(),
        steps={sid: driver.steps[sid] for sid in plan.steps if sid in driver.steps},
        outputs={k: v for k, v in driver.outputs.items() if k[0] in driver.keep},
        error=error,
        duration_s=time.perf_counter() - started,
        record=record,
        fetch=backend.fetch,
    )
