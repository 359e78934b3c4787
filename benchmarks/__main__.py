"""Run every benchmark module: ``python -m benchmarks [name ...]``.

A benchmark is a module ``benchmarks/bench_<name>.py`` with a ``main()``
function; it writes its results under ``benchmarks/results/<name>.json``. Several
benchmarks run one after the other, each in a process of its own. After
each benchmark the runner draws ``benchmarks/results/<name>.png`` from that JSON
(``benchmarks/charts.py``). ``--charts-only`` redraws the charts from the JSON
already there, without running anything. ``--quick`` sets ``UZO_BENCH_QUICK=1``
(for the benchmark processes too): a benchmark that knows it runs a small smoke
version of itself.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import time
from pathlib import Path


def discover() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules([str(here)])
        if info.name.startswith("bench_")
    )


def chart(name: str) -> None:
    """Draw the benchmark's PNG; a chart that fails is reported, never fatal."""
    from benchmarks.charts import write_chart

    try:
        target = write_chart(name)
    except Exception as e:
        print(f"== {name}: no chart ({type(e).__name__}: {e})")
        return
    if target is None:
        print(f"== {name}: no chart (no results/{name}.json)")
    else:
        print(f"== {name}: chart {target}")


def main(argv: list[str]) -> int:
    charts_only = "--charts-only" in argv
    if "--quick" in argv:
        os.environ["UZO_BENCH_QUICK"] = "1"
    argv = [a for a in argv if a not in ("--charts-only", "--quick")]
    available = discover()
    unknown = sorted(set(argv) - set(available))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}")
        return 2
    selected = argv or available
    if not selected:
        print("no benchmarks yet (add benchmarks/bench_<name>.py with a main() function)")
        return 0
    if charts_only:
        for name in selected:
            chart(name)
        return 0
    if len(selected) > 1:
        # one process per benchmark: each starts (and stops) its own Ray cluster and
        # servers, and a process cannot start Ray again once it has shut it down
        failed = []
        for name in selected:
            done = subprocess.run([sys.executable, "-m", "benchmarks", name], check=False)
            if done.returncode != 0:
                failed.append(name)
        if failed:
            print(f"failed: {', '.join(failed)}")
        return 1 if failed else 0
    (name,) = selected
    start = time.perf_counter()
    print(f"== {name}", flush=True)
    importlib.import_module(f"benchmarks.bench_{name}").main()
    print(f"== {name}: {time.perf_counter() - start:.1f}s")
    chart(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
