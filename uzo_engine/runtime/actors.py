"""Node actors: a plain :class:`NodeWorker` that Ray turns into an actor where it is started.

One actor call runs one :class:`~uzo_engine.plan.PlanStep`: Ray resolves the
upstream ObjectRefs (zero-copy on a node), the worker runs the step's runner
with retries (waits from :func:`node_retry_policy`, UZO's one retry policy), a
timeout and cancellation, and returns
``(StepMeta, table_port_1, table_port_2, ...)`` with ``num_returns`` so each
output port is its own ObjectRef that the next call can take directly, without
the caller waiting.

A failed, skipped or cancelled output is an :class:`Absent` marker instead of a
table: a step given one does not run and reports its nodes ``upstream_failed``
(or ``skipped``/``cancelled``), so failure isolation flows with the data and
independent branches keep running.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from uzo_connectors.retry import RetryPolicy
from uzo_engine.plan import ColumnInfo, NodeResult, StepContext, failed_step_results

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pyarrow as pa

    from uzo_engine.plan import PlanStep, StepOutput, StepRunner

StepStatus = Literal["succeeded", "failed", "skipped", "upstream_failed", "cancelled"]
PortKey = tuple[str, str]  # (step_id, output port)
# A NodeWorker actor handle. Ray's ActorHandle generics do not model `.options()` on
# methods (concurrency groups, num_returns), so handles are typed loosely.
Actor = Any

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.05
MAX_BACKOFF_SECONDS = 60.0


def node_retry_policy(retries: int, backoff_seconds: float) -> RetryPolicy:
    """The retries of whole node attempts (a step's ``retries``, ``retry_backoff_seconds``).

    ``retries + 1`` attempts in all; the wait before the first retry is
    ``backoff_seconds`` and doubles on each further one, at most
    :data:`MAX_BACKOFF_SECONDS`, without jitter (a node's settings promise exact
    waits). The executor decides whether an attempt is retried and sleeps itself, so
    a cancellation can end the wait.
    """
    return RetryPolicy(
        max_attempts=retries + 1,
        backoff_base=backoff_seconds,
        backoff_max=MAX_BACKOFF_SECONDS,
        jitter=0.0,
    )


@dataclass(frozen=True)
class Absent:
    """Stands for an output that was not produced (and why)."""

    reason: Literal["failed", "skipped", "cancelled"]
    origin: str  # node id that caused it


@dataclass(frozen=True)
class StepCall:
    """What an actor needs to run one step (the plan's wiring stays with the caller)."""

    step_id: str
    node_ids: tuple[str, ...]
    input_ports: tuple[str, ...]  # port of each positional table argument
    outputs: tuple[str, ...]
    runner: StepRunner
    retries: int = 0
    retry_backoff_seconds: float = 1.0
    timeout_seconds: float | None = None

    @classmethod
    def from_step(cls, step: PlanStep) -> StepCall:
        return cls(
            step_id=step.step_id,
            node_ids=step.node_ids,
            input_ports=tuple(i.port for i in step.inputs),
            outputs=step.outputs,
            runner=step.runner,
            retries=step.retries,
            retry_backoff_seconds=step.retry_backoff_seconds,
            timeout_seconds=step.timeout_seconds,
        )


@dataclass
class StepMeta:
    """The small first return value of every step call."""

    step_id: str
    status: StepStatus
    results: list[NodeResult]
    worker_pid: int = 0
    poisoned: bool = False  # a timed-out or cancelled runner thread is still alive
    started_at: float | None = None  # epoch seconds, measured where the step ran
    ended_at: float | None = None
    skipped_ports: frozenset[str] = frozenset()  # outputs not produced (branch not taken)
    origin: str | None = None  # not run: the node whose failure, skip or cancel it follows

    @property
    def duration_ms(self) -> float:
        if self.started_at is None or self.ended_at is None:
            return 0.0
        return (self.ended_at - self.started_at) * 1000


class _Cancelled(Exception):
    pass


class _TimedOut(Exception):
    pass


#: never turned into a failed step: the process is being stopped
_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit)


@dataclass(frozen=True)
class NoopRunner:
    """A runner that makes a one-row table through tiny Polars plans.

    Warming up with it makes each actor import Polars, the node types and the
    expression compiler, run a lazy plan and read a Parquet file once, so the first
    real step (a preview, say) does not pay those seconds.
    """

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        import polars as pl

        from uzo_engine.expressions import compile_expression
        from uzo_engine.nodes.registry import available_node_types, get_node_type
        from uzo_engine.plan import StepOutput

        # import the node types and the SQL expression compiler as real steps will
        for name in available_node_types():
            with contextlib.suppress(Exception):  # a broken plugin fails its own nodes, later
                get_node_type(name)
        condition = compile_expression("ok AND 1 = 1", {"ok": pl.Boolean()})
        frame = pl.LazyFrame({"ok": [True, False]}).filter(condition.expr)
        # and Polars' Parquet reader, whose first scan in a process costs ~0.4 s
        with tempfile.TemporaryDirectory(prefix="uzo-warm-up-") as tmp:
            path = os.path.join(tmp, "warm-up.parquet")
            frame.collect().write_parquet(path)
            pl.scan_parquet(path).filter(condition.expr).collect()
        return StepOutput({"out": _warm_up_table()}, [])


def _warm_up_table() -> pa.Table:
    """A table that leaves through the shared-memory object store (> 100 KiB) with the
    column types whose first serialisation in a worker is slow (measured: ~0.3 s for
    strings, ~0.5 s for lists); a warmed actor pays none of it on real data."""
    import datetime as dt
    import decimal

    import polars as pl

    n = 32 * 1024
    frame = pl.DataFrame(
        {
            "n": pl.Series(range(n), dtype=pl.Int64),
            "s": ["uzo"] * n,
            "l": [[1, 2]] * n,
            "d": [decimal.Decimal("1.25")] * n,
            "t": [dt.datetime(2020, 1, 1)] * n,
            "day": [dt.date(2020, 1, 1)] * n,
            "x": [0.5] * n,
            "b": [True] * n,
        }
    )
    return frame.to_arrow()


def never_cancelled() -> bool:
    return False


class NodeWorker:
    """Runs steps. Plain class: the in-process executor calls it directly, and
    ``ray.remote(**opts)(NodeWorker)`` makes it a node actor (one call at a time on the
    CPU lane, several at once on the I/O lane: each call has its own runner thread).

    The runner runs in a helper thread so the worker can give up on it (timeout,
    cancellation) and answer within ~50 ms; an abandoned thread marks the worker
    *poisoned* and the executor replaces it (killing the process stops the thread).
    """

    def __init__(self) -> None:
        self._cancelled: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._zombies: list[threading.Thread] = []
        self._wakes: dict[str, set[threading.Event]] = {}  # execution id -> waiting steps

    # -- control (runs in its own concurrency group when an actor) -------------

    def cancel(self, execution_id: str) -> None:
        with self._lock:
            self._cancelled[execution_id] = None
            while len(self._cancelled) > 1000:
                self._cancelled.popitem(last=False)
            wakes = list(self._wakes.get(execution_id, ()))
        for wake in wakes:  # its running steps give up at once
            wake.set()

    def is_cancelled(self, execution_id: str) -> bool:
        return execution_id in self._cancelled

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "zombies": self._live_zombies()}

    def _live_zombies(self) -> int:
        with self._lock:
            self._zombies = [t for t in self._zombies if t.is_alive()]
            return len(self._zombies)

    # -- work -------------------------------------------------------------------

    def run_step(self, call: StepCall, ctx: StepContext, *tables: pa.Table | Absent) -> Any:
        """Run one step; returns ``meta`` or ``(meta, *tables)`` (one item per output port)."""
        meta, outputs = self.execute(call, ctx, tables)
        if not call.outputs:
            return meta
        return (meta, *outputs)

    def execute(
        self, call: StepCall, ctx: StepContext, tables: Sequence[pa.Table | Absent]
    ) -> tuple[StepMeta, list[pa.Table | Absent]]:
        """Run one step (retries, timeout, cancellation); never raises for the step's own
        errors, whatever their kind: they become a ``failed`` meta naming the node."""
        started_at = time.time()
        meta, outputs = self._execute(call, ctx, tables)
        meta.started_at, meta.ended_at = started_at, time.time()
        return meta, outputs

    def _execute(
        self, call: StepCall, ctx: StepContext, tables: Sequence[pa.Table | Absent]
    ) -> tuple[StepMeta, list[pa.Table | Absent]]:
        started = time.perf_counter()
        absent = [t for t in tables if isinstance(t, Absent)]
        if absent:
            return not_run_meta(call, absent), [_propagate(absent) for _ in call.outputs]
        if self.is_cancelled(ctx.execution_id):
            return self._cancelled_result(call, "cancelled before start", attempts=0)
        inputs: dict[str, pa.Table] = {}
        for port, table in zip(call.input_ports, tables, strict=True):
            inputs[port] = table
        attempts = 0
        error: BaseException | None = None
        retry = node_retry_policy(call.retries, call.retry_backoff_seconds)
        while True:
            attempts += 1
            try:
                out = self._attempt(call, ctx, inputs)
            except _Cancelled:
                return self._cancelled_result(call, "cancelled while running")
            except BaseException as exc:  # the runner's own error (a Polars panic too)
                if isinstance(exc, _FATAL):
                    raise
                error = exc
                if attempts >= retry.max_attempts or self.is_cancelled(ctx.execution_id):
                    break
                if self._sleep_unless_cancelled(retry.backoff(attempts), ctx.execution_id):
                    return self._cancelled_result(call, "cancelled during retry backoff")
                continue
            try:
                return self._succeeded(call, inputs, out, attempts, started)
            except Exception as exc:  # a runner that broke the StepOutput contract
                error = exc
                break
        assert error is not None
        return self._failed(call, error, attempts, started), [
            Absent("failed", _failed_node(call, error)) for _ in call.outputs
        ]

    # -- internals ----------------------------------------------------------------

    def _attempt(
        self, call: StepCall, ctx: StepContext, inputs: Mapping[str, pa.Table]
    ) -> StepOutput:
        deadline = None if call.timeout_seconds is None else time.monotonic() + call.timeout_seconds
        execution_id = ctx.execution_id

        def cancelled() -> bool:
            return self.is_cancelled(execution_id) or (
                deadline is not None and time.monotonic() > deadline
            )

        from uzo_engine.runtime.local import run_subplan  # local imports this module

        run_ctx = dataclasses.replace(
            ctx, cancelled=cancelled, run_plan=ctx.run_plan or run_subplan
        )
        future: concurrent.futures.Future[StepOutput] = concurrent.futures.Future()

        def body() -> None:
            try:
                future.set_result(call.runner.run(inputs, run_ctx))
            except BaseException as exc:  # handed to the caller, whatever it is
                future.set_exception(exc)

        # woken by the runner's end, a cancel of this run or the deadline, never by a poll:
        # an I/O actor waits on hundreds of steps at once
        wake = threading.Event()
        future.add_done_callback(lambda _: wake.set())
        with self._lock:
            self._wakes.setdefault(execution_id, set()).add(wake)
        thread = threading.Thread(target=body, name=f"uzo-step-{call.step_id}", daemon=True)
        thread.start()
        try:
            while True:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                wake.wait(left)
                if future.done():
                    return self._outcome(future, call, execution_id, deadline)
                if self.is_cancelled(execution_id):
                    self._abandon(thread)
                    raise _Cancelled
                if deadline is not None and time.monotonic() >= deadline:
                    self._abandon(thread)
                    raise _TimedOut(f"timed out after {call.timeout_seconds:g} s")
                wake.clear()
        finally:
            with self._lock:
                waiting = self._wakes.get(execution_id)
                if waiting is not None:
                    waiting.discard(wake)
                    if not waiting:
                        del self._wakes[execution_id]

    def _outcome(
        self,
        future: concurrent.futures.Future[StepOutput],
        call: StepCall,
        execution_id: str,
        deadline: float | None,
    ) -> StepOutput:
        try:
            return future.result()
        except BaseException as exc:
            # a runner stopping because we asked it to is a cancellation or a timeout,
            # not a failure of its own
            if self.is_cancelled(execution_id):
                raise _Cancelled from exc
            if deadline is not None and time.monotonic() >= deadline:
                raise _TimedOut(f"timed out after {call.timeout_seconds:g} s") from exc
            raise

    def _abandon(self, thread: threading.Thread) -> None:
        """Give up on a running runner: its thread keeps running until the worker is replaced."""
        if thread.is_alive():
            with self._lock:
                self._zombies.append(thread)

    def _sleep_unless_cancelled(self, seconds: float, execution_id: str) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.is_cancelled(execution_id):
                return True
            time.sleep(min(_POLL_SECONDS, max(0.0, end - time.monotonic())))
        return self.is_cancelled(execution_id)

    def _meta(self, call: StepCall, status: StepStatus, results: list[NodeResult]) -> StepMeta:
        return StepMeta(call.step_id, status, results, os.getpid(), self._live_zombies() > 0)

    def _cancelled_result(
        self, call: StepCall, message: str, attempts: int = 1
    ) -> tuple[StepMeta, list[pa.Table | Absent]]:
        results = [
            NodeResult(n, "cancelled", attempts=attempts, error=message) for n in call.node_ids
        ]
        absent: list[pa.Table | Absent] = [
            Absent("cancelled", call.node_ids[0]) for _ in call.outputs
        ]
        return self._meta(call, "cancelled", results), absent

    def _failed(
        self, call: StepCall, error: BaseException, attempts: int, started: float
    ) -> StepMeta:
        culprit = _failed_node(call, error)
        text = error_text(error)
        duration = (time.perf_counter() - started) * 1000
        results = failed_step_results(
            call.runner, call.node_ids, culprit, text, attempts=attempts, duration_ms=duration
        )
        if not isinstance(error, _TimedOut):  # the traceback, for the worker's log
            log.info("step %s failed at node %s", call.step_id, culprit, exc_info=error)
        return self._meta(call, "failed", results)

    def _succeeded(
        self,
        call: StepCall,
        inputs: Mapping[str, pa.Table],
        out: StepOutput,
        attempts: int,
        started: float,
    ) -> tuple[StepMeta, list[pa.Table | Absent]]:
        last = call.node_ids[-1]
        tables: list[pa.Table | Absent] = []
        for port in call.outputs:
            if port in out.skipped_ports:
                tables.append(Absent("skipped", last))
            elif port in out.tables:
                tables.append(out.tables[port])
            else:
                raise ValueError(f"node {last} produced no table for output port {port!r}")
        duration = (time.perf_counter() - started) * 1000
        by_node = {r.node_id: r for r in out.results}
        results = [by_node.get(n) or NodeResult(n, "succeeded") for n in call.node_ids]
        produced = [t for t in tables if not isinstance(t, Absent)]
        first, final = results[0], results[-1]
        # a runner that reports no result for its first node: its rows in are the step's
        # (a fused tree reports each node's own: its first node may be a source)
        if call.node_ids[0] not in by_node:
            first.rows_in = sum(t.num_rows for t in inputs.values())
        if produced:
            if not final.rows_out:
                final.rows_out = produced[0].num_rows
            if not final.bytes_out:
                final.bytes_out = sum(int(t.nbytes) for t in produced)
            if not final.output_schema:
                final.output_schema = schema_of(produced[0])
        for r in results:
            r.attempts = attempts
            if not r.duration_ms:
                r.duration_ms = duration / len(results)
        status: StepStatus = "failed" if any(r.status == "failed" for r in results) else "succeeded"
        meta = self._meta(call, status, results)
        meta.skipped_ports = frozenset(p for p in call.outputs if p in out.skipped_ports)
        return meta, tables


