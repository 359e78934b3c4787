"""Dev preview: run the steps one node needs on the warm cluster, without a Prefect flow run.

The steps upstream of the node run through the executor core (no Prefect flow run), with
``ctx.preview_limit`` set (sources read at most that many rows). Each step's
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

from uzo_engine.plan import StepContext
from uzo_engine.profile import profile_table
from uzo_engine.runtime.actors import Absent, StepMeta, plain_context, schema_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from uzo_engine.plan import ColumnInfo, ExecutionPlan, NodeResult, PlanStep
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
    """Preview ``node_id``: first ``limit`` rows, schema and profile of its output.

    Sources read ``ctx.preview_limit`` rows when the caller sets it (e.g. more
    rows than are shown, so a filter downstream still has rows), else ``limit``.

    The node must end its step (compile preview plans with the node as a step
    boundary). ``fingerprints`` (step id -> hash of its nodes' configs) replaces
    the default pickled-runner fingerprint. The steps not in the cache run through
    the executor core (``runner``: the runtime's), like any run's.
    """
    started = time.perf_counter()
    target = plan.node_to_step[node_id]
    step = plan.steps[target]
    if step.node_ids[-1] != node_id:
        raise ValueError(
            f"node {node_id} is fused inside step {target} (ends with {step.node_ids[-1]}); "
            "compile the preview plan with this node as a step boundary"
        )
    cache = cache if cache is not None else PreviewCache()
    ctx = ctx or StepContext(execution_id=f"preview-{uuid.uuid4().hex[:12]}")
    source_limit = ctx.preview_limit if ctx.preview_limit is not None else limit
    # every field travels (the connector context above all); run_plan is the actor's own
    ctx = plain_context(dataclasses.replace(ctx, preview_limit=source_limit, run_plan=None))
    keys: dict[str, str] = {}
    given: dict[PortKey, Any] = {}
    entries: dict[str, _Entry] = {}
    executed: list[str] = []
    cached: list[str] = []
    for sid in _needed(plan, target):
        st = plan.steps[sid]
        own = (fingerprints or {}).get(sid) or default_fingerprint(st)
        wiring = sorted((inp.port, keys[inp.step_id], inp.output_port) for inp in st.inputs)
        # the connector scope: the same plan under another subscription's roots reads
        # other files, so it never shares a cached output
        key = (own, source_limit, wiring, ctx.connectors.scope())
        keys[sid] = hashlib.sha256(repr(key).encode()).hexdigest()
        entry = cache.get(keys[sid])
        if entry is not None:
            cached.append(sid)
            entries[sid] = entry
            given.update({(sid, p): r for p, r in entry.outputs.items()})
            continue
        executed.append(sid)
    if executed:
        sub = dataclasses.replace(plan, steps={sid: plan.steps[sid] for sid in executed})
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
            if meta.status == "succeeded":
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
    profile = (result.profile if result and result.profile else None) or profile_table(value)
    return PreviewResult(
        node_id=node_id,
        status="succeeded",
        rows=head.to_pylist(),
        schema=schema_of(value),
        profile=profile,
        result=result,
        error=None,
        duration_ms=(time.perf_counter() - started) * 1000,
        executed_steps=executed,
        cached_steps=cached,
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
