"""Dev-preview latency: TPC-H Q3's join node, 100 rows, on a warm cluster.

The workflow is ``examples/tpch_q3.json`` over TPC-H SF 1 (``UZO_BENCH_TPCH_SCALE``)
generated once into ``$UZO_BENCH_DATA`` (default ``benchmarks/.data/``). The node
previewed is ``order_lines`` (lineitem ⋈ (orders ⋈ customer), the join that feeds
the aggregate). A preview is what ``uzo preview`` does: compile the node and its
ancestors with the node as a step boundary, then ``Runtime.preview`` (direct actor
calls, no Prefect flow run) with a 100-row limit, applied at the node. Sources read
at most ``StepContext.preview_limit`` rows (the preview's budget): 1,000,000 as ``uzo
preview`` sets it by default (``UZO_PREVIEW_MAX_SOURCE_ROWS``), 100,000 (the headline
numbers of earlier runs) and 1,000 (what ``uzo preview`` read before previews were
honest: on Q3 the join of such heads is empty, the sampled orders rarely reference the
sampled customers). At SF 1 lineitem and orders are larger than every budget, so each
preview says ``sampled`` (the table's column) with the rows each source read. The
rows shown are checked against DuckDB running the same joins over the same samples.

The Ray runtime is started and warmed up (one flow run) before anything is timed.
Each sample is measured as compile + preview (the user-visible latency) and as the
preview call alone; per sample size:

- cold: the first preview (nothing cached; for the first size the actors have not
  run a Polars plan yet); cold_cache: the same plan with an empty cache each time
  (every step runs);
- cached: the unchanged graph again (every upstream step comes from the preview
  cache; only the result is fetched), 30 samples;
- changed: the ``early_orders`` filter date changes each time, so the orders branch
  and both joins re-run while the customer and lineitem branches are cached.

Goal: p50 under 150 ms. Results: a table on stdout and
``benchmarks/results/preview.json``.
"""

from __future__ import annotations

import datetime as dt
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

from benchmarks import tpch_data as tpch

if TYPE_CHECKING:
    from uzo_engine.runtime.engine import Runtime
    from uzo_engine.runtime.preview import PreviewCache, PreviewResult

RESULTS = Path(__file__).parent / "results" / "preview.json"
NODE = "order_lines"  # the join of lineitem with (orders ⋈ customer)
CHANGED_NODE = "early_orders"  # its filter date changes in the "changed" scenario
LIMIT = 100
# Rows each source reads at most. 1,000,000 is `uzo preview`'s default budget; 1,000 what
# it read before (max(limit, 1000)): on Q3 the join of such heads is empty (random
# customer keys rarely match); 100,000 the headline of earlier runs.
SOURCE_ROWS = (1_000_000, 100_000, 1_000)
COLD_CACHE_SAMPLES = 5
CACHED_SAMPLES = 30
CHANGED_SAMPLES = 20
GOAL_P50_MS = 150.0


@dataclass
class Scenario:
    name: str
    description: str
    total_ms: list[float] = field(default_factory=list)  # compile + preview
    preview_ms: list[float] = field(default_factory=list)  # Runtime.preview alone
    rows: int = 0
    sampled: bool = False
    source_rows: dict[str, int] = field(default_factory=dict)
    executed_steps: list[str] = field(default_factory=list)
    cached_steps: list[str] = field(default_factory=list)

    def stats(self, values: list[float]) -> dict[str, float]:
        return {
            "p50_ms": round(percentile(values, 50), 2),
            "p95_ms": round(percentile(values, 95), 2),
            "min_ms": round(min(values), 2),
            "max_ms": round(max(values), 2),
            "mean_ms": round(statistics.fmean(values), 2),
        }

    def report(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "samples": len(self.total_ms),
            "total": self.stats(self.total_ms),
            "preview_only": self.stats(self.preview_ms),
            "rows_returned": self.rows,
            "sampled": self.sampled,
            "source_rows": self.source_rows,
            "executed_steps": self.executed_steps,
            "cached_steps": self.cached_steps,
            "samples_total_ms": [round(x, 2) for x in self.total_ms],
        }


