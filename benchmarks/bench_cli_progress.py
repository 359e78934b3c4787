"""``uzo run``'s progress reporter against the engine alone: a 10,000-node fan-out.

The plan is ``bench_overhead``'s fan-out/fan-in: one source, N-2 trivial independent
nodes, one node taking all of them, one node per step (N = 10,000;
``UZO_BENCH_CLI_PROGRESS_NODES`` overrides). Each runtime (``UZO_BENCH_CLI_PROGRESS_RUNTIMES``,
default ``ray,local``: ``uzo run`` runs on Ray unless ``--local``) runs it, alternating
the order per repeat (``UZO_BENCH_CLI_PROGRESS_REPEATS``, default 2), in three modes:

- ``engine``: the run alone, no event sink (the events are dropped where they are made);
- ``events``: a sink that only counts the events (what delivering them costs by itself);
- ``cli``: the CLI's :class:`~uzo_engine.cli.progress.ProgressReporter` as the sink, drawn
  live by its rich ``Live`` on a terminal-like console (``force_terminal=True``, writing
  to a ``StringIO``), then its final table printed: what ``uzo run`` does on a terminal.

Timed: from the call to the run returning (for ``cli``, until the final table is
printed). The Ray runtime is started and warmed up first; each Ray run's Prefect flow
run is waited for after the timing, so that its recording stays out of the next run.

Goal: ``cli`` within 1.2x of ``engine`` (median of the repeats). Results: a table on
stdout and ``benchmarks/results/cli_progress.json``. ``UZO_BENCH_QUICK=1``: 300 nodes,
one repeat, the in-process runtime only.
"""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.bench_overhead import CountingSink, fan_plan

if TYPE_CHECKING:
    from collections.abc import Callable

    from uzo_engine.events import EventSink
    from uzo_engine.plan import ExecutionPlan
    from uzo_engine.runtime.core import RunResult

    Runner = Callable[[ExecutionPlan, EventSink | None], RunResult]
    Settle = Callable[[RunResult], None]

RESULTS = Path(__file__).parent / "results" / "cli_progress.json"
GOAL_RATIO = 1.2
MODES = ("engine", "events", "cli")


@dataclass(frozen=True)
class Config:
    nodes: int = 10_000
    repeats: int = 2
    runtimes: tuple[str, ...] = ("ray", "local")
    results: Path = RESULTS
    quick: bool = False


def config_from_env() -> Config:
    quick = os.environ.get("UZO_BENCH_QUICK") == "1"
    env = os.environ.get
    runtimes = env("UZO_BENCH_CLI_PROGRESS_RUNTIMES", "local" if quick else "ray,local")
    return Config(
        nodes=int(env("UZO_BENCH_CLI_PROGRESS_NODES", "300" if quick else "10000")),
        repeats=int(env("UZO_BENCH_CLI_PROGRESS_REPEATS", "1" if quick else "2")),
        runtimes=tuple(r.strip() for r in runtimes.split(",") if r.strip()),
        quick=quick,
    )


@dataclass
class Sample:
    seconds: float
    cpu_s: float = 0.0  # this process's CPU (all its threads): steadier on a shared machine
    events: int = 0
    renders: int = 0
    output_bytes: int = 0
    final_rows: int = 0


@dataclass
class Measured:
    runtime: str
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {m: [] for m in MODES})

    def median(self, mode: str) -> float:
        return statistics.median(s.seconds for s in self.samples[mode])

    def median_cpu(self, mode: str) -> float:
        return statistics.median(s.cpu_s for s in self.samples[mode])

    def report(self) -> dict[str, Any]:
        engine = self.median("engine")
        cli = self.samples["cli"]
        return {
            "runtime": self.runtime,
            **{f"{m}_s": round(self.median(m), 3) for m in MODES},
            "cli_over_engine": round(self.median("cli") / engine, 3),
            "events_over_engine": round(self.median("events") / engine, 3),
            "cli_over_events": round(self.median("cli") / self.median("events"), 3),
            **{f"{m}_driver_cpu_s": round(self.median_cpu(m), 3) for m in MODES},
            "cli_over_engine_driver_cpu": round(
                self.median_cpu("cli") / self.median_cpu("engine"), 3
            ),
            "samples_s": {m: [round(s.seconds, 3) for s in self.samples[m]] for m in MODES},
            "cli_events": cli[-1].events,
            "cli_live_renders": [s.renders for s in cli],
            "cli_output_bytes": [s.output_bytes for s in cli],
            "cli_final_table_rows": cli[-1].final_rows,
        }


def run_one(runner: Runner, plan: ExecutionPlan, mode: str, settle: Settle) -> Sample:
    """One timed run of ``plan`` in ``mode``; checks that every node succeeded, then
    ``settle``s the run (untimed: a Ray run's flow run recorded)."""
    from rich.console import Console

    from uzo_engine.cli.progress import ProgressReporter

    n = len(plan.node_to_step)
    cpu = time.process_time()
    if mode == "engine":
        start = time.perf_counter()
        result = runner(plan, None)
        sample = Sample(time.perf_counter() - start)
    elif mode == "events":
        counting = CountingSink()
        start = time.perf_counter()
        result = runner(plan, counting)
        sample = Sample(time.perf_counter() - start, events=counting.node_events)
    else:
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=True, width=120, height=40)
        start = time.perf_counter()
        reporter = ProgressReporter(plan)
        with reporter.live(console):
            result = runner(plan, reporter)
        reporter.print_final(console)
        seconds = time.perf_counter() - start
        if reporter.counts["succeeded"] != n:
            raise RuntimeError(f"the reporter counted {reporter.counts} of {n} nodes")
        table, _ = reporter.final_table()
        sample = Sample(
            seconds,
            events=reporter.events,
            renders=reporter.renders,
            output_bytes=len(buffer.getvalue().encode()),
            final_rows=table.row_count,
        )
    sample.cpu_s = time.process_time() - cpu
    settle(result)
    if result.status != "succeeded" or len(result.results) != n:
        raise RuntimeError(f"{plan.workflow_name} {mode}: {result.status}: {result.error}")
    return sample


