"""PNG charts of the benchmark results: ``benchmarks/results/<name>.json`` -> ``<name>.png``.

Each benchmark writes its own JSON shape, so a small registry maps a benchmark
name to a function that draws it; a benchmark without one gets the generic
chart: ``{"rows": [{"label": ..., "value": ...}]}`` when the JSON has that shape,
else a bar per numeric leaf of its ``results`` (or of the whole document). The
PNGs are not kept in git (the JSON is). Matplotlib runs with the Agg backend.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

RESULTS_DIR = Path(__file__).parent / "results"
MAX_GENERIC_BARS = 40
_SKIP_KEYS = {"machine", "goals", "goal"}


def _figure(rows: int = 1, cols: int = 1, *, width: float = 11, height: float = 4.5) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        rows, cols, figsize=(width, height * rows), squeeze=False, layout="constrained"
    )
    return fig, [ax for row in axes for ax in row]


def _hbars(ax: Axes, labels: list[str], values: list[float], unit: str) -> None:
    positions = list(range(len(labels)))
    bars = ax.barh(positions, values, color="#4C72B0")
    ax.set_yticks(positions, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize=7, padding=2)
    ax.margins(x=0.15)


def _grouped(
    ax: Axes,
    groups: list[str],
    series: dict[str, list[float]],
    unit: str,
    *,
    log: bool = False,
) -> None:
    n = max(len(series), 1)
    width = 0.8 / n
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, values, width, label=name)
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize=7, padding=1)
    ax.set_xticks(list(range(len(groups))), groups, fontsize=8)
    ax.set_ylabel(unit)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)


# ---------------------------------------------------------------- per benchmark


def plot_tpch(data: dict[str, Any]) -> Figure:
    results: dict[str, dict[str, dict[str, Any]]] = data["results"]
    queries = list(results)
    fig, axes = _figure(len(queries), 1, height=3.2)
    for ax, query in zip(axes, queries, strict=True):
        engines = list(results[query])
        medians = [float(results[query][e]["median_s"]) for e in engines]
        labels = [f"{e} ({results[query][e].get('vs_polars', 0):.2f}x Polars)" for e in engines]
        _hbars(ax, labels, medians, "seconds (median of warm runs)")
        ax.set_title(f"TPC-H {query} at SF {data.get('scale_factor', '?')}", fontsize=10)
    fig.suptitle("tpch: UZO vs Polars, DuckDB, pandas")
    return fig


def plot_overhead(data: dict[str, Any]) -> Figure:
    rows: list[dict[str, Any]] = data["results"]
    groups = [f"{r['shape']} {r['nodes']}" for r in rows]
    fig, (per_node, overhead) = _figure(1, 2, width=13)
    _grouped(
        per_node,
        groups,
        {
            "UZO": [float(r["uzo_ms_per_node"]) for r in rows],
            "raw Ray": [float(r["raw_ms_per_node"]) for r in rows],
        },
        "ms per node",
    )
    per_node.set_title("time per node", fontsize=10)
    _grouped(
        overhead,
        groups,
        {"UZO - raw": [float(r["overhead_ms_per_node"]) for r in rows]},
        "ms per node",
    )
    goal = data.get("goals", {}).get("overhead_ms_per_node_max")
    if goal is not None:
        overhead.axhline(float(goal), color="red", linestyle="--", label=f"goal {goal} ms")
        overhead.legend(fontsize=8)
    overhead.set_title("overhead above raw Ray actor calls", fontsize=10)
    fig.suptitle("overhead: orchestration cost per node")
    return fig


def plot_preview(data: dict[str, Any]) -> Figure:
    samples: dict[str, dict[str, Any]] = data["samples"]
    fig, axes = _figure(1, len(samples), width=6.5 * len(samples))
    goal = data.get("goals", {}).get("p50_ms_max")
    for ax, (key, sample) in zip(axes, samples.items(), strict=True):
        scenarios: dict[str, dict[str, Any]] = sample["scenarios"]
        names = list(scenarios)
        _grouped(
            ax,
            names,
            {
                "p50": [float(scenarios[n]["total"]["p50_ms"]) for n in names],
                "p95": [float(scenarios[n]["total"]["p95_ms"]) for n in names],
            },
            "ms (compile + preview)",
            log=True,
        )
        if goal is not None:
            ax.axhline(float(goal), color="red", linestyle="--", label=f"goal p50 {goal:g} ms")
            ax.legend(fontsize=8)
        ax.set_title(
            f"{key}: {sample.get('sampled_join_rows', '?')} join rows, limit "
            f"{data.get('limit', '?')}",
            fontsize=10,
        )
    fig.suptitle(f"preview latency of {data.get('node', '?')} (TPC-H Q3)")
    return fig


def plot_connectors_pg(data: dict[str, Any]) -> Figure:
    cases: dict[str, dict[str, Any]] = data["cases"]
    names = list(cases)
    fig, (times, memory) = _figure(1, 2, width=13)
    _hbars(times, names, [float(cases[n]["seconds"]) for n in names], "seconds")
    times.set_title(f"{data.get('rows', '?')} rows x {data.get('columns', '?')} columns")
    _hbars(
        memory,
        names,
        [float(cases[n].get("peak_rss_delta_bytes", 0)) / 2**20 for n in names],
        "peak RSS growth (MiB)",
    )
    fig.suptitle("connectors_pg: PostgreSQL read/write through the connector")
    return fig


def plot_connectors_s3(data: dict[str, Any]) -> Figure:
    results: dict[str, dict[str, Any]] = data["results"]
    names = list(results)
    fig, (ax,) = _figure(width=9, height=3.5)
    _hbars(ax, names, [float(results[n]["median_s"]) for n in names], "seconds (median)")
    ax.set_title(f"Parquet from S3 (moto): {data.get('rows', '?')} rows", fontsize=10)
    return fig


def plot_api(data: dict[str, Any]) -> Figure:
    goals = data.get("goals", {})
    sweeps: list[dict[str, Any]] = data.get("sweeps") or [{"workers": 1, "rates": data["rates"]}]
    fig, (latency, throughput) = _figure(1, 2, width=13)
    offered: set[float] = set()
    for sweep in sweeps:
        rows: list[dict[str, Any]] = sweep["rates"]
        rates = [float(r["target_rps"]) for r in rows]
        offered.update(rates)
        name = f"{sweep['workers']} proc"
        for section, key, style in (
            ("reads", "p50_ms", "-"),
            ("reads", "p95_ms", "-"),
            ("saves", "p95_ms", "--"),
        ):
            latency.plot(
                rates,
                [r[section].get(key) for r in rows],
                style,
                marker="o" if section == "reads" else "s",
                label=f"{name}: {section} {key.removesuffix('_ms')}",
            )
        throughput.plot(
            rates, [r["throughput_rps"] for r in rows], marker="o", label=f"{name}: 2xx answered"
        )
        throughput.bar(
            rates, [r["errors"] for r in rows], width=15, alpha=0.5, label=f"{name}: errors"
        )
    for goal, color, label in (
        (goals.get("read_p95_ms_max"), "green", "read p95 goal"),
        (goals.get("save_p95_ms_max"), "orange", "save p95 goal"),
        (goals.get("max_rate_read_p95_ms"), "red", "100 ms"),
    ):
        if goal is not None:
            latency.axhline(float(goal), color=color, linestyle="--", linewidth=0.8, label=label)
    latency.set_yscale("log")
    latency.set_xlabel("target rate (requests/s, open loop)")
    latency.set_ylabel("ms from the scheduled send time")
    latency.legend(fontsize=7)
    latency.set_title("latency by rate", fontsize=10)
    axis = sorted(offered)
    throughput.plot(axis, axis, color="grey", linestyle=":", label="offered")
    throughput.set_xlabel("target rate (requests/s)")
    throughput.set_ylabel("requests/s (errors: count)")
    throughput.legend(fontsize=7)
    throughput.set_title("throughput and errors", fontsize=10)
    seed = data.get("seed", {})
    fig.suptitle(
        f"api: {seed.get('workflows', '?'):,} workflows, {seed.get('folders', '?')} folders, "
        f"{seed.get('users', '?')} users; decision p95 "
        f"{data.get('permission_decision', {}).get('decide', {}).get('p95_ms', '?')} ms"
    )
    return fig


def plot_audit(data: dict[str, Any]) -> Figure:
    """Save latency with audit on and off (p50, p95); ingestion rows/s against the goal."""
    fig, (left, right) = _figure(1, 2)
    kinds = [k for k, v in data["saves"].items() if "audit_on" in v]
    series = {
        f"{stat} audit {mode}": [data["saves"][k][f"audit_{mode}"][f"{stat}_ms"] for k in kinds]
        for stat in ("p50", "p95")
        for mode in ("on", "off")
    }
    _grouped(left, [f"{k} save" for k in kinds], series, "ms")
    left.set_title("Save latency, audit on vs off (same run)", fontsize=10)
    tables = list(data["ingestion"])
    _hbars(right, tables, [data["ingestion"][t]["rows_per_s"] for t in tables], "rows/s")
    goal = data.get("goals", {}).get("ingest_rows_per_s_min")
    if goal:
        right.axvline(goal, color="#C44E52", linestyle="--", linewidth=1, label="goal")
        right.legend(fontsize=8)
    right.set_title("Log ingestion through the batch writer", fontsize=10)
    return fig


def plot_mirror(data: dict[str, Any]) -> Figure:
    """CPU per run by process with the Prefect mirror on and off; runs/s and mirror lag."""
    rows: list[dict[str, Any]] = data["results"]
    groups = [f"{r['shape']}, mirror {r['mirror']}" for r in rows]
    parts = ("mirror_thread", "driver", "prefect_server", "ray")
    fig, (cpu, rate) = _figure(1, 2, width=13)
    _grouped(
        cpu,
        groups,
        {part: [float(r["cpu_ms_per_run"][part]) for r in rows] for part in parts},
        "CPU ms per run",
        log=True,
    )
    goal = data.get("goals", {}).get("mirror_cpu_ms_per_run_max")
    if goal is not None:
        cpu.axhline(float(goal), color="red", linestyle="--", label=f"goal {goal} ms (mirror)")
        cpu.legend(fontsize=7)
    cpu.set_title("CPU per run (the mirror thread is part of the driver)", fontsize=10)
    labels = [
        f"{g}" + (f" (lag p95 {r['lag_s']['p95']:.2f} s)" if "lag_s" in r else "")
        for g, r in zip(groups, rows, strict=True)
    ]
    _hbars(rate, labels, [float(r["runs_per_s"]) for r in rows], "runs/s, back to back")
    rate.set_title("throughput", fontsize=10)
    fig.suptitle(f"mirror: {data.get('runs_per_phase', '?')} runs per phase, back to back")
    return fig


def plot_cli_progress(data: dict[str, Any]) -> Figure:
    """Seconds per run: the engine alone, with a counting sink, with the CLI's progress."""
    rows: list[dict[str, Any]] = data["results"]
    fig, (ax,) = _figure(width=9)
    modes = {"engine": "engine alone", "events": "counting sink", "cli": "CLI progress (live)"}
    _grouped(
        ax,
        [f"{r['runtime']} (cli {r['cli_over_engine']:.2f}x)" for r in rows],
        {label: [float(r[f"{m}_s"]) for r in rows] for m, label in modes.items()},
        "s per run (median)",
    )
    ax.set_title(f"uzo run progress: fan-out of {data.get('nodes', '?'):,} nodes", fontsize=10)
    return fig