def percentile(values: list[float], pct: float) -> float:
    """Linear-interpolated percentile (numpy's default method)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * pct / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def data_dir(scale: float) -> Path:
    root = Path(os.environ.get("UZO_BENCH_DATA") or Path(__file__).parent / ".data")
    return tpch.ensure_data(root / f"tpch-sf{scale:g}", scale)


def with_date(doc: dict[str, Any], date: dt.date) -> dict[str, Any]:
    """``doc`` with the ``early_orders`` filter on ``date`` (a config change upstream)."""
    changed = json.loads(json.dumps(doc))
    for node in changed["nodes"]:
        if node["id"] == CHANGED_NODE:
            node["data"]["config"]["condition"] = f"o_orderdate < DATE '{date.isoformat()}'"
            return changed
    raise KeyError(CHANGED_NODE)


def preview_once(
    runtime: Runtime,
    doc: dict[str, Any],
    scenario: Scenario,
    source_rows: int,
    cache: PreviewCache | None = None,
) -> PreviewResult:
    """Compile ``doc`` for a preview of NODE and preview it; one timed sample."""
    from uzo_engine.compiler import CompileOptions, compile_workflow

    start = time.perf_counter()
    # as `uzo preview` does: join inputs stay separate steps, so an edit re-runs only its branch
    options = CompileOptions(
        upstream_of=NODE, materialize=frozenset({NODE}), fuse_joins=False, profile=False
    )
    plan = compile_workflow(doc, name="tpch_q3", options=options)
    ctx = tpch.operator_context(f"bench-preview-{NODE}", preview_limit=source_rows)
    compiled = time.perf_counter()
    if cache is None:
        result = runtime.preview(plan, NODE, limit=LIMIT, ctx=ctx)
    else:  # an explicit (empty) cache: every step runs
        result = runtime.preview(plan, NODE, limit=LIMIT, cache=cache, ctx=ctx)
    end = time.perf_counter()
    if result.status != "succeeded":
        raise RuntimeError(f"preview of {NODE} {result.status}: {result.error}")
    scenario.total_ms.append((end - start) * 1000)
    scenario.preview_ms.append((end - compiled) * 1000)
    scenario.rows = len(result.rows)
    scenario.sampled = result.sampled
    scenario.source_rows = dict(result.source_rows)
    scenario.executed_steps = list(result.executed_steps)
    scenario.cached_steps = list(result.cached_steps)
    return result


def check_rows(result: PreviewResult, data: Path, source_rows: int) -> int:
    """The preview's rows against DuckDB running Q3's joins on the same source samples.

    Returns the number of rows the full join of the samples has.
    """
    import duckdb

    con = duckdb.connect()
    try:
        found = con.execute(
            f"""
            WITH c AS (SELECT * FROM (SELECT c_custkey, c_mktsegment
                                      FROM '{data}/customer.parquet' LIMIT $n)
                       WHERE c_mktsegment = 'BUILDING'),
                 o AS (SELECT * FROM (SELECT o_orderkey, o_custkey, o_orderdate
                                      FROM '{data}/orders.parquet' LIMIT $n)
                       WHERE o_orderdate < DATE '1995-03-15'),
                 l AS (SELECT * FROM (SELECT l_orderkey, l_shipdate
                                      FROM '{data}/lineitem.parquet' LIMIT $n)
                       WHERE l_shipdate > DATE '1995-03-15')
            SELECT l_orderkey FROM l JOIN o ON l_orderkey = o_orderkey
                                     JOIN c ON o_custkey = c_custkey
            """,
            {"n": source_rows},
        ).fetchall()
    finally:
        con.close()
    expected = sorted(k for (k,) in found)
    got = sorted(r["l_orderkey"] for r in result.rows)
    if len(got) != min(len(expected), LIMIT) or not set(got) <= set(expected):
        raise RuntimeError(
            f"preview of {NODE}: {len(got)} rows {got[:5]}..., DuckDB on the same samples "
            f"{len(expected)} rows {expected[:5]}..."
        )
    return len(expected)


def measure(runtime: Runtime, doc: dict[str, Any], data: Path, source_rows: int) -> dict[str, Any]:
    """Every scenario with sources reading ``source_rows`` rows; the first preview is cold."""
    from uzo_engine.runtime.preview import PreviewCache

    cold = Scenario("cold", "first preview with this sample: nothing cached")
    cold_cache = Scenario("cold_cache", "empty preview cache: every step runs")
    cached = Scenario("cached", "unchanged graph: every upstream step from the preview cache")
    changed = Scenario(
        "changed",
        f"{CHANGED_NODE}'s filter date changes each time: orders branch and joins re-run",
    )
    first = preview_once(runtime, doc, cold, source_rows)
    join_rows = check_rows(first, data, source_rows)
    read = ", ".join(f"{n} {r:,}" for n, r in first.source_rows.items())
    note = "sampled" if first.sampled else "exact"
    print(
        f"  budget {source_rows:,} rows per source: {len(first.rows)} rows shown of "
        f"{join_rows} ({note}; read {read})"
    )
    for _ in range(COLD_CACHE_SAMPLES):
        preview_once(runtime, doc, cold_cache, source_rows, cache=PreviewCache())
    for _ in range(CACHED_SAMPLES):
        result = preview_once(runtime, doc, cached, source_rows)
        if result.executed_steps:
            raise RuntimeError(f"unchanged graph re-ran {result.executed_steps}")
    base = dt.date(1995, 3, 15)
    for i in range(CHANGED_SAMPLES):
        date = base + dt.timedelta(days=i + 1)  # a new config every time
        result = preview_once(runtime, with_date(doc, date), changed, source_rows)
        if not result.cached_steps or not result.executed_steps:
            raise RuntimeError(f"changed graph: ran {result.executed_steps}")
    scenarios = [cold, cold_cache, cached, changed]
    print_table(source_rows, scenarios)
    return {
        "source_rows": source_rows,
        "sampled_join_rows": join_rows,
        "rows_checked_against": "duckdb on the same source samples",
        "scenarios": {s.name: s.report() for s in scenarios},
    }


def print_table(source_rows: int, scenarios: list[Scenario]) -> None:
    print()
    print(f"preview of Q3's join {NODE!r}: limit {LIMIT}, sources read <= {source_rows:,} rows")
    header = (
        f"{'scenario':<11} {'n':>3} {'p50 ms':>8} {'p95 ms':>8} {'min ms':>8} "
        f"{'preview p50':>12} {'rows':>5} {'sampled':>7}  executed / cached steps"
    )
    print(header)
    print("-" * (len(header) + 4))
    for s in scenarios:
        total = s.stats(s.total_ms)
        only = s.stats(s.preview_ms)
        print(
            f"{s.name:<11} {len(s.total_ms):>3} {total['p50_ms']:>8.1f} {total['p95_ms']:>8.1f} "
            f"{total['min_ms']:>8.1f} {only['p50_ms']:>12.1f} {s.rows:>5} "
            f"{'yes' if s.sampled else 'no':>7}  "
            f"{len(s.executed_steps)} / {len(s.cached_steps)}"
        )
    print()


def main() -> None:
    from uzo_engine.runtime.engine import Runtime
    from uzo_engine.settings import EngineSettings

    scale = float(os.environ.get("UZO_BENCH_TPCH_SCALE", "1"))
    t0 = time.perf_counter()
    data = data_dir(scale)
    print(f"TPC-H SF {scale:g} in {data} ({time.perf_counter() - t0:.1f}s incl. generation)")
    doc = tpch.load_workflow("q3", data)

    home = Path(tempfile.mkdtemp(prefix="uzo-bench-preview-"))
    settings = EngineSettings(home=home)  # UZO_RAY_ADDRESS / UZO_PREFECT_API_URL still apply
    t0 = time.perf_counter()
    runtime = Runtime(settings).start()
    startup_s = time.perf_counter() - t0
    samples: dict[str, Any] = {}
    try:
        warm_up_s = runtime.warm_up()
        print(f"runtime start {startup_s:.1f}s, warm-up flow run {warm_up_s:.2f}s (not timed)")
        for rows in SOURCE_ROWS:
            samples[f"sources_{rows}_rows"] = measure(runtime, doc, data, rows)
    finally:
        runtime.close(stop_cluster=True, stop_prefect=True)
        shutil.rmtree(home, ignore_errors=True)

    goals: dict[str, Any] = {}
    for key, sample in samples.items():
        for name in ("cached", "changed"):
            p50 = sample["scenarios"][name]["total"]["p50_ms"]
            goals[f"{key}/{name}"] = {"p50_ms": p50, "under_150ms": p50 < GOAL_P50_MS}
            verdict = "met" if p50 < GOAL_P50_MS else "NOT met"
            print(f"goal p50 < {GOAL_P50_MS:.0f} ms ({key}, {name}): {p50:.1f} ms, {verdict}")

    report = {
        "benchmark": "preview",
        "scale_factor": scale,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),  # the machine is shared
        },
        "workflow": "examples/tpch_q3.json",
        "node": NODE,
        "limit": LIMIT,
        "runtime_start_s": round(startup_s, 2),
        "warm_up_flow_run_s": round(warm_up_s, 2),
        "timing": "milliseconds; total = compile + Runtime.preview, preview_only = the call",
        "samples": samples,
        "goals": {"p50_ms_max": GOAL_P50_MS, "measured": goals},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
