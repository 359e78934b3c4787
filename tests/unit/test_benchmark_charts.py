"""The benchmark runner's charts: per-benchmark plotters and the generic fallback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks import charts

RESULTS = Path(charts.__file__).parent / "results"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", sorted(p.stem for p in RESULTS.glob("*.json")))
def test_every_kept_result_gets_a_chart(name: str, tmp_path: Path) -> None:
    shutil.copy(RESULTS / f"{name}.json", tmp_path / f"{name}.json")
    target = charts.write_chart(name, tmp_path)
    assert target == tmp_path / f"{name}.png"
    assert target.read_bytes().startswith(PNG_MAGIC)


def test_generic_rows_label_value(tmp_path: Path) -> None:
    rows = [{"label": "a", "value": 1.5}, {"label": "b", "value": 3}]
    (tmp_path / "new.json").write_text(json.dumps({"benchmark": "new", "rows": rows}))
    target = charts.write_chart("new", tmp_path)
    assert target is not None
    assert target.read_bytes().startswith(PNG_MAGIC)


def test_unexpected_shape_falls_back_to_the_generic_chart(tmp_path: Path) -> None:
    data = {"results": {"x": {"seconds": 1.0, "flag": True}, "y": [{"ms": 2}]}, "machine": {}}
    (tmp_path / "tpch.json").write_text(json.dumps(data))  # not tpch's shape
    target = charts.write_chart("tpch", tmp_path)
    assert target is not None
    assert target.read_bytes().startswith(PNG_MAGIC)
    assert charts._numeric_leaves(data["results"]) == [("x/seconds", 1.0), ("y[0]/ms", 2.0)]


def test_missing_json_or_nothing_numeric(tmp_path: Path) -> None:
    assert charts.write_chart("absent", tmp_path) is None
    (tmp_path / "empty.json").write_text(json.dumps({"results": {"note": "text only"}}))
    with pytest.raises(ValueError, match="no numeric values"):
        charts.write_chart("empty", tmp_path)
