"""WorkflowGraph -> ExecutionPlan. Pure code: no Ray or Prefect import.

Rules (see also docs/adr/0004 on fusion):

- **Order**: nodes in topological order (stable in document order).
- **Fusion**: an edge ``a -> b`` is *internal* to a step when ``a`` is lazy
  (builds a Polars lazy plan), has one output, that output feeds exactly one
  node (no fan-out) and ``b`` is lazy with the same settings (retries/backoff/
  timeout), and ``a`` is not a preview point (``materialize``). A lazy ``b``
  with one input always qualifies: row-wise nodes (filter, select, derive,
  cast, ...) and, with ``CompileOptions.fuse_wide`` (the default), whole-table
  nodes (sort, aggregate, limit, distinct, window, unpivot): a step is one
  table in one actor, so they need no boundary. A multi-input lazy node (join,
  union) qualifies with ``CompileOptions.fuse_joins`` (the default): it absorbs
  the lazy chains feeding it, so one Polars plan covers the whole tree and
  Polars optimises across the join. The steps are the connected groups of
  internal edges; each is a tree whose output is its last node. Data is
  materialised where it fans out, feeds a non-lazy node (SQL, control flow,
  sinks: writes are never lazy), at a preview point, or where settings differ.
- **Step inputs**: a step's inputs are the edges entering it from other steps.
  Those entering its first node keep the node's port name (``in``, ``left``,
  SQL handles ...); those entering another node of a fused tree are named
  ``"<node_id>:<port>"`` (every port qualified if that would be ambiguous). The
  runner maps ports to nodes (``FusedRunner.wiring``).
- **Fused steps** compose one lazy plan and collect it once. Every node still
  gets a NodeResult: its output schema comes from the lazy plan. Rows/bytes/
  duration are measured at the step boundary only: the *last* node reports the
  output rows, bytes, the step's duration and a profile; a node fed by step
  inputs reports their rows as ``rows_in``; the other values of inner nodes are
  ``-1`` ("not measured", rows) and ``0.0`` (duration). An eager node reports
  rows in/out of its own tables; a sink (no outputs) reports the rows it wrote
  as ``rows_out``. An output port missing from an eager node's result is
  reported in ``StepOutput.skipped_ports`` (branch: condition false).
- **Profiles** (``CompileOptions.profile``) are computed on each step's output
  table only (see :mod:`uzo_engine.profile` for what is sampled).
- **Stages**: steps in topological order (of their output node) cut into
  consecutive groups of at most ``max_steps_per_stage``; a stage only depends on
  itself and earlier stages.
- **Settings**: per node ``data.settings`` {retries, retry_backoff_seconds,
  timeout_seconds, cpus, memory_mb, resources} become the step's settings (nodes
  fused together share them; a node asking for resources is fused only with nodes
  asking the same).
- **Lanes**: a step made only of I/O-bound node types (``NodeType.io_bound``) runs
  on the I/O lane; any other on the CPU lane.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uzo_engine.plan import ExecutionPlan, PlanStep, Stage, StepInput, StepResources
from uzo_engine.plan.runners import FusedRunner, NodeRunner, NodeSpec, Wire
from uzo_engine.validation import ValidatedWorkflow, validate_workflow

if TYPE_CHECKING:
    from collections.abc import Mapping

    from uzo_engine.graph import NodeSettings, WorkflowGraph
    from uzo_engine.plan import StepRunner

__all__ = [
    "CompileOptions",
    "FusedRunner",
    "NodeRunner",
    "NodeSpec",
    "Wire",
    "compile_workflow",
]


@dataclass(frozen=True)
class CompileOptions:
    max_steps_per_stage: int = 1000
    fuse: bool = True
    fuse_wide: bool = True  # sort/aggregate/limit/distinct/window/unpivot join a chain
    fuse_joins: bool = True  # a join/union absorbs the lazy chains that feed only it
    materialize: frozenset[str] = frozenset()  # node ids whose output must be a table
    upstream_of: str | None = None  # compile only this node and its ancestors (preview)
    profile: bool = True  # profile each step's output table


def _settings_key(settings: NodeSettings) -> tuple[Any, ...]:
    return (
        settings.retries,
        settings.retry_backoff_seconds,
        settings.timeout_seconds,
        settings.resource_request(),
    )


def _resources(settings: NodeSettings) -> StepResources | None:
    """The step's request beyond one slot of its lane (None when the node asks nothing)."""
    if settings.cpus is None and settings.memory_mb is None and not settings.resources:
        return None
    return StepResources(
        cpus=settings.cpus if settings.cpus is not None else 1.0,
        memory_bytes=settings.memory_mb * 1024 * 1024 if settings.memory_mb else None,
        custom=tuple(sorted((settings.resources or {}).items())),
    )


