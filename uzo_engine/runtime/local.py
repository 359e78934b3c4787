"""Run an ExecutionPlan in this process: no Ray, no Prefect.

The executor core (:mod:`uzo_engine.runtime.core`) on the in-process backend:
the same driver, the same :meth:`NodeWorker.execute` per step and the same
:class:`~uzo_engine.runtime.core.RunResult` as a run on the node actors, so a
workflow reports the same statuses, rows and error text here as on Ray. Used by
unit tests, by ``uzo run --local`` and ``uzo preview --local`` (:class:`LocalPreviewRunner`),
and by the loop node for its iterations.

A timed-out or cancelled step's thread cannot be killed in a process: it is
abandoned (it stops at its next cancellation check) and its worker is not reused.
Node resource requests (``settings.cpus`` ...) are a cluster matter and ignored here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import os
import threading
import uuid
from typing import TYPE_CHECKING, Any

from uzo_engine.compiler import CompileOptions, compile_workflow
from uzo_engine.plan import StepContext
from uzo_engine.runtime.backends import InProcessBackend
from uzo_engine.runtime.core import RunResult, cancel_run, execute

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterable, Mapping

    from uzo_engine.events import EventSink
    from uzo_engine.graph import WorkflowGraph
    from uzo_engine.plan import ExecutionPlan
    from uzo_engine.runtime.core import PortKey
    from uzo_engine.validation import ValidatedWorkflow

__all__ = ["LocalExecutor", "LocalPreviewRunner", "RunResult", "run_subplan", "run_workflow"]


def default_concurrency() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class LocalExecutor:
    """Runs plans in this process; ``concurrency`` steps at once (independent branches)."""

    def __init__(self, sink: EventSink | None = None, *, concurrency: int | None = None):
        self.sink = sink
        self.concurrency = concurrency or default_concurrency()

    def run(
        self,
        plan: ExecutionPlan,
        ctx: StepContext | None = None,
        *,
        keep_outputs: Iterable[str] | None = None,
    ) -> RunResult:
        """Run ``plan``; the result keeps every step's output unless ``keep_outputs`` says."""
        ctx = ctx or StepContext(execution_id=uuid.uuid4().hex)
        if ctx.run_plan is None:
            ctx = dataclasses.replace(ctx, run_plan=run_subplan)
        backend = InProcessBackend(self.concurrency)
        keep = list(plan.steps) if keep_outputs is None else keep_outputs
        return _run_to_end(execute(plan, ctx, backend, sink=self.sink, keep_outputs=keep))


_loops = threading.local()


def _run_to_end(coro: Coroutine[Any, Any, RunResult]) -> RunResult:
    """Run ``coro`` on this thread's own loop, kept for the next run (a new loop per run
    costs ~5 ms); in a helper thread if this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = getattr(_loops, "loop", None)
        if loop is None or loop.is_closed():
            loop = _loops.loop = asyncio.new_event_loop()
        return loop.run_until_complete(coro)
    with concurrent.futures.ThreadPoolExecutor(1, "uzo-local-run") as pool:
        return pool.submit(_run_to_end, coro).result()


class LocalPreviewRunner:
    """A preview's steps in this process (:func:`~uzo_engine.runtime.preview.preview_node`'s
    ``runner``): the executor core on the in-process backend, as :class:`LocalExecutor`."""

    def __init__(self, concurrency: int | None = None) -> None:
        self.concurrency = concurrency or default_concurrency()

    def __call__(
        self,
        plan: ExecutionPlan,
        ctx: StepContext,
        keep: list[str],
        given: dict[PortKey, Any],
        timeout_seconds: float,
    ) -> RunResult:
        ctx = dataclasses.replace(ctx, run_plan=ctx.run_plan or run_subplan)
        backend = InProcessBackend(self.concurrency)
        timer = threading.Timer(timeout_seconds, cancel_run, (ctx.execution_id,))
        timer.daemon = True
        timer.start()
        try:
            return _run_to_end(execute(plan, ctx, backend, keep_outputs=keep, given=given))
        finally:
            timer.cancel()

    def fetch(self, value: Any) -> Any:
        return value


def run_subplan(plan: ExecutionPlan, ctx: StepContext) -> RunResult:
    """Run a sub-plan (a loop node's iteration) in this process; ``StepContext.run_plan``."""
    return LocalExecutor(concurrency=1).run(plan, ctx)


def run_workflow(
    workflow: WorkflowGraph | Mapping[str, Any] | ValidatedWorkflow,
    *,
    name: str = "workflow",
    options: CompileOptions | None = None,
    ctx: StepContext | None = None,
    sink: EventSink | None = None,
) -> RunResult:
    """Validate, compile and run a workflow in this process."""
    plan = compile_workflow(workflow, name=name, options=options)
    return LocalExecutor(sink).run(plan, ctx)
