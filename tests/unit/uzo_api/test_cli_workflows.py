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
    # errors go to stderr, never to stdout
    assert "big" in bad.stderr
    assert "nope" in bad.stderr
    assert bad.stdout == ""


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


# -- --json: one document on stdout, errors included, same exit codes -------------------------

_ISSUE_KEYS = {"code", "message", "node_id", "edge_id", "field", "column"}


def _json(result: Any) -> dict[str, Any]:
    doc = json.loads(result.stdout)  # the whole of stdout is one document
    assert isinstance(doc, dict)
    return doc


def test_validate_json_ok(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", "--json", _write(tmp_path, _workflow())])
    assert result.exit_code == 0, result.stderr
    doc = _json(result)
    assert doc["ok"] is True
    assert doc["errors"] == []
    assert (doc["node_count"], doc["edge_count"]) == (3, 2)


def test_validate_json_reports_each_error_with_its_node_and_exit_code_1(tmp_path: Path) -> None:
    path = _write(tmp_path, _workflow(condition="nope > 1", func="median_of_nothing"))
    result = runner.invoke(app, ["validate", "--json", path])
    assert result.exit_code == 1
    doc = _json(result)
    assert doc["ok"] is False
    assert doc["path"] == path
    assert doc["errors"], doc
    assert all(set(e) == _ISSUE_KEYS for e in doc["errors"])
    by_node = {e["node_id"]: e for e in doc["errors"]}
    assert "nope" in by_node["big"]["message"]
    assert "agg" in by_node
    assert result.stderr == ""  # nothing for people: the document has it all


def test_validate_json_unusable_file_is_a_json_error_with_exit_code_2(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["validate", "--json", str(tmp_path / "absent.json")])
    assert missing.exit_code == 2
    assert _json(missing)["errors"][0]["code"] == "file_not_found"
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    bad = runner.invoke(app, ["validate", "--json", str(broken)])
    assert bad.exit_code == 2
    doc = _json(bad)
    assert doc["ok"] is False
    assert doc["errors"][0]["code"] == "invalid_json"
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    assert _json(runner.invoke(app, ["validate", "--json", str(listed)]))["errors"][0]["code"] == (
        "not_an_object"
    )


def test_unusable_file_without_json_errs_on_stderr_only(tmp_path: Path) -> None:
    for command in (["validate"], ["run", "--local"], ["preview", "--local"]):
        args = [*command, str(tmp_path / "absent.json")] + (["n"] if "preview" in command else [])
        result = runner.invoke(app, args)
        assert result.exit_code == 2, command
        assert result.stdout == "", command
        assert "no such file" in result.stderr, command


def test_run_json_gives_every_node_and_the_overall_status(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--local", "--json", _write(tmp_path, _workflow())])
    assert result.exit_code == 0, result.stderr
    doc = _json(result)
    assert (doc["ok"], doc["status"], doc["runtime"]) == (True, "succeeded", "local")
    assert doc["errors"] == []
    assert doc["duration_ms"] > 0
    nodes = {n["node_id"]: n for n in doc["nodes"]}
    assert list(nodes) == ["src", "big", "agg"]
    assert {n["status"] for n in nodes.values()} == {"succeeded"}
    # the three nodes are fused into one step: inner counts are unknown (null), never -1
    assert nodes["agg"]["rows_out"] == 1
    assert all(n["rows_out"] is None or n["rows_out"] >= 0 for n in nodes.values())
    assert all(n["error"] is None for n in nodes.values())


def test_run_json_failure_names_the_node_and_exits_1(tmp_path: Path) -> None:
    doc = _workflow()
    doc["nodes"][1]["data"] = {"nodeType": "cast", "config": {"columns": {"region": "int64"}}}
    result = runner.invoke(app, ["run", "--local", "--json", _write(tmp_path, doc)])
    assert result.exit_code == 1
    out = _json(result)
    assert (out["ok"], out["status"]) == (False, "failed")
    failed = [e for e in out["errors"] if e["code"] == "node_failed"]
    assert [e["node_id"] for e in failed] == ["big"]
    nodes = {n["node_id"]: n for n in out["nodes"]}
    assert nodes["big"]["status"] == "failed"
    assert nodes["big"]["error"]
    assert nodes["agg"]["status"] != "succeeded"


def test_run_json_invalid_workflow_has_the_run_document_shape(tmp_path: Path) -> None:
    path = _write(tmp_path, _workflow(condition="nope > 1"))
    result = runner.invoke(app, ["run", "--local", "--json", path])
    assert result.exit_code == 1
    doc = _json(result)
    assert doc["ok"] is False
    assert doc["status"] is None
    assert doc["nodes"] == []
    assert doc["errors"][0]["node_id"] == "big"


def test_run_human_failure_prints_the_error_on_stderr(tmp_path: Path) -> None:
    doc = _workflow()
    doc["nodes"][1]["data"] = {"nodeType": "cast", "config": {"columns": {"region": "int64"}}}
    failed = runner.invoke(app, ["run", "--local", _write(tmp_path, doc)])
    assert failed.exit_code == 1
    assert "error:" in failed.stderr
    assert "error:" not in failed.stdout


def test_preview_json_columns_types_and_rows(tmp_path: Path) -> None:
    path = _write(tmp_path, _workflow())
    result = runner.invoke(app, ["preview", "--local", "--json", path, "agg"])
    assert result.exit_code == 0, result.stderr
    doc = _json(result)
    assert doc["ok"] is True
    assert doc["node_id"] == "agg"
    assert [c["name"] for c in doc["columns"]] == ["region", "total"]
    assert all(isinstance(c["type"], str) and c["type"] for c in doc["columns"])
    assert doc["rows"] == [{"region": "eu", "total": 17.75}]
    limited = _json(
        runner.invoke(app, ["preview", "--local", "--json", "--limit", "1", path, "src"])
    )
    assert limited["rows"] == [{"id": 1, "amount": 10.5, "region": "eu"}]


def test_preview_json_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, _workflow())
    missing = runner.invoke(app, ["preview", "--local", "--json", path, "zzz"])
    assert missing.exit_code == 2
    doc = _json(missing)
    assert doc["ok"] is False
    assert doc["errors"][0]["code"] == "unknown_node"
    assert doc["errors"][0]["node_id"] == "zzz"
    assert doc["rows"] == []
    human = runner.invoke(app, ["preview", "--local", path, "zzz"])
    assert human.exit_code == 2
    assert "zzz" in human.stderr
    assert human.stdout == ""
    broken = _workflow()
    broken["nodes"][1]["data"] = {"nodeType": "cast", "config": {"columns": {"region": "int64"}}}
    failed = runner.invoke(app, ["preview", "--local", "--json", _write(tmp_path, broken), "agg"])
    assert failed.exit_code == 1
    assert _json(failed)["errors"][0]["code"] == "run_failed"


def test_json_command_line_errors_are_a_json_document_too(tmp_path: Path) -> None:
    path = _write(tmp_path, _workflow())
    missing_arg = runner.invoke(app, ["preview", "--local", "--json", path])
    bad_value = runner.invoke(app, ["preview", "--json", "--limit", "0", path, "agg"])
    for result in (missing_arg, bad_value):
        assert result.exit_code == 2
        doc = _json(result)
        assert doc["ok"] is False
        assert doc["errors"][0]["code"] == "usage_error"
    assert "node_id" in missing_arg.stdout
    assert "--limit" in bad_value.stdout
    human = runner.invoke(app, ["preview", "--local", path])
    assert human.exit_code == 2
    assert human.stdout == ""
