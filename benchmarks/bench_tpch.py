"""TPC-H Q1, Q3, Q6, Q10 through UZO's engine against Polars, DuckDB and pandas.

The queries are the example workflows ``examples/tpch_q*.json`` (parquet_source ->
cast/filter/derive/join/aggregate/sort/limit nodes). Each runs:

- through UZO's engine path: validate + compile + run, as ``uzo run`` does. The
  Ray runtime (``uzo_engine.runtime``: node actors, Arrow through the object store,
  each run mirrored to Prefect as a flow run) when it starts; cluster start-up is not
  timed, and the first run of each query is reported apart from the warm runs.
  The in-process executor (``uzo_engine.runtime.local``, same compiled plan, no Ray) is
  measured too. Both with the default fusion (chains, whole-table nodes and join
  trees) and with row-wise chains only;
- as hand-written Polars lazy code, DuckDB SQL (the standard TPC-H text) and pandas
  (``benchmarks.tpch_data``).

Every answer is checked against DuckDB's (a mismatch raises). Times are the median of
7 warm runs (after a first run, reported as ``first_s``), and include reading Parquet.
Polars, DuckDB, pandas and UZO's default (fused) paths take turns in the same
rounds; the other variants (chains only, no profile) are measured in rounds of their
own afterwards. Two figures for the Ray path, with its Prefect mirror on:

- *settled* (``uzo ray (fused (default))``): the mirror writes a run's flow run
  between runs, untimed;
- *sustained* (``uzo ray (fused, mirror sustained)``): the runs follow each other
  back to back and the mirror writes while the next run goes, as on a busy service.

Data: TPC-H SF 1 (``UZO_BENCH_TPCH_SCALE``) generated once by ``tpchgen-cli`` into
``$UZO_BENCH_DATA`` (default ``benchmarks/.data/``). Goals: UZO within
1.3x of hand-written Polars; at least 3x faster than pandas. Results: a table on
stdout and ``benchmarks/results/tpch.json``.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import tpch_data as tpch

if TYPE_CHECKING:
    from collections.abc import Callable

    from uzo_engine.compiler import CompileOptions
    from uzo_engine.runtime.engine import Runtime

RESULTS = Path(__file__).parent / "results" / "tpch.json"
RUNS = 7  # timed warm runs per engine and query (after one first run)
GOAL_VS_POLARS = 1.3
GOAL_VS_PANDAS = 3.0
SUSTAINED = "uzo ray (fused, mirror sustained)"


def data_dir(scale: float) -> Path:
    root = Path(os.environ.get("UZO_BENCH_DATA") or Path(__file__).parent / ".data")
    return tpch.ensure_data(root / f"tpch-sf{scale:g}", scale)


@dataclass
class Timing:
    engine: str
    query: str
    first_s: float
    runs_s: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.runs_s)


def measure(
    query: str,
    engines: dict[str, Callable[[], Any]],
    expected: Any,
    settle: Callable[[], object] | None = None,
) -> dict[str, Timing]:
    """A first run of every engine, then RUNS rounds; every answer is compared with DuckDB's.

    Engines take turns within each round, in an order that rotates from round to
    round, so load from elsewhere on the machine, and the memory pandas leaves
    behind, spread over all of them instead of skewing one. ``settle`` runs after each
    engine, untimed: the Prefect flow runs still being recorded finish there, so
    their work does not land in the next engine's time.
    """
    timings = {name: Timing(name, query, 0.0) for name in engines}
    names = list(engines)
    for round_ in range(RUNS + 1):
        # the order rotates each round: no engine always runs right after pandas' big heap
        turn = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in turn:
            fn = engines[name]
            gc.collect()
            start = time.perf_counter()
            answer = fn()
            elapsed = time.perf_counter() - start
            tpch.assert_same_answer(query, answer, expected)  # raises on a wrong answer
            if settle is not None:
                settle()
            if round_ == 0:
                timings[name].first_s = elapsed
            else:
                timings[name].runs_s.append(elapsed)
    for t in timings.values():
        print(
            f"  {query:>4} {t.engine:<34} first {t.first_s:7.3f}s  median {t.median_s:7.3f}s  "
            f"runs {', '.join(f'{x:.3f}' for x in t.runs_s)}",
            flush=True,
        )
    return timings


def ray_floor(runtime: Runtime) -> Timing:
    """A one-node workflow (a 1-row `values` node): the fixed cost of one run."""
    from uzo_engine.compiler import compile_workflow

    doc = {
        "nodes": [
            {
                "id": "result",
                "position": {"x": 0, "y": 0},
                "data": {"nodeType": "values", "config": {"rows": [{"x": 1}]}},
            }
        ],
        "edges": [],
    }
    timing = Timing("uzo ray floor (1 node)", "floor", 0.0)
    for round_ in range(RUNS + 1):
        start = time.perf_counter()
        plan = compile_workflow(doc, name="floor")
        result = runtime.run_sync(plan, keep_outputs=["result"])
        assert result.table("result").num_rows == 1
        elapsed = time.perf_counter() - start
        recorded = result.recorded()
        assert recorded.state == "COMPLETED", recorded
        until = time.perf_counter() - start
        print(f"  floor run {round_}: {elapsed:.3f}s, flow run COMPLETED after {until:.3f}s")
        if round_ == 0:
            timing.first_s = elapsed
        else:
            timing.runs_s.append(elapsed)
    print(f"  {timing.engine}: median {timing.median_s:.3f}s", flush=True)
    return timing


# ---------------------------------------------------------------- UZO engine paths


def uzo_local(doc: dict[str, Any], options: CompileOptions) -> Callable[[], Any]:
    from uzo_engine.runtime.local import run_workflow

    def run() -> Any:
        ctx = tpch.operator_context("tpch-local")
        result = run_workflow(doc, name="tpch", options=options, ctx=ctx)
        if result.status != "succeeded":
            raise RuntimeError(f"UZO local run {result.status}: {result.error}")
        return result.table("result")

    return run


def uzo_ray(runtime: Runtime, doc: dict[str, Any], options: CompileOptions) -> Callable[[], Any]:
    """The answer as ``uzo run`` gets it (the run's Prefect flow run is written alongside,
    ADR 0005: whether that happens between runs is up to ``measure``'s ``settle``)."""
    from uzo_engine.compiler import compile_workflow

    def run() -> Any:
        plan = compile_workflow(doc, name="tpch", options=options)
        step = plan.node_to_step["result"]
        ctx = tpch.operator_context(uuid.uuid4().hex)
        result = runtime.run_sync(plan, ctx=ctx, keep_outputs=[step])
        if result.status != "succeeded":
            raise RuntimeError(f"UZO Ray run {result.status}: {result.error}")
        return result.table("result")

    return run


def start_runtime(home: Path) -> tuple[Runtime | None, float, str | None]:
    """The Ray runtime on a warm cluster, or None (and why) when it does not start."""
    try:
        from uzo_engine.runtime.engine import Runtime
        from uzo_engine.settings import EngineSettings

        settings = EngineSettings(home=home, ray_object_store_mb=3072)
        start = time.perf_counter()
        runtime = Runtime(settings).start()
        return runtime, time.perf_counter() - start, None
    except Exception as e:
        traceback.print_exc()
        return None, 0.0, f"{type(e).__name__}: {e}"


# ---------------------------------------------------------------- report


def ratios(timings: dict[str, Timing]) -> dict[str, dict[str, float]]:
    polars = timings["polars"].median_s
    pandas = timings["pandas"].median_s
    return {
        name: {"vs_polars": t.median_s / polars, "pandas_speedup": pandas / t.median_s}
        for name, t in timings.items()
    }


def print_table(results: dict[str, dict[str, Timing]], engines: list[str]) -> None:
    print()
    header = f"{'query':>5} {'engine':<34} {'first s':>8} {'median s':>9} {'x Polars':>9}"
    print(header + f" {'pandas / this':>14}")
    print("-" * (len(header) + 15))
    for query, timings in results.items():
        r = ratios(timings)
        for name in engines:
            if name not in timings:
                continue
            t = timings[name]
            print(
                f"{query:>5} {name:<34} {t.first_s:8.3f} {t.median_s:9.3f} "
                f"{r[name]['vs_polars']:8.2f}x {r[name]['pandas_speedup']:13.2f}x"
            )
        print()


def main() -> None:
    from uzo_engine.compiler import CompileOptions

    scale = float(os.environ.get("UZO_BENCH_TPCH_SCALE", "1"))
    t0 = time.perf_counter()
    data = data_dir(scale)
    print(f"TPC-H SF {scale:g} in {data} ({time.perf_counter() - t0:.1f}s incl. generation)")

    home = Path(tempfile.mkdtemp(prefix="uzo-bench-tpch-"))
    runtime, startup_s, runtime_error = start_runtime(home)
    engine_path = (
        "uzo_engine.runtime (node actors, warm cluster, runs mirrored to Prefect)"
        if runtime is not None
        else f"uzo_engine.runtime.local (in-process executor; Ray runtime failed: {runtime_error})"
    )
    print(f"UZO engine path: {engine_path}")
    if runtime is not None:
        print(f"runtime start (not timed): {startup_s:.1f}s")

    variants = {
        "chains only": CompileOptions(fuse_wide=False, fuse_joins=False),
        "fused (default)": CompileOptions(),
    }
    extra_local = {"fused, no profile": CompileOptions(profile=False)}
    results: dict[str, dict[str, Timing]] = {}
    floor: Timing | None = None
    con = tpch.duckdb_connection(data)
    try:
        if runtime is not None:
            floor = ray_floor(runtime)
        for query in tpch.QUERIES:
            print(f"== {query}", flush=True)
            expected = tpch.duckdb_answer(query, data, con)
            doc = tpch.load_workflow(query, data)
            # the goal's engines take turns in the same rounds; the variants run apart, after,
            # so the large intermediate tables of "chains only" do not weigh on the others
            engines: dict[str, Callable[[], Any]] = {
                "polars": lambda q=query: tpch.polars_answer(q, data),
                "duckdb": lambda q=query: tpch.duckdb_answer(q, data, con),
                "pandas": lambda q=query: tpch.pandas_answer(q, data),
            }
            extras: dict[str, Callable[[], Any]] = {}
            for variant, options in variants.items():
                group = engines if variant == "fused (default)" else extras
                if runtime is not None:
                    group[f"uzo ray ({variant})"] = uzo_ray(runtime, doc, options)
                group[f"uzo local ({variant})"] = uzo_local(doc, options)
            for variant, options in extra_local.items():
                extras[f"uzo local ({variant})"] = uzo_local(doc, options)
            settle = runtime.flush_records if runtime is not None else None
            results[query] = measure(query, engines, expected, settle)
            results[query].update(measure(query, extras, expected, settle))
            if runtime is not None:
                # back to back, nothing settles: the mirror works while the next run goes
                sustained = {SUSTAINED: uzo_ray(runtime, doc, CompileOptions())}
                results[query].update(measure(query, sustained, expected))
                runtime.flush_records(timeout=600)
    finally:
        con.close()
        if runtime is not None:
            runtime.close(stop_cluster=True, stop_prefect=True)
        shutil.rmtree(home, ignore_errors=True)

    names = list(results[tpch.QUERIES[0]])
    totals = {
        name: Timing(
            name,
            "total",
            sum(results[q][name].first_s for q in results),
            [sum(results[q][name].runs_s[i] for q in results) for i in range(RUNS)],
        )
        for name in names
    }
    all_results = {**results, "total": totals}
    print_table(all_results, names)
    if floor is not None:
        print(f"uzo ray floor: a 1-node workflow takes {floor.median_s:.3f}s (median)")

    uzo_main = [e for e in names if e.startswith("uzo ray" if runtime else "uzo local")]
    goals = {}
    for name in uzo_main:
        r = ratios(totals)[name]
        goals[name] = {
            "total_vs_polars": round(r["vs_polars"], 3),
            "total_pandas_speedup": round(r["pandas_speedup"], 3),
            "within_1_3x_polars": r["vs_polars"] <= GOAL_VS_POLARS,
            "3x_faster_than_pandas": r["pandas_speedup"] >= GOAL_VS_PANDAS,
        }
        print(
            f"goal check {name}: {r['vs_polars']:.2f}x Polars (goal <= {GOAL_VS_POLARS}x), "
            f"{r['pandas_speedup']:.2f}x faster than pandas (goal >= {GOAL_VS_PANDAS}x)"
        )

    report = {
        "benchmark": "tpch",
        "scale_factor": scale,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "uzo_engine_path": engine_path,
        "runtime_start_s": round(startup_s, 2) if runtime is not None else None,
        "ray_floor_1_node_s": (
            {"first_s": round(floor.first_s, 4), "median_s": round(floor.median_s, 4)}
            if floor is not None
            else None
        ),
        "runs_per_engine": RUNS,
        "timing": "seconds, median of warm runs; first_s is the first run of the process",
        "answers_checked_against": "duckdb",
        "results": {
            query: {
                name: {
                    "first_s": round(t.first_s, 4),
                    "median_s": round(t.median_s, 4),
                    "runs_s": [round(x, 4) for x in t.runs_s],
                    "vs_polars": round(ratios(timings)[name]["vs_polars"], 3),
                    "pandas_speedup": round(ratios(timings)[name]["pandas_speedup"], 3),
                }
                for name, t in timings.items()
            }
            for query, timings in all_results.items()
        },
        "goals": {
            "vs_polars_max": GOAL_VS_POLARS,
            "pandas_speedup_min": GOAL_VS_PANDAS,
            "measured": goals,
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")
