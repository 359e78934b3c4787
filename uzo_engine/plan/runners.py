"""Step runners the compiler puts in a plan: one eager node, or a fused lazy tree.

Both are plain frozen dataclasses (picklable: they are shipped to Ray actors).

A :class:`FusedRunner` runs a *tree* of lazy nodes as one Polars plan collected
once: a chain (filter -> derive -> aggregate ...) or a join/union together with
the lazy chains that feed it. ``wiring`` says where each node's input ports come
from: another node of the step (its ``out``), or one of the step's input ports.
Without ``wiring`` the specs are a linear chain: the first node receives the
step's inputs by port, every later node reads the previous one on ``in``.

Results: every node gets a NodeResult with its output schema (from the lazy
plan). The last node (the step's output) reports rows, bytes, duration and the
profile; a node fed by step inputs reports their rows as ``rows_in`` (a source
reports 0); the other counts of inner nodes are ``-1`` (not measured), but in a preview
(``StepContext.preview_limit`` set) a source reports the rows it gave (at most that
budget) as ``rows_out``, and ``head`` keeps the first rows of the output only. When the
plan fails, :meth:`FusedRunner.downstream_of` and :meth:`FusedRunner.upstream_of`
tell :func:`uzo_engine.plan.failed_step_results` which nodes depend on the
failing one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uzo_engine.nodes.base import LazyNodeType, NodeExecutionError, Params
from uzo_engine.nodes.registry import get_node_type
from uzo_engine.nodes.types import column_infos, polars_schema, to_arrow, to_polars
from uzo_engine.plan import NodeResult, StepOutput
from uzo_engine.profile import profile_table

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import polars as pl
    import pyarrow as pa

    from uzo_engine.plan import StepContext


@dataclass(frozen=True)
class NodeSpec:
    """What a runner needs to run one node: plain, picklable data."""

    node_id: str
    node_type: str
    params: Params


@dataclass(frozen=True)
class Wire:
    """One input port of a fused node: fed by a node of the step or by a step input."""

    port: str  # input port of the node
    source: str  # node id inside the step (its ``out``), or the step's input port
    external: bool = False  # True: ``source`` is a step input port


def _error_text(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _panic_text(error: BaseException) -> str:
    """An error that is no ``Exception`` (a Rust panic in Polars): its kind and first line."""
    return f"{type(error).__name__}: {_error_text(error)}"


def _lazy_type(name: str) -> LazyNodeType[Any]:
    nt = get_node_type(name)
    if not isinstance(nt, LazyNodeType):
        raise TypeError(f"node type {name!r} cannot be fused (it has no lazy plan)")
    return nt


def _reachable(start: str, edges: Mapping[str, Sequence[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    return seen


def _is_source(nt: Any) -> bool:
    """A node that reads data and has no input: a preview limits the rows it reads."""
    return not nt.inputs and not nt.variadic_inputs


def is_source_node_type(name: str) -> bool:
    """Whether nodes of type ``name`` are sources (see :func:`_is_source`)."""
    return _is_source(get_node_type(name))


def _len() -> pl.Expr:
    import polars as pl

    return pl.len()


def _collect_all(plans: list[pl.LazyFrame]) -> list[pl.DataFrame]:
    import polars as pl

    return pl.collect_all(plans)


#: never a node's failure: the process is being stopped
_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit)


def _profile(spec: NodeSpec, table: pa.Table) -> dict[str, Any]:
    """The profile of a node's output; a failure is that node's (not its step's first)."""
    try:
        return profile_table(table)
    except Exception as e:
        raise NodeExecutionError(
            spec.node_id, spec.node_type, f"profiling its output failed: {_error_text(e)}"
        ) from e


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
        except _FATAL:
            raise
        except BaseException as e:  # a Polars panic is a BaseException: still this node's
            detail = _panic_text(e)
            if isinstance(e, Exception):
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
            profile=_profile(self.spec, first) if self.profile and first is not None else None,
        )
        skipped = frozenset(p for p in nt.outputs if p not in tables)
        return StepOutput(tables=dict(tables), results=[result], skipped_ports=skipped)