def not_run_meta(call: StepCall, absent: Sequence[Absent]) -> StepMeta:
    """The meta of a step that did not run because inputs were not produced: its nodes are
    ``upstream_failed``, ``cancelled`` or ``skipped`` (in that order of precedence)."""
    reasons = {a.reason for a in absent}
    status: StepStatus
    if "failed" in reasons:
        status, why = "upstream_failed", "failed"
    elif "cancelled" in reasons:
        status, why = "cancelled", "cancelled"
    else:
        status, why = "skipped", "skipped"
    origin = next(a.origin for a in absent if a.reason == why)
    message = f"upstream node {origin} {why}"
    results = [NodeResult(n, status, attempts=0, error=message) for n in call.node_ids]
    return StepMeta(call.step_id, status, results, origin=origin)


def error_text(error: BaseException) -> str:
    """A node's error as the user reads it: a node error or a timeout as it says (it
    names the node), anything else with its kind, e.g. ``PanicException: ...``."""
    from uzo_engine.nodes.base import NodeExecutionError

    if isinstance(error, (NodeExecutionError, _TimedOut)):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _failed_node(call: StepCall, error: BaseException) -> str:
    """The node a fused step failed in: the error's ``node_id`` if it names one of ours."""
    named = getattr(error, "node_id", None)
    return named if named in call.node_ids else call.node_ids[0]


def _propagate(absent: Sequence[Absent]) -> Absent:
    for reason in ("failed", "cancelled", "skipped"):
        for a in absent:
            if a.reason == reason:
                return Absent(a.reason, a.origin)
    return absent[0]


def schema_of(table: pa.Table) -> tuple[ColumnInfo, ...]:
    return tuple(ColumnInfo(f.name, str(f.type), bool(f.nullable)) for f in table.schema)


def plain_context(ctx: StepContext) -> StepContext:
    """``ctx`` without its ``cancelled`` callable (workers install their own)."""
    return dataclasses.replace(ctx, cancelled=never_cancelled)
