"""`uzo validate` / `uzo run` on the fault-injection inputs, through the installed entry
point: a one-line (or one-row) error and exit code, never a traceback."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

UZO = str(Path(sys.executable).with_name("uzo"))


def _uzo(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UZO_")}
    env["UZO_HOME"] = str(home)
    result = subprocess.run(
        [UZO, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stdout + result.stderr
    assert "RecursionError" not in result.stdout + result.stderr
    return result


def _node(node_id: str, node_type: str, **config: Any) -> dict[str, Any]:
    data = {"nodeType": node_type, "config": config}
    return {"id": node_id, "type": "default", "position": {"x": 0, "y": 0}, "data": data}


def _line(*nodes: dict[str, Any]) -> dict[str, Any]:
    edges = [
        {"id": f"e{i}", "source": a["id"], "target": b["id"]}
        for i, (a, b) in enumerate(itertools.pairwise(nodes))
    ]
    return {"nodes": list(nodes), "edges": edges, "viewport": {"x": 0, "y": 0, "zoom": 1}}


def _source() -> dict[str, Any]:
    return _node("src", "values", rows=[{"id": 1, "amount": 2.5}])


def _write(path: Path, doc: dict[str, Any]) -> str:
    path.write_text(json.dumps(doc))
    return str(path)


def test_a_latin1_file_is_one_line_naming_the_file_and_the_offset(tmp_path: Path) -> None:
    doc = _line(_source(), _node("café", "filter", condition="amount > 1"))
    data = json.dumps(doc, ensure_ascii=False).encode("latin-1")
    path = tmp_path / "latin1.json"
    path.write_bytes(data)
    offset = data.index(b"\xe9")
    result = _uzo("validate", str(path), home=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {path} is not UTF-8 JSON: byte 0xe9 at offset {offset} (invalid continuation byte)"
    ]


@pytest.mark.parametrize("command", [["validate"], ["run", "--local"]])
def test_100000_nested_arrays_are_nested_too_deeply(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "nested.json"
    path.write_text("[" * 100_000)
    result = _uzo(*command, str(path), home=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {path} is nested too deeply: more than 100 levels of arrays and objects"
        " (at character 100)"
    ]


def test_a_chain_of_2000_nodes_validates(tmp_path: Path) -> None:
    filters = [_node(f"n{i}", "filter", condition="amount > 1") for i in range(2_000)]
    path = _write(tmp_path / "chain.json", _line(_source(), *filters))
    result = _uzo("validate", "--json", path, home=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["ok"], doc["node_count"], doc["edge_count"]) == (True, 2_001, 2_000)


def test_5000_nested_parentheses_are_one_error_of_the_node_and_field(tmp_path: Path) -> None:
    deep = "(" * 5_000 + "amount" + ")" * 5_000 + " > 1"
    path = _write(tmp_path / "deep.json", _line(_source(), _node("f", "filter", condition=deep)))
    result = _uzo("validate", "--json", path, home=tmp_path)
    assert result.returncode == 1
    [error] = json.loads(result.stdout)["errors"]
    assert (error["code"], error["node_id"], error["field"]) == (
        "invalid_config",
        "f",
        "config.condition",
    )
    assert error["message"].endswith("... nests deeper than 200 levels")
    human = _uzo("validate", path, home=tmp_path)
    assert human.returncode == 1
    assert "nests deeper than 200" in " ".join(human.stderr.replace("│", " ").split())


def test_a_sum_of_1000_terms_runs(tmp_path: Path) -> None:
    total = " + ".join(["amount"] * 1_000)
    doc = _line(_source(), _node("d", "derive", columns={"total": total}))
    path = _write(tmp_path / "sum.json", doc)
    result = _uzo("run", "--local", "--json", path, home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "succeeded"
