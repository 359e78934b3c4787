"""The ``mirror`` benchmark end to end at a toy size, so that it keeps working: checks the
result file's shape (what the chart and the README read), no timing. It runs in a process
of its own: the benchmark starts and stops its own Ray cluster and Prefect server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.charts import write_chart

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_mirror_benchmark_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "mirror.json"
    code = (
        "from pathlib import Path\n"
        "from benchmarks.bench_mirror import Config, run\n"
        f"run(Config(runs=3, results=Path({str(out)!r}), quick=True))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UZO_", "RAY_", "PREFECT_"))}
    env["UZO_RAY_OBJECT_STORE_MB"] = "300"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {"results", "verdict", "goals", "machine", "runs_per_phase"} <= set(report)
    rows = report["results"]
    assert [(r["shape"], r["mirror"]) for r in rows] == [
        ("1 step", "off"), ("1 step", "on"), ("5 steps", "off"), ("5 steps", "on"),
    ]  # fmt: skip
    for row in rows:
        assert row["runs"] == 3
        assert set(row["cpu_ms_per_run"]) == {"driver", "mirror_thread", "prefect_server", "ray"}
        if row["mirror"] == "on":
            assert row["flow_runs_completed"] == 3  # every run's flow run was written
            assert {"p50", "p95", "max"} <= set(row["lag_s"])
    assert set(report["verdict"]) == {"1 step", "5 steps"}
    assert write_chart("mirror", tmp_path) == tmp_path / "mirror.png"
