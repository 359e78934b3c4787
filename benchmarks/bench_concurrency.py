"""Many concurrent runs in one process: I/O-bound runs waiting on HTTP, CPU-bound TPC-H Q6.

Two parts, each on a warm runtime in this process (local Ray, actors warmed up):

- **I/O-bound**: ``UZO_BENCH_CONCURRENCY_IO_RUNS`` (1,000) runs submitted at once,
  each a workflow whose ``source`` node reads from a loopback HTTP endpoint that
  answers after ``UZO_BENCH_CONCURRENCY_WAIT_S`` (5 s). The node is I/O-bound, so it
  runs on the I/O lane (threaded actors that hold no CPU). Goal: every run done
  within 15 s; the driver's thread count stays bounded (sampled while they run).
- **CPU-bound**: ``UZO_BENCH_CONCURRENCY_CPU_RUNS`` (200) TPC-H Q6 runs at SF 0.1
  (``UZO_BENCH_CONCURRENCY_SCALE``), all submitted at once, against the same runs
  back to back in the same process. Goal: the concurrent total within 1.2x of the
  back-to-back total, and no run starved (max and median run time reported).

The Prefect mirror is off here (it has its own benchmark): this measures the
executor. Results: a table on stdout and ``benchmarks/results/concurrency.json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from uzo_engine.plan import ExecutionPlan, StepContext
    from uzo_engine.runtime.engine import Runtime

RESULTS = Path(__file__).parent / "results" / "concurrency.json"
QUICK = os.environ.get("UZO_BENCH_QUICK") == "1"
IO_RUNS = int(os.environ.get("UZO_BENCH_CONCURRENCY_IO_RUNS", "50" if QUICK else "1000"))
CPU_RUNS = int(os.environ.get("UZO_BENCH_CONCURRENCY_CPU_RUNS", "10" if QUICK else "200"))
WAIT_S = float(os.environ.get("UZO_BENCH_CONCURRENCY_WAIT_S", "1" if QUICK else "5"))
SCALE = float(os.environ.get("UZO_BENCH_CONCURRENCY_SCALE", "0.01" if QUICK else "0.1"))
IO_GOAL_S = 15.0
CPU_GOAL_RATIO = 1.2

_SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from aiohttp import web

    wait = float(sys.argv[1])

    async def slow(request):
        await asyncio.sleep(wait)
        return web.json_response([{"id": 1, "value": 2.5}, {"id": 2, "value": 4.0}])

    app = web.Application()
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)

    async def main():
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def _start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(WAIT_S)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}"


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _context(execution_id: str) -> StepContext:
    """The operator's connector context (loopback allowed: the endpoint is on 127.0.0.1)."""
    from uzo_connectors.settings import ConnectorSettings
    from uzo_engine.plan import StepContext

    connectors = ConnectorSettings(allow_loopback=True).operator_context()
    return StepContext(execution_id=execution_id, connectors=connectors)


def _http_plan(url: str) -> ExecutionPlan:
    from uzo_engine.compiler import compile_workflow

    config = {
        "base_url": url,
        "resources": [{"name": "slow", "path": "/slow", "columns": {"id": "int64"}}],
    }
    doc = {
        "nodes": [
            {
                "id": "wait",
                "position": {"x": 0, "y": 0},
                "data": {
                    "nodeType": "source",
                    "config": {
                        "connector": "http",
                        "config": config,
                        "dataset": "slow",
                        "schema": {"id": "int64", "value": "float64"},
                    },
                },
            }
        ],
        "edges": [],
    }
    return compile_workflow(doc, name="io-wait")


async def _one(runtime: Runtime, plan: ExecutionPlan, ctx: StepContext) -> tuple[float, str]:
    started = time.perf_counter()
    result = await runtime.run(plan, ctx=ctx)
    return time.perf_counter() - started, result.status if result.status != "failed" else (
        f"failed: {result.error}"
    )


async def _concurrently(
    runtime: Runtime, plans: list[ExecutionPlan], prefix: str, sample: list[int]
) -> tuple[float, list[float], list[str]]:
    stop = threading.Event()

    def sampler() -> None:
        while not stop.wait(0.2):
            sample.append(_threads())

    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    started = time.perf_counter()
    try:
        outcomes = await asyncio.gather(
            *(
                _one(runtime, plan, _context(f"{prefix}-{i}-{uuid.uuid4().hex[:6]}"))
                for i, plan in enumerate(plans)
            )
        )
    finally:
        stop.set()
        watcher.join()
    total = time.perf_counter() - started
    return total, [o[0] for o in outcomes], [o[1] for o in outcomes]