def _ancestors(wf: ValidatedWorkflow, node_id: str) -> set[str]:
    keep, todo = {node_id}, [node_id]
    while todo:
        for edge in wf.nodes[todo.pop()].inputs.values():
            if edge.source not in keep:
                keep.add(edge.source)
                todo.append(edge.source)
    return keep


def _internal_target(
    wf: ValidatedWorkflow,
    node_id: str,
    in_scope: set[str],
    materialize: set[str],
    opts: CompileOptions,
) -> str | None:
    """The consumer ``node_id`` fuses into, or None when its output is materialised."""
    vn = wf.nodes[node_id]
    nt = vn.node_type
    if not opts.fuse or not nt.lazy or len(nt.outputs) != 1 or node_id in materialize:
        return None
    consumers = wf.consumers(node_id)
    if len(consumers) != 1 or consumers[0].target not in in_scope:
        return None
    nxt = wf.nodes[consumers[0].target]
    ct = nxt.node_type
    if not ct.lazy:
        return None
    if ct.variadic_inputs or len(ct.inputs) != 1:
        if not opts.fuse_joins:
            return None
    elif not (ct.rowwise or opts.fuse_wide):
        return None
    if _settings_key(nxt.node.data.settings) != _settings_key(vn.node.data.settings):
        return None
    return nxt.node.id


def _step_inputs(
    wf: ValidatedWorkflow, nodes: list[str], group_of: Mapping[str, str]
) -> tuple[tuple[StepInput, ...], tuple[tuple[Wire, ...], ...]]:
    """The step's inputs (edges from other steps) and each node's wiring."""
    members = set(nodes)
    entering = [
        (n, port, e)
        for n in nodes
        for port, e in sorted(wf.nodes[n].inputs.items())
        if e.source not in members
    ]
    names = [port if n == nodes[0] else f"{n}:{port}" for n, port, _ in entering]
    if len(set(names)) != len(names):  # a first-node port spelled like "<node>:<port>"
        names = [f"{n}:{port}" for n, port, _ in entering]
    step_port = {(n, port): name for (n, port, _), name in zip(entering, names, strict=True)}
    inputs = tuple(
        StepInput(port=name, step_id=group_of[e.source], output_port=e.source_port)
        for (_, _, e), name in zip(entering, names, strict=True)
    )
    wiring = tuple(
        tuple(
            Wire(port, step_port[(n, port)], external=True)
            if e.source not in members
            else Wire(port, e.source)
            for port, e in sorted(wf.nodes[n].inputs.items())
        )
        for n in nodes
    )
    return inputs, wiring


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

    # each node fuses into at most one consumer, so the groups are in-trees: each node's
    # root (the node whose output leaves the group) is its consumer's, found from the last
    # node back (one step per node: a walk down from each node is quadratic on a long chain)
    into = {n: _internal_target(wf, n, in_scope, materialize, opts) for n in order}
    position = {n: i for i, n in enumerate(order)}
    root_of: dict[str, str] = {}
    for n in reversed(order):
        nxt = into[n]
        root_of[n] = n if nxt is None else root_of[nxt]
    members: dict[str, list[str]] = {}  # root -> nodes in topological order
    for n in order:
        members.setdefault(root_of[n], []).append(n)
    roots = sorted(members, key=position.__getitem__)  # topological order of the outputs
    group_of = {n: members[root_of[n]][0] for n in order}  # step id = its first node

    steps: dict[str, PlanStep] = {}
    for root in roots:
        nodes = members[root]
        head, tail = wf.nodes[nodes[0]], wf.nodes[root]
        specs = tuple(NodeSpec(n, wf.nodes[n].node_type.name, wf.nodes[n].params) for n in nodes)
        inputs, wiring = _step_inputs(wf, nodes, group_of)
        runner: StepRunner
        if head.node_type.lazy:
            runner = FusedRunner(specs, profile=opts.profile, wiring=wiring)
        else:
            runner = NodeRunner(specs[0], profile=opts.profile)
        settings = tail.node.data.settings
        steps[nodes[0]] = PlanStep(
            step_id=nodes[0],
            node_ids=tuple(nodes),
            inputs=inputs,
            outputs=tail.node_type.outputs,
            runner=runner,
            retries=settings.retries,
            retry_backoff_seconds=settings.retry_backoff_seconds,
            timeout_seconds=settings.timeout_seconds,
            materialize=bool(tail.node_type.outputs),
            lane="io" if all(wf.nodes[n].node_type.io_bound for n in nodes) else "cpu",
            resources=_resources(settings),
        )

    step_order = list(steps)
    size = max(1, opts.max_steps_per_stage)
    stages = tuple(
        Stage(index=i, step_ids=tuple(step_order[s : s + size]))
        for i, s in enumerate(range(0, len(step_order), size))
    )
    return ExecutionPlan(workflow_name=name, steps=steps, stages=stages, node_to_step=group_of)
