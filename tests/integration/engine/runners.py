"""Small picklable StepRunners and a plan builder for runtime tests and benchmarks.

They stand in for the compiler's node types, which are written separately:
the runtime only needs :class:`uzo_engine.plan.StepRunner` objects.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from uzo_engine.plan import ExecutionPlan, NodeResult, PlanStep, Stage, StepInput, StepOutput

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from uzo_engine.plan import StepContext, StepRunner


def _touch(path: str | None, text: str = "x") -> None:
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")


@dataclass(frozen=True)
class Source:
    """A table of ``rows`` rows (x = 0..rows-1) and the pid of the process that made it."""

    rows: int = 10
    counter: str | None = None  # a line is appended per execution

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        _touch(self.counter)
        n = self.rows if ctx.preview_limit is None else min(self.rows, ctx.preview_limit)
        table = pa.table({"x": pa.array(range(n), pa.int64()), "pid": [os.getpid()] * n})
        return StepOutput({"out": table}, [])


@dataclass(frozen=True)
class Scale:
    factor: int = 2
    counter: str | None = None

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        _touch(self.counter)
        t = inputs["in"]
        out = t.set_column(0, "x", pc.multiply(t["x"], self.factor))
        return StepOutput({"out": out}, [])


@dataclass(frozen=True)
class PassThrough:
    """Trivial node for overhead measurements: returns its input (or a tiny table)."""

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        if inputs:
            return StepOutput({"out": next(iter(inputs.values()))}, [])
        return StepOutput({"out": pa.table({"x": [1]})}, [])


@dataclass(frozen=True)
class Union:
    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        return StepOutput({"out": pa.concat_tables([inputs[k] for k in sorted(inputs)])}, [])


@dataclass(frozen=True)
class Fail:
    message: str = "boom"

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        raise ValueError(self.message)


@dataclass(frozen=True)
class FailOnce:
    """Fails on its first execution (marked by ``marker``), then passes its input on."""

    marker: str

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        if not Path(self.marker).exists():
            _touch(self.marker)
            raise ConnectionError("transient failure")
        return StepOutput({"out": inputs["in"]}, [])


@dataclass(frozen=True)
class Slow:
    """Sleeps ``seconds`` without looking at ctx.cancelled (a worst-case node)."""

    seconds: float
    started: str | None = None
    finished: str | None = None

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        _touch(self.started)
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            time.sleep(0.05)
        _touch(self.finished)
        return StepOutput({"out": inputs.get("in", pa.table({"x": [1]}))}, [])


@dataclass(frozen=True)
class Gate:
    """Waits until the file ``opened`` exists (at most ``seconds``), then passes its input."""

    opened: str
    started: str | None = None
    seconds: float = 120.0

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        _touch(self.started)
        end = time.monotonic() + self.seconds
        while not Path(self.opened).exists() and time.monotonic() < end:
            time.sleep(0.05)
        return StepOutput({"out": inputs.get("in", pa.table({"x": [1]}))}, [])


@dataclass(frozen=True)
class Probe:
    """What the node's process holds of Prefect: is it imported, is an API URL set."""

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        import sys

        table = pa.table(
            {
                "prefect_imported": ["prefect" in sys.modules],
                "prefect_api_url": [os.environ.get("PREFECT_API_URL")],
            }
        )
        return StepOutput({"out": table}, [])


@dataclass(frozen=True)
class Router:
    """Rows with x < threshold go to ``true``; ``false`` is skipped when it would be empty."""

    threshold: int

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        t = inputs["in"]
        mask = pc.less(t["x"], self.threshold)
        yes, no = t.filter(mask), t.filter(pc.invert(mask))
        skipped = frozenset({"false"}) if no.num_rows == 0 else frozenset()
        results = [NodeResult("router", "succeeded", rows_in=t.num_rows, rows_out=yes.num_rows)]
        return StepOutput({"true": yes, "false": no}, results, skipped)


@dataclass(frozen=True)
class Delayed:
    """Touches ``started``, sleeps ``seconds`` without looking at ctx.cancelled, then runs
    ``inner`` (a compiled step's runner): a slow node that still reports real results."""

    inner: StepRunner
    seconds: float
    started: str | None = None

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        _touch(self.started)
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            time.sleep(0.05)
        return self.inner.run(inputs, ctx)


@dataclass(frozen=True)
class FailFirst:
    """Fails on its first execution (marked by ``marker``), then runs ``inner``."""

    marker: str
    inner: StepRunner

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        if not Path(self.marker).exists():
            _touch(self.marker)
            raise ConnectionError("transient failure")
        return self.inner.run(inputs, ctx)


# A step spec: (step_id, runner, inputs as (port, upstream step, upstream port), outputs)
StepSpec = tuple[str, "StepRunner", "Sequence[tuple[str, str, str]]", "Sequence[str]"]


def make_plan(
    name: str,
    steps: Sequence[StepSpec],
    stages: Sequence[Sequence[str]] | None = None,
    **options: object,
) -> ExecutionPlan:
    """A plan with one node per step (node id = step id). ``options``: per-step PlanStep
    fields keyed ``"<step_id>__<field>"`` (e.g. ``slow__timeout_seconds=1``)."""
    built: dict[str, PlanStep] = {}
    for step_id, runner, inputs, outputs in steps:
        extra = {k.split("__", 1)[1]: v for k, v in options.items() if k.startswith(f"{step_id}__")}
        built[step_id] = PlanStep(
            step_id=step_id,
            node_ids=(step_id,),
            inputs=tuple(StepInput(p, s, o) for p, s, o in inputs),
            outputs=tuple(outputs),
            runner=runner,
            **extra,  # type: ignore[arg-type]
        )
    if stages is None:
        stages = [[s[0] for s in steps]]
    return ExecutionPlan(
        workflow_name=name,
        steps=built,
        stages=tuple(Stage(i, tuple(ids)) for i, ids in enumerate(stages)),
        node_to_step={s: s for s in built},
    )
