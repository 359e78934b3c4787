"""The ``cli_progress`` benchmark end to end at a toy size, so that it keeps working: checks
the result file's shape (what the chart and the README read), no timing. The in-process
runtime only: the Ray runtime's path differs in the runner alone."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from benchmarks.bench_cli_progress import MODES, Config, run
from benchmarks.charts import write_chart
from uzo_engine.cli.progress import TABLE_ROWS

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_tiny_cli_progress_benchmark_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "cli_progress.json"
    run(Config(nodes=300, repeats=1, runtimes=("local",), results=out, quick=True))
    report = json.loads(out.read_text())
    assert {"results", "verdict", "goals", "machine", "nodes", "repeats"} <= set(report)
    (row,) = report["results"]
    assert row["runtime"] == "local"
    for mode in MODES:
        assert row[f"{mode}_s"] > 0
        assert len(row["samples_s"][mode]) == 1
    assert row["cli_over_engine"] > 0
    assert row["cli_events"] >= 2 * 300  # the reporter saw the real events
    assert row["cli_final_table_rows"] == TABLE_ROWS  # capped: 300 steps
    assert max(row["cli_live_renders"]) >= 1  # the live path really drew
    assert set(report["verdict"]) == {"local"}
    assert write_chart("cli_progress", tmp_path) == tmp_path / "cli_progress.png"
