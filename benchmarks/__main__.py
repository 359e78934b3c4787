"""Run every benchmark module: ``python -m benchmarks [name ...]``.

A benchmark is a module ``benchmarks/bench_<name>.py`` with a ``main()``
function; it writes its results under ``benchmarks/results/<name>.json``. Several
benchmarks run one after the other, each in a process of its own. After
each benchmark the runner draws ``benchmarks/results/<name>.png`` from that JSON
(``benchmarks/charts.py``). ``--charts-only`` redraws the charts from the JSON
already there, without running anything. ``--quick`` sets ``UZO_BENCH_QUICK=1``
(for the benchmark processes too): a benchmark that knows it runs a small smoke
version of itself. ``--help`` lists the benchmarks, one line each (the first line of
the module's docstring, read without importing it), and the flags.
"""

from __future__ import annotations

import ast
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


FLAGS = {
    "--quick": "run a small smoke version of each benchmark (sets UZO_BENCH_QUICK=1)",
    "--charts-only": "redraw results/<name>.png from the JSON already there, run nothing",
    "--help": "show this message and exit",
}


def summary(name: str) -> str:
    """The first line of ``bench_<name>.py``'s docstring, parsed, not imported: importing
    a benchmark may pull in Ray, pgserver or moto, too much for a listing."""
    source = (Path(__file__).parent / f"bench_{name}.py").read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source)) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else "(no description)"
    return first.replace("``", "")


def usage() -> str:
    names = discover()
    width = max((len(n) for n in [*names, *FLAGS]), default=0)
    lines = [
        "usage: python -m benchmarks [--quick] [--charts-only] [name ...]",
        "",
        "Runs the named benchmarks (all by default), each in a process of its own;",
        "results go to benchmarks/results/<name>.json and <name>.png.",
        "",
        "benchmarks:",
        *(f"  {n:<{width}}  {summary(n)}" for n in names),
        "",
        "flags:",
        *(f"  {f:<{width}}  {text}" for f, text in FLAGS.items()),
    ]
    return "\n".join(lines)


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
    if "--help" in argv or "-h" in argv:
        print(usage())
        return 0
    flags = [a for a in argv if a.startswith("-") and a not in FLAGS]
    if flags:
        print(f"unknown flag(s): {', '.join(flags)}; see python -m benchmarks --help")
        return 2
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
