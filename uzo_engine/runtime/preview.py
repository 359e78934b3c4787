"""Dev preview: run the steps one node needs on the warm cluster, without a Prefect flow run.

The steps upstream of the node run through the executor core (no Prefect flow run).
The preview is the node's true first rows: the limit is applied at the node (a
``.head`` on its lazy plan, which Polars pushes into the scans of a row-wise chain;
a join or an aggregate reads what it needs). ``ctx.preview_limit``, when set, is the
time budget: each source reads at most that many rows. A source that reached it may
have left rows unread, and the result then says ``sampled`` (with the rows each
source read), unless the node is a row-wise chain of one source that filled the limit
(its first rows are the same whatever follows). Each step's
outputs stay in the object store under a key that hashes the step's
fingerprint, the limit, the keys of its inputs and the connector context's scope
(another subscription's roots make the same plan read other files), so a repeated
preview reuses every step whose upstream sub-plan did not change.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from uzo_engine.nodes.registry import get_node_type
from uzo_engine.plan import StepContext
from uzo_engine.plan.runners import FusedRunner, NodeRunner, is_source_node_type
from uzo_engine.profile import profile_table
from uzo_engine.runtime.actors import Absent, StepMeta, plain_context, schema_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from uzo_engine.plan import ColumnInfo, ExecutionPlan, NodeResult, PlanStep
    from uzo_engine.plan.runners import NodeSpec
    from uzo_engine.runtime.core import PortKey, RunResult


@dataclass
class PreviewResult:
    node_id: str
    status: str  # the node's NodeStatus
    rows: list[dict[str, Any]]
    schema: tuple[ColumnInfo, ...]
    profile: dict[str, Any]
    result: NodeResult | None
    error: str | None
    duration_ms: float
    executed_steps: list[str] = field(default_factory=list)
    cached_steps: list[str] = field(default_factory=list)
    #: the rows may differ from the node's true first rows: a source reached its budget
    sampled: bool = False
    #: source node id -> rows it gave within the budget (what a join or aggregate reads;
    #: a row-wise chain's scan, given the limit, may stop sooner)
    source_rows: dict[str, int] = field(default_factory=dict)
    sampled_sources: list[str] = field(default_factory=list)  # those that reached the budget
    source_row_budget: int | None = None  # ``ctx.preview_limit``: None, no budget


@dataclass
class _Entry:
    meta: StepMeta
    outputs: dict[str, Any]  # port -> ObjectRef (or table, in process) or Absent


class PreviewRunner(Protocol):
    """Runs the steps of a preview that are not cached (the runtime, on the node actors)."""

    def __call__(
        self,
        plan: ExecutionPlan,
        ctx: StepContext,
        keep: list[str],
        given: dict[PortKey, Any],
        timeout_seconds: float,
    ) -> RunResult: ...

    def fetch(self, value: Any) -> Any: ...


class PreviewCache:
    """Upstream step outputs by content key; least recently used entries are dropped."""

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._entries: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: _Entry) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def default_fingerprint(step: PlanStep) -> str:
    """Content hash of a step: its nodes, ports and pickled runner (configs included)."""
    from ray import cloudpickle

    blob: bytes = cloudpickle.dumps(  # type: ignore[no-untyped-call]
        (step.node_ids, step.outputs, step.runner)
    )
    return hashlib.sha256(blob).hexdigest()


def _needed(plan: ExecutionPlan, target: str) -> list[str]:
    """``target`` and every step upstream of it, in stage (dependency) order."""
    needed: set[str] = set()
    todo = [target]
    while todo:
        sid = todo.pop()
        if sid in needed:
            continue
        needed.add(sid)
        todo.extend(i.step_id for i in plan.steps[sid].inputs)
    order = [s for st in plan.stages for s in st.step_ids if s in needed]
    # steps of one stage may feed each other: settle by dependencies
    out: list[str] = []
    done: set[str] = set()
    while order:
        rest = [s for s in order if not {i.step_id for i in plan.steps[s].inputs} <= done]
        for s in order:
            if s not in rest:
                out.append(s)
                done.add(s)
        if len(rest) == len(order):
            raise ValueError(f"cycle among steps {rest}")
        order = rest
    return out


def preview_node(
    runner: PreviewRunner,
    plan: ExecutionPlan,
    node_id: str,
    *,
    limit: int = 100,
    cache: PreviewCache | None = None,
    fingerprints: Mapping[str, str] | None = None,
    ctx: StepContext | None = None,
    port: str | None = None,
    timeout_seconds: float = 120.0,
) -> PreviewResult:
    """Preview ``node_id``: its first ``limit`` rows, their schema and profile.

    Sources read at most ``ctx.preview_limit`` rows each when the caller sets it (the
    budget; None: everything), and the result says whether that may have changed the
    rows (``sampled``, ``source_rows``).

    The node must end its step (compile preview plans with the node as a step
    boundary). ``fingerprints`` (step id -> hash of its nodes' configs) replaces
    the default pickled-runner fingerprint. ``cache`` None: nothing is cached. The
    steps not in the cache run through the executor core (``runner``: the runtime's,
    or :class:`~uzo_engine.runtime.local.LocalPreviewRunner`), like any run's.
    """
    started = time.perf_counter()
    target = plan.node_to_step[node_id]
    step = plan.steps[target]
    if step.node_ids[-1] != node_id:
        raise ValueError(
            f"node {node_id} is fused inside step {target} (ends with {step.node_ids[-1]}); "
            "compile the preview plan with this node as a step boundary"
        )
    ctx = ctx or StepContext(execution_id=f"preview-{uuid.uuid4().hex[:12]}")
    budget = ctx.preview_limit or None
    # every field travels (the connector context above all); run_plan is the actor's own
    ctx = plain_context(dataclasses.replace(ctx, preview_limit=budget, run_plan=None))
    keys: dict[str, str] = {}
    given: dict[PortKey, Any] = {}
    entries: dict[str, _Entry] = {}
    executed: list[str] = []
    cached: list[str] = []
    needed = _needed(plan, target)
    for sid in needed:
        if cache is None:
            executed.append(sid)
            continue
        st = plan.steps[sid]
        own = (fingerprints or {}).get(sid) or default_fingerprint(st)
        wiring = sorted((inp.port, keys[inp.step_id], inp.output_port) for inp in st.inputs)
        # the connector scope: the same plan under another subscription's roots reads
        # other files, so it never shares a cached output; the node's own output holds
        # its first ``limit`` rows only
        shown = limit if sid == target else None
        key = (own, budget, shown, wiring, ctx.connectors.scope())
        keys[sid] = hashlib.sha256(repr(key).encode()).hexdigest()
        entry = cache.get(keys[sid])
        if entry is not None:
            cached.append(sid)
            entries[sid] = entry
            given.update({(sid, p): r for p, r in entry.outputs.items()})
            continue
        executed.append(sid)
    if executed:
        steps = {sid: plan.steps[sid] for sid in executed}
        if target in steps and isinstance(step.runner, FusedRunner):
            # the limit at the node itself: Polars pushes it down where it can
            runner_ = dataclasses.replace(step.runner, head=limit)
            steps[target] = dataclasses.replace(step, runner=runner_)
        sub = dataclasses.replace(plan, steps=steps)
        try:
            run = runner(sub, ctx, executed, given, timeout_seconds)
        except Exception as exc:
            return _failed(node_id, f"{type(exc).__name__}: {exc}", started, executed, cached)
        for sid in executed:
            meta = run.steps.get(sid)
            if meta is None:
                continue
            outs = {p: run.outputs[(sid, p)] for p in plan.steps[sid].outputs}
            entries[sid] = _Entry(meta, outs)
            if meta.status == "succeeded" and cache is not None:
                cache.put(keys[sid], entries[sid])
        fetch = run.fetch
    else:
        fetch = runner.fetch
    entry = entries.get(target)
    if entry is None:
        return _failed(node_id, "the preview run was cancelled", started, executed, cached)
    meta = entry.meta
    result = next((r for r in meta.results if r.node_id == node_id), None)
    status = result.status if result else meta.status
    if status != "succeeded":
        message = result.error if result else meta.status
        return _failed(node_id, message or status, started, executed, cached, status, result)
    out_port = port or step.outputs[0]
    value = fetch(entry.outputs[out_port])
    if isinstance(value, Absent):
        return _failed(
            node_id,
            f"output {out_port!r} {value.reason}",
            started,
            executed,
            cached,
            "skipped",
            result,
        )
    head = value.slice(0, limit)
    source_rows = _source_rows(plan, needed, entries)
    reached = [n for n, rows in source_rows.items() if budget is not None and rows >= budget]
    # a row-wise chain's first rows come from its source's first rows: filled, they are exact
    exact = head.num_rows >= limit and _rowwise_chain(plan, needed)
    return PreviewResult(
        node_id=node_id,
        status="succeeded",
        rows=head.to_pylist(),
        schema=schema_of(value),
        profile=profile_table(head),  # of the rows shown (all the preview computed)
        result=result,
        error=None,
        duration_ms=(time.perf_counter() - started) * 1000,
        executed_steps=executed,
        cached_steps=cached,
        sampled=bool(reached) and not exact,
        source_rows=source_rows,
        sampled_sources=reached,
        source_row_budget=budget,
    )


def _specs(step: PlanStep) -> tuple[NodeSpec, ...] | None:
    """The nodes of a step as the compiler made it (None: a runner of another kind)."""
    if isinstance(step.runner, FusedRunner):
        return step.runner.specs
    if isinstance(step.runner, NodeRunner):
        return (step.runner.spec,)
    return None


def _source_rows(
    plan: ExecutionPlan, needed: list[str], entries: Mapping[str, _Entry]
) -> dict[str, int]:
    """Source node id -> the rows it read (its ``rows_out`` in a preview)."""
    found: dict[str, int] = {}
    for sid in needed:
        specs = _specs(plan.steps[sid])
        entry = entries.get(sid)
        if specs is None or entry is None:
            continue
        results = {r.node_id: r for r in entry.meta.results}
        for spec in specs:
            r = results.get(spec.node_id)
            if r is not None and r.rows_out >= 0 and is_source_node_type(spec.node_type):
                found[spec.node_id] = r.rows_out
    return found


def _rowwise_chain(plan: ExecutionPlan, needed: list[str]) -> bool:
    """Whether the steps are one source and row-wise nodes only (filter, select, ...)."""
    kinds: list[str] = []
    for sid in needed:
        specs = _specs(plan.steps[sid])
        if specs is None:
            return False
        kinds += [s.node_type for s in specs]
    sources = [k for k in kinds if is_source_node_type(k)]
    return len(sources) == 1 and all(
        is_source_node_type(k) or get_node_type(k).rowwise for k in kinds
    )


def _failed(
    node_id: str,
    error: str,
    started: float,
    executed: list[str],
    cached: list[str],
    status: str = "failed",
    result: NodeResult | None = None,
) -> PreviewResult:
    return PreviewResult(
        node_id,
        status,
        [],
        (),
        {},
        result,
        error,
        (time.perf_counter() - started) * 1000,
        executed,
        cached,
    )
