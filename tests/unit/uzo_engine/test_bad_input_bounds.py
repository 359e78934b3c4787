"""Bad input gets a clear error, never a traceback or a RecursionError: a workflow file
that is not UTF-8, JSON nested without end, a graph thousands of nodes long."""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

import pytest
import typer
from typer.testing import CliRunner

from tests.unit.uzo_engine.helpers import chain, edge, node
from uzo_engine.cli import workflows
from uzo_engine.compiler import compile_workflow
from uzo_engine.graph import MAX_DOCUMENT_DEPTH, json_depth_error
from uzo_engine.validation import (
    WorkflowValidationError,
    find_cycles,
    topological_order,
    validate_workflow,
    validation_errors,
)

if TYPE_CHECKING:
    from pathlib import Path

runner = CliRunner()


def _cli() -> typer.Typer:
    app = typer.Typer()
    workflows.register(app)
    return app


def _invoke(*args: str) -> Any:
    result = runner.invoke(_cli(), list(args))
    assert not isinstance(result.exception, RecursionError), result.exception
    assert "Traceback" not in result.stdout + result.stderr
    return result


def _source() -> dict[str, Any]:
    return node("src", "values", rows=[{"id": 1, "amount": 2.5}])


def _filters(count: int) -> dict[str, Any]:
    """``src`` then ``count`` filters in a line."""
    return chain(
        _source(), *(node(f"n{i}", "filter", condition="amount > 1") for i in range(count))
    )


# -- the workflow file ------------------------------------------------------------------------


def test_a_file_that_is_not_utf8_is_named_with_the_offending_byte(tmp_path: Path) -> None:
    doc = chain(_source(), node("café", "filter", condition="amount > 1"))
    text = json.dumps(doc, ensure_ascii=False)
    path = tmp_path / "latin1.json"
    path.write_bytes(text.encode("latin-1"))
    offset = text.encode("latin-1").index(b"\xe9")
    result = _invoke("validate", str(path))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {path} is not UTF-8 JSON: byte 0xe9 at offset {offset} (invalid continuation byte)"
    )
    doc = json.loads(_invoke("validate", "--json", str(path)).stdout)
    assert [e["code"] for e in doc["errors"]] == ["invalid_json"]
    assert f"offset {offset}" in doc["errors"][0]["message"]


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        '{"nodes": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"nodes": [], "edges": [], "viewport": ' + '{"a": ' * 5_000 + "1" + "}" * 5_001,
    ],
    ids=["unclosed-arrays", "closed-arrays", "objects"],
)
def test_json_nested_without_end_is_refused_before_it_is_parsed(tmp_path: Path, text: str) -> None:
    path = tmp_path / "deep.json"
    path.write_text(text)
    result = _invoke("validate", str(path))
    assert result.exit_code == 2
    assert f"error: {path} is nested too deeply: more than {MAX_DOCUMENT_DEPTH} levels" in (
        result.stderr
    )
    ran = _invoke("run", "--local", "--json", str(path))
    assert ran.exit_code == 2
    error = json.loads(ran.stdout)["errors"][0]
    assert error["code"] == "invalid_json"
    assert "nested too deeply" in error["message"]


def test_the_depth_scan_counts_brackets_outside_strings_only() -> None:
    inside = json.dumps({"label": "[" * 500 + '\\"{' * 500})
    assert json_depth_error(inside) is None
    assert json_depth_error("[" * MAX_DOCUMENT_DEPTH + "]" * MAX_DOCUMENT_DEPTH) is None
    assert json_depth_error("[" * (MAX_DOCUMENT_DEPTH + 1)) == (
        f"nested too deeply: more than {MAX_DOCUMENT_DEPTH} levels of arrays and objects"
        f" (at character {MAX_DOCUMENT_DEPTH})"
    )


def test_a_parsed_document_nested_too_deeply_is_a_validation_error_naming_the_node() -> None:
    rows: list[Any] = []
    innermost = rows
    for _ in range(5_000):  # as the API could receive it, already parsed
        innermost.append([])
        innermost = innermost[0]
    doc = chain(node("src", "values", rows=rows))
    with pytest.raises(WorkflowValidationError) as caught:
        validate_workflow(doc)
    [issue] = caught.value.errors
    assert (issue.code, issue.node_id) == ("invalid_document", "src")
    assert issue.message == (
        "data.config.rows.0...: nested too deeply:"
        f" more than {MAX_DOCUMENT_DEPTH} levels of arrays and objects"
    )


# -- long graphs ------------------------------------------------------------------------------


def test_a_20000_node_chain_validates_and_compiles() -> None:
    doc = _filters(20_000)
    wf = validate_workflow(doc)
    assert wf.order == ["src", *(f"n{i}" for i in range(20_000))]
    plan = compile_workflow(wf)
    assert sum(len(step.node_ids) for step in plan.steps.values()) == 20_001


def test_a_2000_node_chain_validates_and_compiles_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "long.json"
    path.write_text(json.dumps(_filters(2_000)))
    result = _invoke("validate", str(path))
    assert result.exit_code == 0, result.stderr
    assert "valid: 2001 nodes, 2000 edges" in result.stdout


def test_a_cycle_thousands_of_nodes_long_is_named() -> None:
    doc = _filters(5_000)
    doc["edges"].append(edge("n4999", "n0"))
    [cycle] = [e for e in validation_errors(doc) if e.code == "cycle"]
    assert cycle.node_id == "n0"
    assert cycle.message.startswith("cycle: n0 -> n1 -> n2 -> ")
    assert cycle.message.endswith(" -> n4998 -> n4999 -> n0")


def test_graph_walks_are_iterative() -> None:
    names = [f"v{i}" for i in range(50_000)]
    line = {a: [b] for a, b in itertools.pairwise(names)}
    assert topological_order(names, line) == names
    assert find_cycles(names, line) == []
    ring = {**line, names[-1]: [names[0]]}
    assert find_cycles(names, ring) == [names]
    assert topological_order(names, ring) == []
    # components are found in the order of the recursive version: a self-loop, a ring, a tail
    adjacency = {"a": ["b"], "b": ["c", "a"], "c": ["c"], "d": ["e"], "e": ["f"], "f": ["d"]}
    assert find_cycles(list("abcdef"), adjacency) == [["c"], ["a", "b"], ["d", "e", "f"]]
