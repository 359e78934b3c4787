"""The execution plan: the contract between the compiler and the runtime.

The compiler (pure code) turns a validated workflow into steps and stages;
the runtime (Ray + Prefect) executes them without knowing any node type.

- A *step* is one actor call: a single node, or a chain of row-wise nodes fused
  into one lazy plan. It receives upstream tables by port and returns tables by
  port, plus one :class:`NodeResult` per node it covers.
- A *stage* is a group of steps that becomes one Prefect task; steps inside a
  stage are chained by ObjectRef, so stages are coarse on purpose.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from uzo_connectors.base import ConnectorContext

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import pyarrow as pa

NodeStatus = Literal[
    "queued", "running", "succeeded", "failed", "skipped", "cancelled", "upstream_failed"
]


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    dtype: str  # Arrow type rendered as text, e.g. "int64", "timestamp[us]"
    nullable: bool = True


@dataclass
class NodeResult:
    """What one node did, reported per node even when nodes are fused."""

    node_id: str
    status: NodeStatus
    rows_in: int = 0
    rows_out: int = 0
    bytes_out: int = 0
    duration_ms: float = 0.0
    attempts: int = 1
    output_schema: tuple[ColumnInfo, ...] = ()
    profile: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class StepOutput:
    tables: dict[str, pa.Table]  # output port -> table
    results: list[NodeResult]
    skipped_ports: frozenset[str] = frozenset()  # branch/router: downstream of these is skipped


@dataclass
class StepContext:
    """Passed to every step by the runtime. Plain data: it crosses into Ray actors."""

    execution_id: str
    preview_limit: int | None = None  # sources read at most this many rows (dev preview)
    connector_configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cancelled: Callable[[], bool] = lambda: False
    #: runs a sub-plan in this process with the same executor core (the loop node's
    #: iterations); set by the executor, so node types never import it
    run_plan: Callable[[ExecutionPlan, StepContext], PlanOutcome] | None = None
    #: the caller's limits for every node that reads or writes: local roots, endpoint
    #: (SSRF) policy, ambient-credential types. The default allows nothing (no local file,
    #: no loopback or private address): the API passes the subscription's context, the
    #: CLI the operator's (``ConnectorSettings().operator_context()``)
    connectors: ConnectorContext = field(default_factory=ConnectorContext.locked_down)


class PlanOutcome(Protocol):
    """What a sub-plan run reports back to the node that started it."""

    @property
    def status(self) -> str: ...

    @property
    def error(self) -> str | None: ...

    @property
    def outputs(self) -> Mapping[tuple[str, str], pa.Table]: ...

    @property
    def results(self) -> Mapping[str, NodeResult]: ...

    @property
    def failed_nodes(self) -> list[str]: ...


class StepRunner(Protocol):
    """Executes one step. Must be picklable (it is shipped to a Ray actor)."""

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput: ...


@runtime_checkable
class InnerDependencies(Protocol):
    """A runner that knows how the nodes of its step feed each other (a fused tree)."""

    def upstream_of(self, node_id: str) -> set[str]: ...

    def downstream_of(self, node_id: str) -> set[str]: ...


_BYSTANDER_PREFIXES = ("fused with failing node ", "no output: fused with failing node ")


def is_fused_bystander(result: NodeResult) -> bool:
    """A ``failed`` node that only shared a failed fused step (see :func:`failed_step_results`)."""
    return (result.error or "").startswith(_BYSTANDER_PREFIXES)


def failed_step_results(
    runner: StepRunner,
    node_ids: Sequence[str],
    culprit: str,
    error: str,
    *,
    attempts: int,
    duration_ms: float = 0.0,
) -> list[NodeResult]:
    """One result per node of a step that failed in node ``culprit`` (one of ``node_ids``).

    - the culprit is ``failed`` with ``error``;
    - the nodes that read its output, directly or not, are ``upstream_failed``
      ("upstream node X failed"); the step's output node is always one of them;
    - the nodes that feed it are ``failed`` ("fused with failing node X: <error>"):
      their work was part of the one plan that failed and produced no output;
    - the other nodes of a fused tree, e.g. the sibling branch of a join below
      the culprit, are ``failed`` too ("no output: fused with failing node X (not
      this node's error)"). Decision: they are not downstream of the culprit, so
      ``upstream_failed`` would be false; ``cancelled`` and ``skipped`` mean a
      stopped run and a branch not taken, and would hide that the step failed;
      ``succeeded`` would claim an output that their part of the failed Polars
      query never produced. ``failed`` with a message naming the culprit is
      what happened: no output, for someone else's error.

    Where the inner nodes feed each other comes from the runner
    (:class:`InnerDependencies`, e.g. a fused tree); any other runner's nodes
    are taken as a chain in ``node_ids`` order.
    """
    if isinstance(runner, InnerDependencies):
        below, above = runner.downstream_of(culprit), runner.upstream_of(culprit)
    else:
        i = list(node_ids).index(culprit)
        below, above = set(node_ids[i + 1 :]), set(node_ids[:i])
    results = []
    for node in node_ids:
        if node == culprit:
            results.append(
                NodeResult(node, "failed", duration_ms=duration_ms, attempts=attempts, error=error)
            )
        elif node in below:
            results.append(
                NodeResult(
                    node, "upstream_failed", attempts=0, error=f"upstream node {culprit} failed"
                )
            )
        else:
            why = (
                f"fused with failing node {culprit}: {error}"
                if node in above
                else f"no output: fused with failing node {culprit} (not this node's error)"
            )
            results.append(NodeResult(node, "failed", attempts=attempts, error=why))
    return results


@dataclass(frozen=True)
class StepInput:
    port: str  # input port of the step's first node that receives the table
    step_id: str  # upstream step
    output_port: str  # output port of the upstream step


StepLane = Literal["cpu", "io"]


@dataclass(frozen=True)
class StepResources:
    """What a step asks of the cluster beyond one CPU slot (a node's ``settings``)."""

    cpus: float = 1.0
    memory_bytes: int | None = None
    custom: tuple[tuple[str, float], ...] = ()  # Ray custom resources, sorted by name


@dataclass(frozen=True)
class PlanStep:
    step_id: str
    node_ids: tuple[str, ...]  # in execution order; more than one when fused
    inputs: tuple[StepInput, ...]
    outputs: tuple[str, ...]
    runner: StepRunner
    retries: int = 0
    retry_backoff_seconds: float = 1.0
    timeout_seconds: float | None = None
    materialize: bool = True  # whether the output is kept as a table in the object store
    #: ``io``: every node of the step waits on the network (connector source/sink, llm), so
    #: it runs on the I/O lane and holds no CPU slot while it waits
    lane: StepLane = "cpu"
    resources: StepResources | None = None  # None: one slot of its lane

    @functools.cached_property
    def upstream_steps(self) -> tuple[str, ...]:
        """The steps this one reads from, each once, in input order (computed once: a
        fan-in of thousands of inputs is asked on every step before it)."""
        return tuple(dict.fromkeys(i.step_id for i in self.inputs))


@dataclass(frozen=True)
class Stage:
    index: int
    step_ids: tuple[str, ...]


@dataclass(frozen=True)
class ExecutionPlan:
    workflow_name: str
    steps: Mapping[str, PlanStep]
    stages: tuple[Stage, ...]
    node_to_step: Mapping[str, str]

    def downstream(self, step_id: str) -> list[str]:
        return [
            s.step_id for s in self.steps.values() if any(i.step_id == step_id for i in s.inputs)
        ]
