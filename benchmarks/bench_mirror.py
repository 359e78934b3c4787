"""The Prefect mirror's cost when runs follow each other back to back (ADR 0005).

Small runs (``UZO_BENCH_MIRROR_RUNS``, 200, per phase) go through ``Runtime.run`` one
after the other, never waiting for their flow runs, with the mirror on and, in the
same process and on the same Ray cluster, off (a second runtime with
``prefect_mirror=False``). Two shapes: one step, and a chain of five steps (a task
run each). Per phase:

- runs/s while the runs go on;
- CPU per run: the mirror's writer thread (``time.thread_time`` inside it), the
  whole driver process, the Prefect server, and the Ray processes; the mirror's
  cost to UZO is the writer thread plus whatever else the driver spends with the
  mirror on compared with off;
- mirror lag: from a run's end to its flow run's final state in Prefect (p50,
  p95, max), and until the last one is written;
- that every run's flow run ended COMPLETED.

Goal: at most 5 ms of CPU per mirrored run in UZO's process at steady state. The
Prefect server's own CPU per run is reported beside it: on this 2-core machine it,
not UZO, bounds how many runs per second Prefect can show. Results: a table on
stdout and ``benchmarks/results/mirror.json``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.bench_overhead import chain_plan

if TYPE_CHECKING:
    from uzo_engine.runtime.core import RunResult
    from uzo_engine.runtime.engine import Runtime

RESULTS = Path(__file__).parent / "results" / "mirror.json"
GOAL_CPU_MS_PER_RUN = 5.0
SHAPES = {"1 step": 1, "5 steps": 5}


@dataclass
class Config:
    runs: int = 200
    results: Path = RESULTS
    quick: bool = False


@dataclass
class Cpu:
    """CPU seconds so far: this process, its mirror thread, the Prefect server, Ray."""

    driver: float
    mirror: float
    prefect: float
    ray: float

    @classmethod
    def now(cls, runtime: Runtime) -> Cpu:
        import psutil

        me = psutil.Process()
        prefect_pid = runtime.prefect.pid if runtime.prefect is not None else None
        prefect = ray = 0.0
        for child in me.children(recursive=True):
            try:
                used = sum(child.cpu_times()[:2])
                in_prefect = child.pid == prefect_pid or any(
                    p.pid == prefect_pid for p in child.parents()
                )
            except psutil.Error:
                continue
            if in_prefect:
                prefect += used
            else:
                ray += used
        mirror = runtime.mirror.stats.cpu_seconds if runtime.mirror is not None else 0.0
        return cls(sum(me.cpu_times()[:2]), mirror, prefect, ray)

    def minus(self, other: Cpu) -> Cpu:
        return Cpu(
            self.driver - other.driver,
            self.mirror - other.mirror,
            self.prefect - other.prefect,
            self.ray - other.ray,
        )


@dataclass
class Phase:
    shape: str
    mirror: bool
    runs: int
    seconds: float = 0.0
    until_recorded_s: float = 0.0
    cpu: Cpu = field(default_factory=lambda: Cpu(0, 0, 0, 0))
    lags_s: list[float] = field(default_factory=list)
    completed: int = 0
    requests: int = 0

    def row(self) -> dict[str, Any]:
        per_run = {
            "driver": self.cpu.driver,
            "mirror_thread": self.cpu.mirror,
            "prefect_server": self.cpu.prefect,
            "ray": self.cpu.ray,
        }
        row: dict[str, Any] = {
            "shape": self.shape,
            "mirror": "on" if self.mirror else "off",
            "runs": self.runs,
            "runs_per_s": round(self.runs / self.seconds, 1),
            "cpu_ms_per_run": {k: round(v / self.runs * 1000, 2) for k, v in per_run.items()},
        }
        if self.mirror:
            lags = sorted(self.lags_s)
            row.update(
                until_all_recorded_s=round(self.until_recorded_s, 2),
                lag_s={
                    "p50": round(statistics.median(lags), 3),
                    "p95": round(lags[int(0.95 * (len(lags) - 1))], 3),
                    "max": round(lags[-1], 3),
                },
                flow_runs_completed=self.completed,
                requests_per_run=round(self.requests / self.runs, 2),
            )
        return row


def run_phase(runtime: Runtime, shape: str, steps: int, n: int) -> Phase:
    phase = Phase(shape, runtime.mirror is not None, n)
    ended: dict[str, float] = {}
    resolved: dict[str, float] = {}
    results: list[RunResult] = []
    requests0 = runtime.mirror.stats.requests if runtime.mirror is not None else 0
    before = Cpu.now(runtime)
    start = time.perf_counter()
    for _ in range(n):
        result = runtime.run_sync(chain_plan(steps), keep_outputs=[f"n{steps - 1}"])
        if result.status != "succeeded":
            raise RuntimeError(f"{shape}: {result.status}: {result.error}")
        ended[result.execution_id] = time.perf_counter()
        if result.record is not None:
            eid = result.execution_id
            result.record.future.add_done_callback(
                lambda _, e=eid: resolved.setdefault(e, time.perf_counter())
            )
        results.append(result)
    phase.seconds = time.perf_counter() - start
    if phase.mirror:
        left = runtime.flush_records(timeout=600)
        if left:
            raise RuntimeError(f"{shape}: {left} flow runs not written after 600 s")
        phase.until_recorded_s = time.perf_counter() - start - phase.seconds
        states = [r.recorded(timeout=1) for r in results]
        phase.completed = sum(1 for s in states if s.state == "COMPLETED")
        phase.lags_s = [resolved[e] - ended[e] for e in ended]
        assert runtime.mirror is not None
        phase.requests = runtime.mirror.stats.requests - requests0
    phase.cpu = Cpu.now(runtime).minus(before)
    return phase


def start_runtimes(home: Path) -> tuple[Runtime, Runtime, float, float]:
    """(mirror on, mirror off, seconds to start, seconds until Prefect answered)."""
    from uzo_engine.runtime import prefect_server
    from uzo_engine.runtime.engine import Runtime
    from uzo_engine.settings import EngineSettings

    # two runtimes share the cluster: each reserves half of it for its node actors
    settings = EngineSettings(home=home)  # UZO_RAY_ADDRESS / UZO_PREFECT_API_URL still apply
    cpus = settings.ray_num_cpus or os.cpu_count() or 2
    settings = settings.model_copy(update={"actor_cpus": 0.5, "actor_pool_size": cpus})
    t0 = time.perf_counter()
    on = Runtime(settings).start()
    started = time.perf_counter() - t0
    assert on.prefect is not None, "the benchmark needs the Prefect mirror"
    prefect_server.wait_until_healthy(on.prefect, settings)
    answered = time.perf_counter() - t0
    off = Runtime(settings.model_copy(update={"prefect_mirror": False})).start()
    return on, off, started, answered


def run(cfg: Config) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="uzo-bench-mirror-"))
    try:
        on, off, started_s, answered_s = start_runtimes(home)
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        raise
    phases: list[Phase] = []
    try:
        for runtime in (on, off):  # warm: actors' imports, the mirror's client and flow
            runtime.warm_up()
            for steps in SHAPES.values():
                run_phase(runtime, "warm-up", steps, 5)
        for shape, steps in SHAPES.items():
            for runtime in (off, on):
                phase = run_phase(runtime, shape, steps, cfg.runs)
                phases.append(phase)
                print(json.dumps(phase.row()), flush=True)
    finally:
        off.close()
        on.close(stop_cluster=True, stop_prefect=True)
        shutil.rmtree(home, ignore_errors=True)

    rows = [p.row() for p in phases]
    verdict = {}
    for shape in SHAPES:
        on_row = next(r for r in rows if r["shape"] == shape and r["mirror"] == "on")
        off_row = next(r for r in rows if r["shape"] == shape and r["mirror"] == "off")
        cost = on_row["cpu_ms_per_run"]
        uzo_ms = max(cost["mirror_thread"], cost["driver"] - off_row["cpu_ms_per_run"]["driver"])
        verdict[shape] = {
            "mirror_cpu_ms_per_run_in_uzo": round(uzo_ms, 2),
            "prefect_server_cpu_ms_per_run": cost["prefect_server"],
            "runs_per_s_on_vs_off": [on_row["runs_per_s"], off_row["runs_per_s"]],
            "meets_goal": uzo_ms <= GOAL_CPU_MS_PER_RUN,
        }
    report = {
        "benchmark": "mirror",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),  # the machine is shared
        },
        "quick": cfg.quick,
        "runs_per_phase": cfg.runs,
        "runtime_start_s": round(started_s, 2),
        "prefect_answered_after_s": round(answered_s, 2),
        "results": rows,
        "verdict": verdict,
        "goals": {"mirror_cpu_ms_per_run_max": GOAL_CPU_MS_PER_RUN},
    }
    cfg.results.parent.mkdir(parents=True, exist_ok=True)
    cfg.results.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"written {cfg.results}")
    return report


def print_table(report: dict[str, Any]) -> None:
    print()
    print(
        f"runtime start {report['runtime_start_s']:.1f}s (Prefect answered after "
        f"{report['prefect_answered_after_s']:.1f}s); {report['runs_per_phase']} runs per phase"
    )
    print(
        f"{'shape':>8} {'mirror':>6} {'runs/s':>7} {'driver':>7} {'writer':>7} "
        f"{'Prefect':>8} {'Ray':>7}   (CPU ms per run)  lag p50/p95/max s   completed"
    )
    for r in report["results"]:
        c = r["cpu_ms_per_run"]
        lag = r.get("lag_s")
        lag_text = f"{lag['p50']:.2f}/{lag['p95']:.2f}/{lag['max']:.2f}" if lag else "-"
        print(
            f"{r['shape']:>8} {r['mirror']:>6} {r['runs_per_s']:>7.1f} {c['driver']:>7.2f} "
            f"{c['mirror_thread']:>7.2f} {c['prefect_server']:>8.2f} {c['ray']:>7.2f}   "
            f"{'':16} {lag_text:>18}   {r.get('flow_runs_completed', '-')}"
        )
    for shape, v in report["verdict"].items():
        print(
            f"goal check {shape}: {v['mirror_cpu_ms_per_run_in_uzo']:.2f} ms of CPU per mirrored "
            f"run in UZO (goal <= {GOAL_CPU_MS_PER_RUN} ms: "
            f"{'met' if v['meets_goal'] else 'missed'}); Prefect's server "
            f"{v['prefect_server_cpu_ms_per_run']:.1f} ms; runs/s on/off "
            f"{v['runs_per_s_on_vs_off'][0]}/{v['runs_per_s_on_vs_off'][1]}"
        )


def main() -> None:
    quick = os.environ.get("UZO_BENCH_QUICK") == "1"
    runs = int(os.environ.get("UZO_BENCH_MIRROR_RUNS", "20" if quick else "200"))
    run(Config(runs=runs, quick=quick))


if __name__ == "__main__":
    main()