def _numeric_leaves(value: Any, prefix: str = "") -> list[tuple[str, float]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [(prefix or "value", float(value))]
    found: list[tuple[str, float]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in _SKIP_KEYS:
                found.extend(_numeric_leaves(item, f"{prefix}/{key}" if prefix else str(key)))
    elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
        for i, item in enumerate(value):
            found.extend(_numeric_leaves(item, f"{prefix}[{i}]"))
    return found  # lists of numbers (raw samples) are left out


def plot_generic(data: dict[str, Any]) -> Figure:
    rows = data.get("rows")
    if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
        if all("label" in r and "value" in r for r in rows):
            pairs = [(str(r["label"]), float(r["value"])) for r in rows]
        else:
            pairs = _numeric_leaves(rows)
    else:
        pairs = _numeric_leaves(data.get("results", data))
    if not pairs:
        raise ValueError("no numeric values to chart")
    pairs = pairs[:MAX_GENERIC_BARS]
    fig, (ax,) = _figure(width=10, height=max(3.0, 0.28 * len(pairs) + 1))
    _hbars(ax, [p[0] for p in pairs], [p[1] for p in pairs], str(data.get("unit", "value")))
    ax.set_title(str(data.get("benchmark", "")), fontsize=10)
    return fig


PLOTTERS: dict[str, Callable[[dict[str, Any]], Figure]] = {
    "tpch": plot_tpch,
    "overhead": plot_overhead,
    "preview": plot_preview,
    "connectors_pg": plot_connectors_pg,
    "connectors_s3": plot_connectors_s3,
    "api": plot_api,
    "audit": plot_audit,
    "mirror": plot_mirror,
    "cli_progress": plot_cli_progress,
}


def write_chart(name: str, results_dir: Path = RESULTS_DIR) -> Path | None:
    """Draw ``<name>.json`` into ``<name>.png``; None when there is no JSON.

    A JSON whose shape the benchmark's plotter does not expect falls back to the
    generic chart.
    """
    import matplotlib.pyplot as plt

    source = results_dir / f"{name}.json"
    if not source.exists():
        return None
    data = json.loads(source.read_text())
    if not isinstance(data, dict):
        data = {"results": data}
    plotter = PLOTTERS.get(name, plot_generic)
    try:
        fig = plotter(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        if plotter is plot_generic:
            raise
        plt.close("all")
        fig = plot_generic(data)
    target = results_dir / f"{name}.png"
    try:
        fig.savefig(target, dpi=110)
    finally:
        plt.close(fig)
    return target