def _nothing(result: RunResult) -> None:
    del result


def measure(name: str, runner: Runner, cfg: Config, settle: Settle = _nothing) -> Measured:
    plan = fan_plan(cfg.nodes)
    settle(runner(fan_plan(min(cfg.nodes, 100)), None))  # warm-up, not timed
    measured = Measured(name)
    for repeat in range(cfg.repeats):
        for mode in MODES if repeat % 2 == 0 else tuple(reversed(MODES)):
            sample = run_one(runner, plan, mode, settle)
            measured.samples[mode].append(sample)
            extra = f", {sample.renders} live renders" if mode == "cli" else ""
            print(
                f"  {name} {mode:>6} {cfg.nodes:,} nodes: {sample.seconds:.2f} s "
                f"(driver CPU {sample.cpu_s:.2f} s){extra}",
                flush=True,
            )
    return measured


def local_runner(plan: ExecutionPlan, sink: EventSink | None) -> RunResult:
    from uzo_engine.plan import StepContext
    from uzo_engine.runtime.local import LocalExecutor

    ctx = StepContext(execution_id=uuid.uuid4().hex)
    return LocalExecutor(sink).run(plan, ctx, keep_outputs=())


def measure_ray(cfg: Config) -> tuple[Measured, float]:
    """The Ray runtime as ``uzo run`` uses it; returns the figures and its start-up time."""
    from uzo_engine.plan import StepContext
    from uzo_engine.runtime.engine import Runtime
    from uzo_engine.settings import EngineSettings

    home = Path(tempfile.mkdtemp(prefix="uzo-bench-cli-progress-"))
    t0 = time.perf_counter()
    runtime = Runtime(EngineSettings(home=home)).start()  # UZO_RAY_ADDRESS etc. still apply
    startup_s = time.perf_counter() - t0

    def runner(plan: ExecutionPlan, sink: EventSink | None) -> RunResult:
        return runtime.run_sync(plan, ctx=StepContext(execution_id=uuid.uuid4().hex), sink=sink)

    def settle(result: RunResult) -> None:
        recorded = result.recorded(timeout=300)
        if recorded.state != "COMPLETED":
            raise RuntimeError(f"flow run {recorded}")

    try:
        runtime.warm_up()
        return measure("ray", runner, cfg, settle), startup_s
    finally:
        runtime.close(stop_cluster=True, stop_prefect=True)
        shutil.rmtree(home, ignore_errors=True)


def run(cfg: Config) -> dict[str, Any]:
    print(f"fan-out of {cfg.nodes:,} nodes, {cfg.repeats} repeat(s), runtimes {cfg.runtimes}")
    results: list[dict[str, Any]] = []
    startup: dict[str, float] = {}
    for name in cfg.runtimes:
        if name == "local":
            measured = measure("local", local_runner, cfg)
        elif name == "ray":
            measured, startup["ray"] = measure_ray(cfg)
        else:
            raise ValueError(f"unknown runtime {name!r}: ray or local")
        results.append(measured.report())
    print()
    print(f"{'runtime':<8} {'nodes':>7} {'engine s':>9} {'events s':>9} {'cli s':>8} "
          f"{'cli/engine':>11} {'cli/events':>11} {'CPU ratio':>10} {'renders':>8}")  # fmt: skip
    for r in results:
        print(
            f"{r['runtime']:<8} {cfg.nodes:>7,} {r['engine_s']:>9.2f} {r['events_s']:>9.2f} "
            f"{r['cli_s']:>8.2f} {r['cli_over_engine']:>10.2f}x {r['cli_over_events']:>10.2f}x "
            f"{r['cli_over_engine_driver_cpu']:>9.2f}x {max(r['cli_live_renders']):>8}"
        )
    verdict = {r["runtime"]: r["cli_over_engine"] <= GOAL_RATIO for r in results}
    for r in results:
        met = "met" if verdict[r["runtime"]] else "NOT met"
        print(f"goal cli <= {GOAL_RATIO}x engine ({r['runtime']}): {r['cli_over_engine']}x, {met}")
    report = {
        "benchmark": "cli_progress",
        "quick": cfg.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),  # the machine is shared
        },
        "plan": f"fan-out/fan-in of {cfg.nodes} nodes, one node per step (bench_overhead)",
        "nodes": cfg.nodes,
        "repeats": cfg.repeats,
        "runtime_start_s": startup,
        "timing": "seconds, median of the repeats; cli = run + live view + final table",
        "results": results,
        "goals": {"cli_over_engine_max": GOAL_RATIO},
        "verdict": verdict,
    }
    cfg.results.parent.mkdir(parents=True, exist_ok=True)
    cfg.results.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {cfg.results}")
    return report


def main() -> None:
    run(config_from_env())


if __name__ == "__main__":
    main()
