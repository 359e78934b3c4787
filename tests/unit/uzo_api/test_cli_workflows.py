"""`uzo schema | validate | run --local | preview --local` in-process (typer's runner)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from typer.testing import CliRunner

from uzo_api.cli import app

if TYPE_CHECKING:
    from pathlib import Path

runner = CliRunner()


def _workflow(condition: str = "amount > 5", func: str = "sum") -> dict[str, Any]:
    def node(node_id: str, node_type: str, config: dict[str, Any], x: int) -> dict[str, Any]:
        return {
            "id": node_id,
            "type": "default",
            "position": {"x": x, "y": 0},
            "data": {"nodeType": node_type, "config": config},
        }

    return {
        "nodes": [
            node(
                "src",
                "values",
                {
                    "rows": [
                        {"id": 1, "amount": 10.5, "region": "eu"},
                        {"id": 2, "amount": 3.0, "region": "us"},
                        {"id": 3, "amount": 7.25, "region": "eu"},
                    ]
                },
                0,
            ),
            node("big", "filter", {"condition": condition}, 200),
            node(
                "agg",
                "aggregate",
                {
                    "group_by": ["region"],
                    "aggregations": [{"column": "amount", "func": func, "alias": "total"}],
                },
                400,
            ),
        ],
        "edges": [
            {"id": "e1", "source": "src", "target": "big"},
            {"id": "e2", "source": "big", "target": "agg"},
        ],
        "viewport": {"x": 0, "y": 0, "zoom": 1},
    }


def _write(tmp_path: Path, doc: dict[str, Any]) -> str:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_schema_is_json(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["title"] == "UZO workflow"
    types = json.loads(runner.invoke(app, ["schema", "--node-types"]).stdout)
    assert {"filter", "aggregate", "join", "sql"} <= set(types)


def test_validate_ok_and_errors(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["validate", _write(tmp_path, _workflow())])
    assert ok.exit_code == 0, ok.stdout
    assert "valid" in ok.stdout
    bad = runner.invoke(app, ["validate", _write(tmp_path, _workflow(condition="nope > 1"))])
    assert bad.exit_code == 1
    assert "big" in bad.stdout
    assert "nope" in bad.stdout


def test_run_local_shows_progress_and_fails_loudly(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["run", "--local", _write(tmp_path, _workflow())])
    assert ok.exit_code == 0, ok.stdout
    assert "succeeded" in ok.stdout
    assert "3/3 nodes done" in ok.stdout
    # a runtime failure: casting text to a number
    doc = _workflow()
    doc["nodes"][1]["data"] = {"nodeType": "cast", "config": {"columns": {"region": "int64"}}}
    failed = runner.invoke(app, ["run", "--local", _write(tmp_path, doc)])
    assert failed.exit_code == 1
    assert "failed" in failed.stdout


def test_preview_local(tmp_path: Path) -> None:
    result = runner.invoke(app, ["preview", "--local", _write(tmp_path, _workflow()), "agg"])
    assert result.exit_code == 0, result.stdout
    assert "17.75" in result.stdout
    missing = runner.invoke(app, ["preview", "--local", _write(tmp_path, _workflow()), "zzz"])
    assert missing.exit_code == 2
