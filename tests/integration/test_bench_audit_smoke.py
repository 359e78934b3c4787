"""The ``audit`` benchmark end to end at a toy size, so that it keeps working: checks
the result file's shape (what the chart and the README read), no timing."""

from __future__ import annotations

import importlib.util
import json
from typing import TYPE_CHECKING

import pytest

from benchmarks.bench_audit import Config, run
from benchmarks.charts import write_chart

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("pgserver") is None, reason="needs the embedded PostgreSQL"
    ),
]


def test_tiny_audit_benchmark_writes_its_report(tmp_path: Path) -> None:
    cfg = Config(saves=6, block=3, rows=1_000, tenants=2, enqueue_calls=500,
                 results=tmp_path / "audit.json", quick=True)  # fmt: skip
    run(cfg)
    report = json.loads((tmp_path / "audit.json").read_text())
    assert {"saves", "server_log_enqueue", "ingestion", "verdict", "goals", "machine"} <= set(
        report
    )
    for kind in ("workflow", "connector"):
        save = report["saves"][kind]
        for mode in ("audit_on", "audit_off"):
            assert save[mode]["count"] == 6
            assert {"p50_ms", "p95_ms", "p99_ms"} <= set(save[mode])
        assert save["audit_rows_per_save"]["off"] == 0  # the switch really switches off
    assert report["saves"]["connector"]["audit_rows_per_save"]["on"] == 1
    assert {"added_p50_ms", "added_p95_ms"} <= set(report["saves"]["workflow_audit_statement"])
    for table in ("server_logs", "execution_logs"):
        ingest = report["ingestion"][table]
        assert ingest["written"] == ingest["rows"] == 1_000
        assert (ingest["dropped"], ingest["failed"]) == (0, 0)
        assert ingest["rows_per_s"] > 0
    assert report["server_log_enqueue"]["per_request_us"] > 0
    assert set(report["verdict"]) == {
        "added_save_p95_ms",
        "added_save_p95_ok",
        "ingest_rows_per_s",
        "ingest_ok",
    }
    assert write_chart("audit", tmp_path) == tmp_path / "audit.png"
