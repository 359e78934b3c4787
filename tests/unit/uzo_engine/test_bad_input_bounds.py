"""Bad input gets a clear error, never a traceback or a RecursionError: a workflow file
that is not UTF-8, JSON nested without end, a graph thousands of nodes long, expressions
and queries nested past their documented limits (docs/expressions.md, "Limits")."""

from __future__ import annotations

import itertools
import json
import sys
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from tests.unit.uzo_engine.helpers import chain, edge, node, operator_ctx
from uzo_connectors.errors import ConfigError
from uzo_connectors.files.predicate import parse as parse_file_predicate
from uzo_connectors.sql.predicate import compile_predicate as compile_sql_predicate
from uzo_engine.cli import workflows
from uzo_engine.compiler import compile_workflow
from uzo_engine.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_OPERANDS,
    ExpressionError,
    compile_expression,
)
from uzo_engine.expressions.bounds import headroom
from uzo_engine.graph import MAX_DOCUMENT_DEPTH, json_depth_error
from uzo_engine.runtime.local import LocalExecutor
from uzo_engine.validation import (
    ValidationIssue,
    WorkflowValidationError,
    find_cycles,
    topological_order,
    validate_workflow,
    validation_errors,
)

if TYPE_CHECKING:
    from pathlib import Path

runner = CliRunner()
SCHEMA = {"amount": pl.Float64()}


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


# -- expressions ------------------------------------------------------------------------------


def _filter(condition: str) -> dict[str, Any]:
    return chain(_source(), node("f", "filter", condition=condition))


def _only_issue(doc: dict[str, Any]) -> ValidationIssue:
    [issue] = validation_errors(doc)  # the API's path: check_diagram() calls this
    return issue


def test_a_sum_of_1000_terms_validates_compiles_and_runs() -> None:
    total = " + ".join(["amount"] * MAX_OPERANDS)
    doc = chain(_source(), node("d", "derive", columns={"total": total}))
    assert validation_errors(doc) == []
    result = LocalExecutor().run(compile_workflow(doc), operator_ctx())
    assert result.status == "succeeded", result.error
    assert result.table("d").column("total").to_pylist() == [2.5 * MAX_OPERANDS]
    compiled = compile_expression(" AND ".join(["amount > 1"] * MAX_OPERANDS), SCHEMA)
    assert compiled.dtype == pl.Boolean()


def test_nesting_up_to_the_limit_is_fine() -> None:
    parens = "(" * MAX_DEPTH + "amount" + ")" * MAX_DEPTH
    nested_sums = "amount + (" * (MAX_DEPTH - 1) + "amount" + ")" * (MAX_DEPTH - 1)
    calls = "abs(" * (MAX_DEPTH - 1) + "amount" + ")" * (MAX_DEPTH - 1)
    for sql in (parens, nested_sums, calls):
        assert compile_expression(sql, SCHEMA).dtype == pl.Float64()


@pytest.mark.parametrize(
    "condition",
    [
        "(" * (MAX_DEPTH + 1) + "amount" + ")" * (MAX_DEPTH + 1) + " > 1",
        "(" * 5_000 + "amount" + ")" * 5_000 + " > 1",
        "(" * 100_000,  # the length limit still holds: a clear error, not a parse
        "abs(" * 300 + "amount" + ")" * 300 + " > 1",
        "amount + (" * 300 + "amount" + ")" * 300 + " > 1",
        "NOT " * 5_000 + "amount > 1",
        "- " * 5_000 + "amount > 1",
        "CASE WHEN amount > 1 THEN " * 300 + "TRUE" + " END" * 300,
    ],
    ids=["201-parens", "5000-parens", "100000-chars", "calls", "sums", "nots", "minus", "cases"],
)
def test_deeper_nesting_is_a_validation_error_naming_the_node_and_field(condition: str) -> None:
    issue = _only_issue(_filter(condition))
    assert (issue.code, issue.node_id, issue.field) == ("invalid_config", "f", "config.condition")
    assert (
        f"nests deeper than {MAX_DEPTH} levels" in issue.message
        or f"at most {MAX_LENGTH:,} characters" in issue.message
    )
    with pytest.raises(WorkflowValidationError):  # the engine's validation error, as always
        validate_workflow(_filter(condition))


def test_a_run_of_more_than_1000_operands_is_refused_by_name() -> None:
    total = " + ".join(["amount"] * (MAX_OPERANDS + 1))
    issue = _only_issue(chain(_source(), node("d", "derive", columns={"total": total})))
    assert (issue.node_id, issue.field) == ("d", "config.columns")
    assert f"chains more than {MAX_OPERANDS:,} operands" in issue.message


def test_an_unclosed_quote_is_a_parse_error_not_a_crash() -> None:
    issue = _only_issue(_filter("name = 'abc"))
    assert (issue.node_id, issue.field) == ("f", "config.condition")
    assert issue.message.startswith("config.condition: cannot parse expression")


@pytest.mark.parametrize(
    "query",
    [
        "SELECT " + "(" * 5_000 + "amount" + ")" * 5_000 + " FROM input",
        "SELECT " + "abs(" * 300 + "amount" + ")" * 300 + " FROM input",
        "SELECT 'abc FROM input",
    ],
    ids=["parens", "calls", "unclosed-quote"],
)
def test_a_sql_query_nested_too_deeply_is_a_validation_error(query: str) -> None:
    issue = _only_issue(chain(_source(), node("q", "sql", query=query)))
    assert (issue.code, issue.node_id, issue.field) == ("invalid_config", "q", "config.query")
    assert "nests deeper than" in issue.message or "cannot parse SQL" in issue.message


def test_the_cli_reports_5000_nested_parentheses_in_a_line_of_its_table(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(_filter("(" * 5_000 + "amount" + ")" * 5_000 + " > 1")))
    result = _invoke("validate", "--json", str(path))
    assert result.exit_code == 1
    [error] = json.loads(result.stdout)["errors"]
    assert (error["node_id"], error["field"]) == ("f", "config.condition")
    assert error["message"].endswith(f"... nests deeper than {MAX_DEPTH} levels")
    human = _invoke("validate", str(path))
    assert human.exit_code == 1
    assert "nests deeper" in " ".join(human.stderr.split())


def test_the_recursion_limit_is_restored_after_an_expression() -> None:
    before = sys.getrecursionlimit()
    compile_expression("(" * MAX_DEPTH + "amount" + ")" * MAX_DEPTH, SCHEMA)
    with pytest.raises(ExpressionError):
        compile_expression("NOT " * 5_000 + "amount > 1", SCHEMA)
    assert sys.getrecursionlimit() == before


def test_a_pushed_down_predicate_is_parsed_by_the_connector_as_deep_as_the_engine_allows() -> None:
    deep = "(" * 150 + "amount" + ")" * 150 + " > 1"
    with headroom():  # as the source node calls plan_read
        assert "amount" in compile_sql_predicate(deep, ["amount"], "postgres")
        assert parse_file_predicate(deep) is not None
    # without it (another caller): a ConfigError, not a RecursionError
    with pytest.raises(ConfigError, match="nested too deeply"):
        compile_sql_predicate("(" * 5_000 + "amount" + ")" * 5_000, ["amount"], "postgres")
    with pytest.raises(ConfigError, match="nested too deeply"):
        parse_file_predicate("(" * 5_000 + "amount" + ")" * 5_000)
