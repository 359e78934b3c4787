"""The concurrency benchmark runs end to end in its quick form and writes its result file
(the shape the chart and the README read). No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_quick_concurrency_benchmark_writes_its_results(tmp_path: Path) -> None:
    results = ROOT / "benchmarks" / "results" / "concurrency.json"
    kept = results.read_bytes() if results.exists() else None
    env = {
        **os.environ,
        "UZO_BENCH_QUICK": "1",
        "UZO_BENCH_CONCURRENCY_IO_RUNS": "20",
        "UZO_BENCH_CONCURRENCY_CPU_RUNS": "4",
        "UZO_RAY_NUM_CPUS": "2",
        "UZO_HOME": str(tmp_path / "home"),
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks", "concurrency"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        report = json.loads(results.read_text())
    finally:
        if kept is not None:
            results.write_bytes(kept)
    io, cpu = report["io_bound"], report["cpu_bound"]
    assert io["runs"] == 20
    assert io["failed"] == 0, io["first_failure"]
    assert io["driver_threads_max"] >= io["driver_threads_before"]
    assert cpu["runs"] == 4
    assert cpu["failed"] == 0
    assert cpu["concurrent_max_run_s"] >= cpu["concurrent_median_run_s"] > 0
