"""WorkflowGraph -> ExecutionPlan. Pure code: no Ray or Prefect import.

Rules (see also docs/adr on fusion and stages):

- **Order**: nodes in topological order (stable in document order).
- **Fusion**: a step starts at any node. When that node is lazy (builds a Polars
  lazy plan), has one output, and that output feeds exactly one node that is
  *row-wise* (filter, select, derive, cast, fill_null, ...) with a single input,
  the consumer joins the step; the chain grows while this holds. With
  ``CompileOptions.fuse_wide`` lazy whole-table nodes with a single input (sort,
  aggregate, limit, distinct, window, unpivot) extend chains too. A chain stops
  where data fans out (several consumers), feeds a non-row-wise or multi-input
  node, is written (sinks are never lazy), is previewed (``materialize``), or
  where node settings (retries/backoff/timeout) differ.
- **Fused steps** compose one lazy plan and collect it once. Every node still
  gets a NodeResult: its output schema comes from the lazy plan. Rows/bytes/
  duration are measured at the step boundary only: the *last* node reports the
  output rows, bytes, the step's duration and a profile; the first node reports
  the input rows; the other values of inner nodes are ``-1`` ("not measured",
  rows) and ``0.0`` (duration). An eager node reports rows in/out of its own
  tables; a sink (no outputs) reports the rows it wrote as ``rows_out``. An
  output port missing from an eager node's result is reported in
  ``StepOutput.skipped_ports`` (branch: condition false).
- **Stages**: steps in topological order cut into consecutive groups of at most
  ``max_steps_per_stage``; a stage only depends on itself and earlier stages.
- **Settings**: per node ``data.settings`` {retries, retry_backoff_seconds,
  timeout_seconds} become the step's settings (nodes fused together share them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from uzo_engine.nodes.base import LazyNodeType, NodeExecutionError, Params
from uzo_engine.nodes.registry import get_node_type
from uzo_engine.nodes.types import column_infos, polars_schema, to_arrow, to_polars
from uzo_engine.plan import ExecutionPlan, NodeResult, PlanStep, Stage, StepInput, StepOutput
from uzo_engine.profile import profile_table
from uzo_engine.validation import ValidatedWorkflow, validate_workflow

if TYPE_CHECKING:
    from collections.abc import Mapping

    import polars as pl
    import pyarrow as pa

    from uzo_engine.graph import NodeSettings, WorkflowGraph
    from uzo_engine.plan import StepContext


@dataclass(frozen=True)
class CompileOptions:
    max_steps_per_stage: int = 1000
    fuse: bool = True
    fuse_wide: bool = False
    materialize: frozenset[str] = frozenset()  # node ids whose output must be a table
    upstream_of: str | None = None  # compile only this node and its ancestors (preview)
    profile: bool = True  # profile each step's output table


@dataclass(frozen=True)
class NodeSpec:
    """What a runner needs to run one node: plain, picklable data."""

    node_id: str
    node_type: str
    params: Params


def _error_text(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _lazy_type(name: str) -> LazyNodeType[Any]:
    nt = get_node_type(name)
    if not isinstance(nt, LazyNodeType):
        raise TypeError(f"node type {name!r} cannot be fused (it has no lazy plan)")
    return nt


@dataclass(frozen=True)
class NodeRunner:
    """Runs one eager node (SQL, control flow, I/O, ...) on Arrow tables."""

    spec: NodeSpec
    profile: bool = True

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        nt = get_node_type(self.spec.node_type)
        start = time.perf_counter()
        try:
            tables = nt.run(self.spec.params, inputs, ctx)
        except NodeExecutionError:
            raise
        except Exception as e:
            frames = {p: to_polars(t) for p, t in inputs.items()}
            detail = nt.explain_error(self.spec.params, frames, e) or _error_text(e)
            raise NodeExecutionError(self.spec.node_id, nt.name, detail) from e
        rows_in = sum(t.num_rows for t in inputs.values())
        rows_out = sum(t.num_rows for t in tables.values()) if nt.outputs else rows_in
        first = next(iter(tables.values()), None)
        result = NodeResult(
            node_id=self.spec.node_id,
            status="succeeded",
            rows_in=rows_in,
            rows_out=rows_out,
            bytes_out=sum(t.nbytes for t in tables.values()),
            duration_ms=(time.perf_counter() - start) * 1000,
            output_schema=column_infos(polars_schema(first.schema)) if first is not None else (),
            profile=profile_table(first) if self.profile and first is not None else None,
        )
        skipped = frozenset(p for p in nt.outputs if p not in tables)
        return StepOutput(tables=dict(tables), results=[result], skipped_ports=skipped)


@dataclass(frozen=True)
class FusedRunner:
    """Runs a chain of lazy nodes as one Polars plan, collected once."""

    specs: tuple[NodeSpec, ...]
    profile: bool = True

    def _plans(self, inputs: Mapping[str, pl.LazyFrame], ctx: StepContext) -> list[pl.LazyFrame]:
        plans: list[pl.LazyFrame] = []
        for i, spec in enumerate(self.specs):
            nt = _lazy_type(spec.node_type)
            frames = dict(inputs) if i == 0 else {"in": plans[-1]}
            try:
                lf = next(iter(nt.build(spec.params, frames).values()))
            except Exception as e:
                raise NodeExecutionError(spec.node_id, nt.name, _error_text(e)) from e
            if i == 0 and not nt.inputs and not nt.variadic_inputs and ctx.preview_limit:
                lf = lf.head(ctx.preview_limit)  # a source in a preview reads few rows
            plans.append(lf)
        return plans

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        start = time.perf_counter()
        frames = {p: to_polars(t).lazy() for p, t in inputs.items()}
        plans = self._plans(frames, ctx)
        if ctx.cancelled():
            raise RuntimeError("cancelled")
        try:
            schemas = [lf.collect_schema() for lf in plans]
            out = plans[-1].collect()
        except Exception as e:
            raise self._locate_failure(inputs, ctx, e) from e
        table = to_arrow(out)
        duration = (time.perf_counter() - start) * 1000
        results = []
        last = len(self.specs) - 1
        for i, (spec, schema) in enumerate(zip(self.specs, schemas, strict=True)):
            results.append(
                NodeResult(
                    node_id=spec.node_id,
                    status="succeeded",
                    rows_in=sum(t.num_rows for t in inputs.values()) if i == 0 else -1,
                    rows_out=out.height if i == last else -1,
                    bytes_out=table.nbytes if i == last else 0,
                    duration_ms=duration if i == last else 0.0,
                    output_schema=column_infos(schema),
                    profile=profile_table(table) if self.profile and i == last else None,
                )
            )
        return StepOutput(tables={"out": table}, results=results)

    def _locate_failure(
        self, inputs: Mapping[str, pa.Table], ctx: StepContext, error: Exception
    ) -> NodeExecutionError:
        """Re-run node by node to name the node that fails and explain why."""
        frames: dict[str, pl.DataFrame] = {p: to_polars(t) for p, t in inputs.items()}
        for i, spec in enumerate(self.specs):
            nt = _lazy_type(spec.node_type)
            try:
                built = nt.build(spec.params, {p: df.lazy() for p, df in frames.items()})
                if i == 0 and not nt.inputs and not nt.variadic_inputs and ctx.preview_limit:
                    built = {k: v.head(ctx.preview_limit) for k, v in built.items()}
                frames = {"in": next(iter(built.values())).collect()}
            except Exception as e:
                detail = nt.explain_error(spec.params, frames, e) or _error_text(e)
                return NodeExecutionError(spec.node_id, nt.name, detail)
        spec = self.specs[-1]
        return NodeExecutionError(spec.node_id, spec.node_type, _error_text(error))


@dataclass
class _Chain:
    node_ids: list[str] = field(default_factory=list)


def _settings_key(settings: NodeSettings) -> tuple[Any, ...]:
    return (settings.retries, settings.retry_backoff_seconds, settings.timeout_seconds)


def _ancestors(wf: ValidatedWorkflow, node_id: str) -> set[str]:
    keep, todo = {node_id}, [node_id]
    while todo:
        for edge in wf.nodes[todo.pop()].inputs.values():
            if edge.source not in keep:
                keep.add(edge.source)
                todo.append(edge.source)
    return keep


def compile_workflow(
    workflow: WorkflowGraph | Mapping[str, Any] | ValidatedWorkflow,
    *,
    name: str = "workflow",
    options: CompileOptions | None = None,
) -> ExecutionPlan:
    """Validate (unless given a ValidatedWorkflow) and compile into steps and stages."""
    opts = options or CompileOptions()
    wf = workflow if isinstance(workflow, ValidatedWorkflow) else validate_workflow(workflow)
    order = wf.order
    if opts.upstream_of is not None:
        if opts.upstream_of not in wf.nodes:
            raise KeyError(f"unknown node {opts.upstream_of!r}")
        keep = _ancestors(wf, opts.upstream_of)
        order = [n for n in order if n in keep]
    in_scope = set(order)
    materialize = set(opts.materialize)
    if opts.upstream_of is not None:
        materialize.add(opts.upstream_of)

    def next_in_chain(node_id: str) -> str | None:
        vn = wf.nodes[node_id]
        nt = vn.node_type
        if not opts.fuse or not nt.lazy or len(nt.outputs) != 1 or node_id in materialize:
            return None
        consumers = [e for e in wf.consumers(node_id) if e.target in in_scope]
        if len(consumers) != 1 or len(wf.consumers(node_id)) != 1:
            return None
        nxt = wf.nodes[consumers[0].target]
        ct = nxt.node_type
        if not ct.lazy or ct.variadic_inputs or len(ct.inputs) != 1:
            return None
        if not (ct.rowwise or opts.fuse_wide):
            return None
        if _settings_key(nxt.node.data.settings) != _settings_key(vn.node.data.settings):
            return None
        return nxt.node.id

    assigned: dict[str, str] = {}
    chains: list[list[str]] = []
    for node_id in order:
        if node_id in assigned:
            continue
        chain = [node_id]
        while (nxt := next_in_chain(chain[-1])) is not None:
            chain.append(nxt)
        for n in chain:
            assigned[n] = node_id
        chains.append(chain)

    steps: dict[str, PlanStep] = {}
    for chain in chains:
        head, tail = wf.nodes[chain[0]], wf.nodes[chain[-1]]
        specs = tuple(NodeSpec(n, wf.nodes[n].node_type.name, wf.nodes[n].params) for n in chain)
        runner: FusedRunner | NodeRunner
        if head.node_type.lazy:
            runner = FusedRunner(specs, profile=opts.profile)
        else:
            runner = NodeRunner(specs[0], profile=opts.profile)
        inputs = tuple(
            StepInput(port=port, step_id=assigned[e.source], output_port=e.source_port)
            for port, e in sorted(head.inputs.items())
        )
        settings = head.node.data.settings
        steps[chain[0]] = PlanStep(
            step_id=chain[0],
            node_ids=tuple(chain),
            inputs=inputs,
            outputs=tail.node_type.outputs,
            runner=runner,
            retries=settings.retries,
            retry_backoff_seconds=settings.retry_backoff_seconds,
            timeout_seconds=settings.timeout_seconds,
            materialize=bool(tail.node_type.outputs),
        )

    step_order = list(steps)  # chains were started in topological order
    size = max(1, opts.max_steps_per_stage)
    stages = tuple(
        Stage(index=i, step_ids=tuple(step_order[s : s + size]))
        for i, s in enumerate(range(0, len(step_order), size))
    )
    return ExecutionPlan(
        workflow_name=name, steps=steps, stages=stages, node_to_step=dict(assigned)
    )