@dataclass(frozen=True)
class FusedRunner:
    """Runs a chain or tree of lazy nodes as one Polars plan, collected once."""

    specs: tuple[NodeSpec, ...]
    profile: bool = True
    wiring: tuple[tuple[Wire, ...], ...] = ()  # per spec; empty: a linear chain
    #: the first rows only (a preview): ``.head`` on the last node's plan, which Polars
    #: pushes into the scans of a row-wise chain; a join or aggregate reads what it needs
    head: int | None = None

    def wires(self, index: int, step_ports: tuple[str, ...]) -> tuple[Wire, ...]:
        if self.wiring:
            return self.wiring[index]
        if index == 0:
            return tuple(Wire(p, p, external=True) for p in step_ports)
        return (Wire("in", self.specs[index - 1].node_id),)

    def _feeds(self) -> dict[str, tuple[str, ...]]:
        """Node id -> the nodes of this step that it reads (step inputs left out)."""
        ids = [s.node_id for s in self.specs]
        if not self.wiring:
            return {n: tuple(ids[i - 1 : i]) for i, n in enumerate(ids)}
        return {
            spec.node_id: tuple(w.source for w in wires if not w.external)
            for spec, wires in zip(self.specs, self.wiring, strict=True)
        }

    def upstream_of(self, node_id: str) -> set[str]:
        """The nodes of this step whose output reaches ``node_id``."""
        return _reachable(node_id, self._feeds())

    def downstream_of(self, node_id: str) -> set[str]:
        """The nodes of this step that read ``node_id``'s output, directly or not
        (a linear chain: every later node)."""
        readers: dict[str, list[str]] = {}
        for node, sources in self._feeds().items():
            for source in sources:
                readers.setdefault(source, []).append(node)
        return _reachable(node_id, readers)

    def _frames(
        self,
        index: int,
        inputs: Mapping[str, pl.LazyFrame],
        built: Mapping[str, pl.LazyFrame],
    ) -> dict[str, pl.LazyFrame]:
        return {
            w.port: inputs[w.source] if w.external else built[w.source]
            for w in self.wires(index, tuple(inputs))
        }

    def _build(
        self, index: int, frames: Mapping[str, pl.LazyFrame], ctx: StepContext
    ) -> pl.LazyFrame:
        spec = self.specs[index]
        nt = _lazy_type(spec.node_type)
        lf = next(iter(nt.build_with_context(spec.params, frames, ctx).values()))
        if _is_source(nt) and ctx.preview_limit:
            lf = lf.head(ctx.preview_limit)  # a source in a preview reads its budget at most
        return lf

    def _plans(self, inputs: Mapping[str, pl.LazyFrame], ctx: StepContext) -> list[pl.LazyFrame]:
        built: dict[str, pl.LazyFrame] = {}
        plans: list[pl.LazyFrame] = []
        for i, spec in enumerate(self.specs):
            try:
                lf = self._build(i, self._frames(i, inputs, built), ctx)
            except Exception as e:
                raise NodeExecutionError(spec.node_id, spec.node_type, _error_text(e)) from e
            built[spec.node_id] = lf
            plans.append(lf)
        return plans

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        start = time.perf_counter()
        frames = {p: to_polars(t).lazy() for p, t in inputs.items()}
        plans = self._plans(frames, ctx)
        if ctx.cancelled():
            raise RuntimeError("cancelled")
        # in a preview each source (but the last node) counts the rows it gives, so the
        # preview can say whether one reached its budget; Polars runs the counts alongside
        last = len(self.specs) - 1
        counted = [
            i
            for i in range(last)
            if ctx.preview_limit and is_source_node_type(self.specs[i].node_type)
        ]
        try:
            schemas = [lf.collect_schema() for lf in plans]
            final = plans[-1] if self.head is None else plans[-1].head(self.head)
            if counted:
                out, *counts = _collect_all([final, *(plans[i].select(_len()) for i in counted)])
            else:
                out, counts = final.collect(), []
        except _FATAL:
            raise
        except BaseException as e:  # a Polars panic too: find the node it belongs to
            raise self._locate_failure(inputs, ctx, e) from e
        table = to_arrow(out)
        duration = (time.perf_counter() - start) * 1000
        results = []
        ports = tuple(inputs)
        source_rows = {i: int(c.item()) for i, c in zip(counted, counts, strict=True)}
        for i, (spec, schema) in enumerate(zip(self.specs, schemas, strict=True)):
            wires = self.wires(i, ports)
            external = [inputs[w.source].num_rows for w in wires if w.external]
            rows_in = sum(external) if external or not wires else -1
            results.append(
                NodeResult(
                    node_id=spec.node_id,
                    status="succeeded",
                    rows_in=rows_in,
                    rows_out=out.height if i == last else source_rows.get(i, -1),
                    bytes_out=table.nbytes if i == last else 0,
                    duration_ms=duration if i == last else 0.0,
                    output_schema=column_infos(schema),
                    profile=_profile(spec, table) if self.profile and i == last else None,
                )
            )
        return StepOutput(tables={"out": table}, results=results)

    def _locate_failure(
        self, inputs: Mapping[str, pa.Table], ctx: StepContext, error: BaseException
    ) -> NodeExecutionError:
        """Re-run node by node to name the node that fails and explain why."""
        given = {p: to_polars(t).lazy() for p, t in inputs.items()}
        done: dict[str, pl.LazyFrame] = {}
        for i, spec in enumerate(self.specs):
            nt = _lazy_type(spec.node_type)
            frames = self._frames(i, given, done)
            try:
                done[spec.node_id] = self._build(i, frames, ctx).collect().lazy()
            except _FATAL:
                raise
            except BaseException as e:
                detail = _panic_text(e)
                if isinstance(e, Exception):
                    eager = {p: lf.collect() for p, lf in frames.items()}
                    detail = nt.explain_error(spec.params, eager, e) or _error_text(e)
                return NodeExecutionError(spec.node_id, nt.name, detail)
        spec = self.specs[-1]
        return NodeExecutionError(spec.node_id, spec.node_type, _error_text(error))
