"""Orchestration overhead per node: UZO's flow runtime against raw Ray actor calls.

Workflows of N trivial nodes (N = 100, 1,000, 10,000; ``UZO_BENCH_OVERHEAD_SIZES``
overrides), one node per step (no fusion), on a warm cluster:

- chain: node i takes node i-1's table; stages of 1,000 consecutive steps;
- fan-out/fan-in: one source, N-2 independent nodes, one node taking all of them.

Each is run end to end through ``Runtime.run`` (an actor call per node, dispatched
by the driver; the run recorded alongside as one Prefect flow run on RayTaskRunner
with a Prefect task per stage, whose completion is reported too) and as raw Ray:
the same shape as plain calls on 2 actors chained by ObjectRef. Also measured:
the first flow run of the process, and two ways of returning per-port tables
from an actor call (``num_returns`` vs ``ray.put`` per port in a returned dict).

Goals: at most 2 ms/node above raw Ray; 10,000 nodes under 30 s;
driver memory growth under 1 GB. Results: a table on stdout and
``benchmarks/results/overhead.json``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pyarrow as pa

    from uzo_engine.events import NodeEvent, RunEvent
    from uzo_engine.plan import ExecutionPlan, StepContext, StepOutput
    from uzo_engine.runtime.engine import Runtime

RESULTS = Path(__file__).parent / "results" / "overhead.json"
STAGE_SIZE = 1000


@dataclass(frozen=True)
class Trivial:
    """Returns its first input (or a one-row table): the cheapest possible node."""

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        import pyarrow as pa

        from uzo_engine.plan import StepOutput

        table = next(iter(inputs.values())) if inputs else pa.table({"x": [1]})
        return StepOutput({"out": table}, [])


@dataclass(frozen=True)
class CountInputs:
    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        import pyarrow as pa

        from uzo_engine.plan import StepOutput

        return StepOutput({"out": pa.table({"inputs": [len(inputs)]})}, [])


@dataclass(frozen=True)
class Sleep:
    """Sleeps without looking at ctx.cancelled: the worst case for cancellation."""

    seconds: float
    started: str

    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        import pyarrow as pa

        from uzo_engine.plan import StepOutput

        Path(self.started).write_text("started")
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            time.sleep(0.01)
        return StepOutput({"out": pa.table({"x": [1]})}, [])


class CountingSink:
    def __init__(self) -> None:
        self.node_events = 0
        self.final: dict[str, str] = {}

    def node_event(self, event: NodeEvent) -> None:
        self.node_events += 1
        self.final[event.node_id] = event.status

    def run_event(self, event: RunEvent) -> None:
        pass


def _plan(
    name: str, edges: list[tuple[str, list[str]]], runner_of: dict[str, Any]
) -> ExecutionPlan:
    from uzo_engine.plan import ExecutionPlan, PlanStep, Stage, StepInput

    steps = {
        sid: PlanStep(
            step_id=sid,
            node_ids=(sid,),
            inputs=tuple(StepInput(f"in{i}", up, "out") for i, up in enumerate(ups)),
            outputs=("out",),
            runner=runner_of.get(sid, Trivial()),
        )
        for sid, ups in edges
    }
    ids = [sid for sid, _ in edges]
    stages = tuple(
        Stage(i, tuple(ids[k : k + STAGE_SIZE]))
        for i, k in enumerate(range(0, len(ids), STAGE_SIZE))
    )
    return ExecutionPlan(name, steps, stages, {sid: sid for sid in ids})


def chain_plan(n: int) -> ExecutionPlan:
    edges = [(f"n{i}", [f"n{i - 1}"] if i else []) for i in range(n)]
    return _plan(f"chain-{n}", edges, {})


def fan_plan(n: int) -> ExecutionPlan:
    middle = [f"m{i}" for i in range(n - 2)]
    edges = [("src", []), *[(m, ["src"]) for m in middle], ("sink", middle)]
    return _plan(f"fan-{n}", edges, {"sink": CountInputs()})


class RawActor:
    def f(self, table: Any) -> Any:
        return table

    def fan_in(self, *tables: Any) -> int:
        return len(tables)

    def two(self, table: Any) -> tuple[dict[str, int], Any]:
        return {"rows": table.num_rows}, table

    def boxed(self, box: dict[str, Any]) -> dict[str, Any]:
        import ray

        table = ray.get(box["out"]) if isinstance(box, dict) else box
        return {"meta": {"rows": table.num_rows}, "out": ray.put(table)}


def raw_chain(actors: list[Any], n: int) -> float:
    import pyarrow as pa
    import ray

    start = time.perf_counter()
    ref = ray.put(pa.table({"x": [1]}))
    for i in range(n):
        ref = actors[i % len(actors)].f.remote(ref)
    ray.get(ref)
    return time.perf_counter() - start


def raw_fan(actors: list[Any], n: int) -> float:
    import pyarrow as pa
    import ray

    start = time.perf_counter()
    src = actors[0].f.remote(ray.put(pa.table({"x": [1]})))
    middle = [actors[i % len(actors)].f.remote(src) for i in range(n - 2)]
    assert ray.get(actors[0].fan_in.remote(*middle)) == n - 2
    return time.perf_counter() - start


def port_strategies(actors: list[Any], n: int = 1000) -> dict[str, float]:
    """ms per chained call: per-port ObjectRefs via num_returns vs ray.put inside a dict."""
    import pyarrow as pa
    import ray

    table = ray.put(pa.table({"x": [1]}))
    start = time.perf_counter()
    ref = table
    metas = []
    for i in range(n):
        meta, ref = actors[i % len(actors)].two.options(num_returns=2).remote(ref)
        metas.append(meta)
    ray.get([*metas, ref])
    num_returns = time.perf_counter() - start
    start = time.perf_counter()
    box: Any = table
    boxes = []
    for i in range(n):
        box = actors[i % len(actors)].boxed.remote(box)
        boxes.append(box)
    ray.get(boxes)
    put_in_dict = time.perf_counter() - start
    return {
        "num_returns_ms_per_call": round(num_returns / n * 1000, 3),
        "put_in_dict_ms_per_call": round(put_in_dict / n * 1000, 3),
    }


def rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def uzo_run(runtime: Runtime, plan: ExecutionPlan, expect_last: str) -> tuple[float, Any, float]:
    """(seconds until the run returned, last table, seconds until its flow run COMPLETED).

    The flow run is recorded alongside the data path (ADR 0005); waiting for it here also
    keeps its work out of the next measurement."""
    sink = CountingSink()
    start = time.perf_counter()
    result = runtime.run_sync(plan, sink=sink, keep_outputs=[expect_last])
    elapsed = time.perf_counter() - start
    if result.status != "succeeded":
        raise RuntimeError(f"{plan.workflow_name}: {result.status}: {result.error}")
    n_nodes = len(plan.node_to_step)
    done = sum(1 for s in sink.final.values() if s == "succeeded")
    if done != n_nodes:
        raise RuntimeError(f"{plan.workflow_name}: {done}/{n_nodes} nodes succeeded")
    table = result.table(expect_last)
    recorded = result.recorded(timeout=300)
    if recorded.state != "COMPLETED":
        raise RuntimeError(f"{plan.workflow_name}: flow run {recorded}")
    return elapsed, table, time.perf_counter() - start


def cancel_latency(runtime: Runtime, home: Path) -> float:
    """Seconds from ``Runtime.cancel`` to the run returning, for a node stuck in a 60 s sleep."""
    import threading

    from uzo_engine.plan import StepContext

    started = home / "sleep-started"
    plan = _plan("cancel", [("src", []), ("sleep", ["src"])], {"sleep": Sleep(60, str(started))})
    cancelled_at: list[float] = []

    def cancel() -> None:
        while not started.exists():
            time.sleep(0.01)
        cancelled_at.append(time.perf_counter())
        runtime.cancel("bench-cancel")

    thread = threading.Thread(target=cancel, daemon=True)
    thread.start()
    result = runtime.run_sync(plan, ctx=StepContext(execution_id="bench-cancel"))
    returned = time.perf_counter()
    thread.join()
    if result.status != "cancelled":
        raise RuntimeError(f"cancel: {result.status}")
    return returned - cancelled_at[0]


def sizes() -> list[int]:
    raw = os.environ.get("UZO_BENCH_OVERHEAD_SIZES", "100,1000,10000")
    return [int(x) for x in raw.split(",") if x.strip()]


def main() -> None:
    import ray

    from uzo_engine.runtime.engine import Runtime
    from uzo_engine.settings import EngineSettings

    home = Path(tempfile.mkdtemp(prefix="uzo-bench-overhead-"))
    settings = EngineSettings(home=home)  # UZO_RAY_ADDRESS / UZO_PREFECT_API_URL still apply
    t0 = time.perf_counter()
    runtime = Runtime(settings).start()
    startup_s = time.perf_counter() - t0
    try:
        first_start = time.perf_counter()
        uzo_run(runtime, chain_plan(3), "n2")
        first_flow_s = time.perf_counter() - first_start
        warm_s = min(uzo_run(runtime, chain_plan(3), "n2")[0] for _ in range(3))
        raw_cls: Any = ray.remote(num_cpus=0)(RawActor)
        actors = [raw_cls.remote() for _ in range(2)]
        ray.get([a.f.remote(1) for a in actors])
        ports = port_strategies(actors)
        baseline_rss = rss_mb()
        rows: list[dict[str, Any]] = []
        for n in sizes():
            for shape in ("chain", "fan"):
                if shape == "chain":
                    raw_s = raw_chain(actors, n)
                    uzo_s, table, recorded_s = uzo_run(runtime, chain_plan(n), f"n{n - 1}")
                    assert table.num_rows == 1
                else:
                    raw_s = raw_fan(actors, n)
                    uzo_s, table, recorded_s = uzo_run(runtime, fan_plan(n), "sink")
                    assert table["inputs"][0].as_py() == n - 2
                row = {
                    "shape": shape,
                    "nodes": n,
                    "uzo_s": round(uzo_s, 3),
                    "uzo_until_flow_run_completed_s": round(recorded_s, 3),
                    "raw_s": round(raw_s, 3),
                    "uzo_ms_per_node": round(uzo_s / n * 1000, 3),
                    "raw_ms_per_node": round(raw_s / n * 1000, 3),
                    "overhead_ms_per_node": round((uzo_s - raw_s) / n * 1000, 3),
                    "driver_rss_growth_mb": round(rss_mb() - baseline_rss, 1),
                }
                rows.append(row)
                print(
                    f"{shape:>5} {n:>6} nodes: UZO {uzo_s:7.2f}s ({row['uzo_ms_per_node']:.2f} "
                    f"ms/node)  raw {raw_s:7.2f}s ({row['raw_ms_per_node']:.2f} ms/node)  "
                    f"+{row['overhead_ms_per_node']:.2f} ms/node  "
                    f"RSS +{row['driver_rss_growth_mb']:.0f} MB  "
                    f"(flow run COMPLETED after {recorded_s:.2f}s)",
                    flush=True,
                )
        for a in actors:
            ray.kill(a)
        cancel_s = cancel_latency(runtime, home)
    finally:
        runtime.close(stop_cluster=True, stop_prefect=True)
        shutil.rmtree(home, ignore_errors=True)
    report = {
        "benchmark": "overhead",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),  # the machine is shared
        },
        "runtime_start_s": round(startup_s, 2),
        "first_flow_run_s": round(first_flow_s, 3),
        "warm_flow_run_3_nodes_s": round(warm_s, 3),
        "port_strategies": ports,
        "cancel_latency_s": round(cancel_s, 3),
        "results": rows,
        "goals": {
            "overhead_ms_per_node_max": 2.0,
            "nodes_10000_s_max": 30.0,
            "driver_rss_growth_mb_max": 1024,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(
        f"runtime start {startup_s:.1f}s; first flow run {first_flow_s:.2f}s; "
        f"warm 3-node flow run {warm_s:.2f}s"
    )
    print(f"per-port returns: {ports}")
    print(f"cancellation latency (node stuck in a 60 s sleep): {cancel_s:.2f}s")
    print(
        f"{'shape':>6} {'nodes':>6} {'UZO s':>8} {'raw s':>8} {'UZO ms/n':>9} "
        f"{'raw ms/n':>9} {'+ms/n':>7} {'RSS+MB':>7}"
    )
    for r in rows:
        print(
            f"{r['shape']:>6} {r['nodes']:>6} {r['uzo_s']:>8.2f} {r['raw_s']:>8.2f} "
            f"{r['uzo_ms_per_node']:>9.2f} {r['raw_ms_per_node']:>9.2f} "
            f"{r['overhead_ms_per_node']:>7.2f} {r['driver_rss_growth_mb']:>7.0f}"
        )
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
