"""Run every benchmark module: ``python -m benchmarks [name ...]``.

A benchmark is a module ``benchmarks/bench_<name>.py`` with a ``main()``
function; it writes its results under ``benchmarks/results/``.
"""

from __future__ import annotations

import importlib
import pkgutil
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


def main(argv: list[str]) -> int:
    available = discover()
    unknown = sorted(set(argv) - set(available))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}")
        return 2
    selected = argv or available
    if not selected:
        print("no benchmarks yet (add benchmarks/bench_<name>.py with a main() function)")
        return 0
    for name in selected:
        start = time.perf_counter()
        print(f"== {name}")
        importlib.import_module(f"benchmarks.bench_{name}").main()
        print(f"== {name}: {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
