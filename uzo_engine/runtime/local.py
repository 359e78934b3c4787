"""Run an ExecutionPlan in this process: no Ray, no Prefect.

Used by unit tests, by the loop node for its sub-workflows, and anywhere a
small workflow should run without a cluster. Semantics match the runtime's:
steps run in plan order; a step whose input port was skipped (branch/router)
is *skipped*; a step downstream of a failure is *upstream_failed*; a failing
step is retried ``retries`` times, waiting as the runtime does
(:func:`uzo_engine.runtime.actors.node_retry_policy`); ``timeout_seconds``
bounds each attempt (the attempt's thread cannot be killed: it is abandoned);
cancellation (``ctx.cancelled()``) is checked before each step.

Within a failed step, as in the runtime (:func:`uzo_engine.plan.failed_step_results`):
the node the error names is ``failed``, the nodes of the step that read its
output ``upstream_failed``, and the step's other nodes ``failed`` with a message
naming the failing node (their part of the fused plan produced no output).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from uzo_engine.compiler import CompileOptions, compile_workflow
from uzo_engine.events import NodeEvent, RunEvent
from uzo_engine.nodes.base import NodeExecutionError
from uzo_engine.plan import NodeResult, StepContext, failed_step_results
from uzo_engine.runtime.actors import node_retry_policy

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pyarrow as pa

    from uzo_engine.events import EventSink
    from uzo_engine.graph import WorkflowGraph
    from uzo_engine.plan import ExecutionPlan, NodeStatus, PlanStep, StepOutput
    from uzo_engine.validation import ValidatedWorkflow


class _NullSink:
    def node_event(self, event: NodeEvent) -> None:
        pass

    def run_event(self, event: RunEvent) -> None:
        pass


@dataclass
class RunResult:
    status: NodeStatus  # succeeded | failed | cancelled
    plan: ExecutionPlan
    results: dict[str, NodeResult] = field(default_factory=dict)  # node id -> result
    outputs: dict[tuple[str, str], pa.Table] = field(default_factory=dict)  # (step, port)
    error: str | None = None

    def table(self, node_id: str, port: str = "out") -> pa.Table:
        """The output table of a node (the last node of its step: inner fused ones have none)."""
        step = self.plan.steps[self.plan.node_to_step[node_id]]
        if step.node_ids[-1] != node_id:
            raise KeyError(
                f"node {node_id!r} is fused into step {step.step_id!r}; its output "
                "is not materialised (compile with materialize={node_id})"
            )
        key = (step.step_id, port)
        if key not in self.outputs:
            status = self.results[node_id].status if node_id in self.results else "not run"
            raise KeyError(f"no output {port!r} for node {node_id!r} (status: {status})")
        return self.outputs[key]

    def status_of(self, node_id: str) -> NodeStatus:
        return self.results[node_id].status


class LocalExecutor:
    def __init__(self, sink: EventSink | None = None):
        self.sink: EventSink = sink if sink is not None else _NullSink()

    def run(self, plan: ExecutionPlan, ctx: StepContext | None = None) -> RunResult:
        ctx = ctx or StepContext(execution_id=uuid.uuid4().hex)
        if ctx.run_plan is None:
            ctx = dataclasses.replace(ctx, run_plan=run_subplan)
        result = RunResult(status="succeeded", plan=plan)
        state: dict[str, str] = {}  # step id -> succeeded | failed | skipped | cancelled
        skipped_ports: dict[str, frozenset[str]] = {}
        self.sink.run_event(RunEvent(ctx.execution_id, "running"))
        for step in plan.steps.values():
            for n in step.node_ids:
                self._emit(ctx, n, "queued")
        for stage in plan.stages:
            for step_id in stage.step_ids:
                step = plan.steps[step_id]
                blocked = self._blocked(step, state, skipped_ports)
                if blocked is None and ctx.cancelled():
                    blocked = "cancelled"
                if blocked is not None:
                    state[step_id] = blocked
                    for n in step.node_ids:
                        self._finish(ctx, result, NodeResult(n, blocked))  # type: ignore[arg-type]
                    continue
                out = self._run_step(step, result, ctx)
                if out is None:
                    state[step_id] = "failed"
                    continue
                state[step_id] = "succeeded"
                skipped_ports[step_id] = out.skipped_ports
                for port, table in out.tables.items():
                    result.outputs[(step_id, port)] = table
                for r in out.results:
                    self._finish(ctx, result, r)
        statuses = set(state.values())
        if "failed" in statuses:
            result.status = "failed"
        elif "cancelled" in statuses:
            result.status = "cancelled"
        self.sink.run_event(RunEvent(ctx.execution_id, result.status, result.error))
        return result

    @staticmethod
    def _blocked(
        step: PlanStep, state: Mapping[str, str], skipped_ports: Mapping[str, frozenset[str]]
    ) -> str | None:
        outcome = None
        for inp in step.inputs:
            upstream = state.get(inp.step_id)
            if upstream in ("failed", "upstream_failed"):
                return "upstream_failed"
            if upstream == "cancelled":
                outcome = "cancelled"
            elif upstream == "skipped" or inp.output_port in skipped_ports.get(inp.step_id, ()):
                outcome = outcome or "skipped"
        return outcome

    def _run_step(self, step: PlanStep, result: RunResult, ctx: StepContext) -> StepOutput | None:
        inputs = {inp.port: result.outputs[(inp.step_id, inp.output_port)] for inp in step.inputs}
        for n in step.node_ids:
            self._emit(ctx, n, "running")
        retry = node_retry_policy(step.retries, step.retry_backoff_seconds)
        attempts = retry.max_attempts
        error: BaseException | None = None
        for attempt in range(1, attempts + 1):
            try:
                out = self._attempt(step, inputs, ctx)
            except Exception as e:
                error = e
                if attempt < attempts:
                    time.sleep(retry.backoff(attempt))
                continue
            for r in out.results:
                r.attempts = attempt
            return out
        assert error is not None
        failed_node = error.node_id if isinstance(error, NodeExecutionError) else step.node_ids[0]
        if failed_node not in step.node_ids:
            failed_node = step.node_ids[0]
        message = (
            str(error)
            if isinstance(error, NodeExecutionError)
            else (f"node {failed_node!r}: {type(error).__name__}: {error}")
        )
        result.error = result.error or message
        for r in failed_step_results(
            step.runner, step.node_ids, failed_node, message, attempts=attempts
        ):
            self._finish(ctx, result, r)
        return None

    @staticmethod
    def _attempt(step: PlanStep, inputs: dict[str, pa.Table], ctx: StepContext) -> StepOutput:
        if step.timeout_seconds is None:
            return step.runner.run(inputs, ctx)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        try:
            future = pool.submit(step.runner.run, inputs, ctx)
            try:
                return future.result(timeout=step.timeout_seconds)
            except concurrent.futures.TimeoutError:
                raise TimeoutError(f"timed out after {step.timeout_seconds:g} s") from None
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _emit(
        self, ctx: StepContext, node_id: str, status: NodeStatus, result: NodeResult | None = None
    ) -> None:
        message = result.error if result is not None else None
        self.sink.node_event(NodeEvent(ctx.execution_id, node_id, status, result, message))

    def _finish(self, ctx: StepContext, run: RunResult, r: NodeResult) -> None:
        run.results[r.node_id] = r
        self._emit(ctx, r.node_id, r.status, r)


def run_subplan(plan: ExecutionPlan, ctx: StepContext) -> RunResult:
    """Run a sub-plan (a loop node's iteration) in this process; ``StepContext.run_plan``."""
    return LocalExecutor().run(plan, ctx)


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
