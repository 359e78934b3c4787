"""``python -m benchmarks.tpch_data``: the examples' four TPC-H tables, or all eight."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest

from benchmarks import tpch_data as tpch

if TYPE_CHECKING:
    from pathlib import Path

# rows at scale factor 0.01; region and nation are fixed, the others scale
ROWS = {"region": 5, "nation": 25, "supplier": 100, "part": 2_000, "partsupp": 8_000}


def test_all_generates_the_eight_tables_and_keeps_those_already_there(tmp_path: Path) -> None:
    out = tmp_path / "tpch"
    tpch.ensure_data(out, scale=0.01, tables=("nation", "region"))
    region_made = (out / "region.parquet").stat().st_mtime_ns
    done = tpch.main(["--scale", "0.01", "--output-dir", str(out), "--all"])
    assert done == 0
    assert set(tpch.ALL_TABLES) == {
        "lineitem", "orders", "customer", "nation", "partsupp", "part", "supplier", "region",
    }  # fmt: skip
    for table in tpch.ALL_TABLES:
        assert (out / f"{table}.parquet").exists(), table
    for table, rows in ROWS.items():
        assert pq.read_metadata(out / f"{table}.parquet").num_rows == rows, table
    assert (out / "region.parquet").stat().st_mtime_ns == region_made  # not generated again
    marker = json.loads((out / ".uzo-tpch.json").read_text())
    assert marker == {"scale": 0.01, "tables": list(tpch.ALL_TABLES)}


def test_the_default_is_the_examples_tables(tmp_path: Path) -> None:
    out = tpch.ensure_data(tmp_path / "t", scale=0.01, tables=("region",))
    assert sorted(p.name for p in out.glob("*.parquet")) == ["region.parquet"]
    assert tpch.TABLES == ("lineitem", "orders", "customer", "nation")
    with pytest.raises(ValueError, match="not TPC-H tables: regions"):
        tpch.ensure_data(tmp_path / "t", scale=0.01, tables=("regions",))


def test_help_documents_all_and_tables() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.tpch_data", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--all" in done.stdout
    assert "all eight tables" in done.stdout
    assert "--tables" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "benchmarks.tpch_data", "--tables", "part,bogus"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "--tables: not TPC-H tables: bogus" in bad.stderr