def io_part(runtime: Runtime) -> dict[str, Any]:
    server, url = _start_server()
    try:
        plan = _http_plan(url)
        one = asyncio.run(_one(runtime, plan, _context("io-warm")))  # connector imports
        if one[1] != "succeeded":
            raise RuntimeError(f"the I/O workflow does not run: {one[1]}")
        before = _threads()
        threads: list[int] = []
        total, times, statuses = asyncio.run(
            _concurrently(runtime, [plan] * IO_RUNS, "io", threads)
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    failed = [s for s in statuses if s != "succeeded"]
    return {
        "runs": IO_RUNS,
        "wait_s": WAIT_S,
        "total_s": round(total, 2),
        "goal_s": IO_GOAL_S,
        "median_run_s": round(statistics.median(times), 2),
        "max_run_s": round(max(times), 2),
        "failed": len(failed),
        "first_failure": failed[0] if failed else None,
        "driver_threads_before": before,
        "driver_threads_max": max(threads, default=before),
        "io_actors": runtime.settings.io_actors,
        "io_concurrency": runtime.settings.io_concurrency,
    }


def cpu_part(runtime: Runtime, data_dir: Path) -> dict[str, Any]:
    from benchmarks import tpch_data
    from uzo_engine.compiler import compile_workflow

    plan = compile_workflow(tpch_data.load_workflow("q6", data_dir), name="tpch_q6")
    warm = runtime.run_sync(plan, ctx=_context("q6-warm"))
    if warm.status != "succeeded":
        raise RuntimeError(f"Q6 does not run: {warm.error}")
    back_times = []
    started = time.perf_counter()
    for i in range(CPU_RUNS):
        t = time.perf_counter()
        result = runtime.run_sync(plan, ctx=_context(f"q6-seq-{i}-{uuid.uuid4().hex[:6]}"))
        back_times.append(time.perf_counter() - t)
        if result.status != "succeeded":
            raise RuntimeError(f"Q6 run {i} {result.status}: {result.error}")
    back_to_back = time.perf_counter() - started
    threads: list[int] = []
    total, times, statuses = asyncio.run(_concurrently(runtime, [plan] * CPU_RUNS, "q6", threads))
    failed = [s for s in statuses if s != "succeeded"]
    return {
        "runs": CPU_RUNS,
        "scale": SCALE,
        "back_to_back_s": round(back_to_back, 2),
        "back_to_back_median_run_s": round(statistics.median(back_times), 4),
        "concurrent_s": round(total, 2),
        "ratio": round(total / back_to_back, 3),
        "goal_ratio": CPU_GOAL_RATIO,
        "concurrent_median_run_s": round(statistics.median(times), 3),
        "concurrent_max_run_s": round(max(times), 3),
        "max_over_median": round(max(times) / statistics.median(times), 2),
        "failed": len(failed),
        "driver_threads_max": max(threads, default=0),
    }


def main() -> None:
    from benchmarks import tpch_data
    from uzo_engine.runtime.engine import Runtime
    from uzo_engine.settings import EngineSettings

    home = Path(tempfile.mkdtemp(prefix="uzo-bench-concurrency-"))
    data_dir = tpch_data.ensure_data(home / "tpch", scale=SCALE)
    settings = EngineSettings(
        home=home,
        io_actors=int(os.environ.get("UZO_IO_ACTORS", "4")),
        io_concurrency=int(os.environ.get("UZO_IO_CONCURRENCY", "256")),
    )
    runtime = Runtime(settings).start()
    runtime._recorder = None  # the mirror has its own benchmark: measure the executor
    try:
        io = io_part(runtime)
        print(
            f"I/O : {io['runs']} runs waiting {io['wait_s']:g} s on HTTP: all done in "
            f"{io['total_s']:.1f} s (goal {IO_GOAL_S:g} s; median {io['median_run_s']} s, max "
            f"{io['max_run_s']} s); {io['failed']} failed; driver threads "
            f"{io['driver_threads_before']} -> max {io['driver_threads_max']}",
            flush=True,
        )
        cpu = cpu_part(runtime, data_dir)
        print(
            f"CPU : {cpu['runs']} TPC-H Q6 SF {cpu['scale']:g}: back to back "
            f"{cpu['back_to_back_s']:.2f} s, concurrent {cpu['concurrent_s']:.2f} s = "
            f"{cpu['ratio']:.2f}x (goal {CPU_GOAL_RATIO}x); run time median "
            f"{cpu['concurrent_median_run_s']} s, max {cpu['concurrent_max_run_s']} s",
            flush=True,
        )
    finally:
        runtime.close(stop_cluster=True, stop_prefect=True)
        shutil.rmtree(home, ignore_errors=True)
    report = {
        "benchmark": "concurrency",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "io_bound": io,
        "cpu_bound": cpu,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
