"""Every validation error kind, collected together, naming node, field and column."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.uzo_engine.helpers import chain, edge, node
from uzo_engine.validation import (
    ValidationIssue,
    WorkflowValidationError,
    validate_workflow,
    validation_errors,
)

SRC = node("src", "values", rows=[{"id": 1, "name": "a", "amount": 2.5}])


def codes(errors: list[ValidationIssue]) -> list[tuple[str, str | None]]:
    return [(e.code, e.node_id) for e in errors]


def test_valid_workflow_has_order_and_schemas() -> None:
    wf = validate_workflow(
        chain(
            SRC,
            node("f", "filter", condition="amount > 1"),
            node("d", "derive", columns={"x": "amount * 2"}),
        )
    )
    assert wf.order == ["src", "f", "d"]
    out = wf.nodes["d"].output_schemas
    assert out is not None
    assert list(out["out"]) == ["id", "name", "amount", "x"]


def test_all_errors_are_collected_not_just_the_first() -> None:
    doc = {
        "nodes": [
            SRC,
            node("src", "values", rows=[{"a": 1}]),
            node("t1", "filtr", condition="x"),
            node("t2", "filter", condition="amount >"),
            node("t3", "limit", n=-1, bogus=True),
            node("lonely", "values", rows=[{"a": 1}]),
        ],
        "edges": [edge("src", "t1"), edge("src", "t2"), edge("t2", "t3"), edge("src", "ghost")],
    }
    with pytest.raises(WorkflowValidationError) as e:
        validate_workflow(doc)
    errors = e.value.errors
    found = codes(errors)
    assert ("duplicate_node_id", "src") in found
    assert ("unknown_node_type", "t1") in found
    assert ("invalid_config", "t2") in found
    assert ("orphan_node", "lonely") in found
    t3 = [x for x in errors if x.node_id == "t3"]
    assert {x.field for x in t3} == {"config.n", "config.bogus"}
    ghost = [x for x in errors if x.code == "unknown_edge_node"]
    assert ghost[0].edge_id == "src->ghost"
    assert "ghost" in ghost[0].message
    assert "unknown node type 'filtr'; did you mean 'filter'" in str(e.value)
    assert all(isinstance(x.to_dict(), dict) for x in errors)


def test_cycle_is_named() -> None:
    doc = {
        "nodes": [
            SRC,
            node("a", "union"),
            node("b", "filter", condition="id > 0"),
            node("c", "select", columns=["id"]),
        ],
        "edges": [
            edge("src", "a", target_handle="s"),
            edge("a", "b"),
            edge("b", "c"),
            edge("c", "a", target_handle="loop"),
        ],
    }
    errors = validation_errors(doc)
    cycle = [e for e in errors if e.code == "cycle"]
    assert len(cycle) == 1
    assert cycle[0].message == "cycle: a -> b -> c -> a"


def test_self_loop_is_a_cycle() -> None:
    doc = {
        "nodes": [SRC, node("u", "union")],
        "edges": [edge("src", "u", target_handle="x"), edge("u", "u", target_handle="y")],
    }
    assert ("cycle", "u") in codes(validation_errors(doc))


def test_missing_and_extra_ports() -> None:
    doc = {
        "nodes": [
            SRC,
            node("j", "join", on=["id"]),
            node("f", "filter", condition="id > 1"),
            node("f2", "filter", condition="id > 1"),
        ],
        "edges": [
            edge("src", "j", target_handle="left"),
            edge("src", "f"),
            {"id": "dup", "source": "src", "target": "f"},
            edge("src", "f2", target_handle="nope"),
        ],
    }
    errors = validation_errors(doc)
    found = {(e.code, e.node_id, e.field) for e in errors}
    assert ("missing_input", "j", "right") in found
    assert ("extra_input", "f2", "nope") in found
    assert any(e.code == "extra_input" and e.edge_id == "dup" for e in errors)


def test_ambiguous_ports_need_handles() -> None:
    doc = {
        "nodes": [
            SRC,
            node("r", "router", condition="id > 1"),
            node("f", "filter", condition="id > 0"),
        ],
        "edges": [edge("src", "r"), edge("r", "f")],
    }
    errors = validation_errors(doc)
    assert any(e.code == "unknown_output_port" and "sourceHandle" in e.message for e in errors)
    doc["edges"] = [edge("src", "r"), edge("r", "f", source_handle="maybe")]
    assert any(
        e.code == "unknown_output_port" and e.field == "maybe" for e in validation_errors(doc)
    )


def test_missing_input_on_disconnected_transform() -> None:
    doc = {
        "nodes": [
            SRC,
            node("f", "filter", condition="id > 1"),
            node("g", "filter", condition="id > 1"),
        ],
        "edges": [edge("f", "g")],
    }
    found = codes(validation_errors(doc))
    assert ("missing_input", "f") in found
    assert ("orphan_node", "src") in found


def test_duplicate_edge_id_and_bad_document() -> None:
    doc: dict[str, Any] = chain(SRC, node("f", "filter", condition="id > 1"))
    doc["edges"].append(dict(doc["edges"][0]))
    assert "duplicate_edge_id" in [e.code for e in validation_errors(doc)]
    bad = validation_errors({"nodes": [{"id": "x", "data": {}}], "edges": [], "extra": 1})
    assert {e.code for e in bad} == {"invalid_document"}
    assert {(e.node_id, e.field) for e in bad} >= {("x", "data.nodeType"), (None, "extra")}


@pytest.mark.parametrize(
    ("second", "code", "column"),
    [
        (node("n", "filter", condition="missing_col > 1"), "missing_column", "missing_col"),
        (node("n", "derive", columns={"y": "amount + nope"}), "missing_column", "nope"),
        (node("n", "select", columns=["id", "nah"]), "missing_column", "nah"),
        (node("n", "sort", by=["zzz"]), "missing_column", "zzz"),
        (
            node("n", "aggregate", aggregations=[{"func": "avg", "column": "name"}]),
            "type_mismatch",
            "name",
        ),
    ],
)
def test_static_schema_errors_name_node_and_column(
    second: dict[str, Any], code: str, column: str
) -> None:
    errors = validation_errors(chain(SRC, second))
    assert [(e.code, e.node_id, e.column) for e in errors] == [(code, "n", column)]


def test_schema_errors_flow_through_the_graph() -> None:
    doc = {
        "nodes": [
            SRC,
            node("other", "values", rows=[{"id": "x", "v": 1}]),
            node("s", "select", rename={"amount": "amt"}),
            node("f", "filter", condition="amount > 1"),  # renamed away upstream
            node("j", "join", on=["id"]),  # int64 vs string
            node("u", "union"),
        ],
        "edges": [
            edge("src", "s"),
            edge("s", "f"),
            edge("src", "j", target_handle="left"),
            edge("other", "j", target_handle="right"),
            edge("src", "u"),
            edge("other", "u"),
        ],
    }
    errors = validation_errors(doc)
    got = {(e.code, e.node_id, e.column) for e in errors}
    assert got == {
        ("missing_column", "f", "amount"),
        ("incompatible_join_keys", "j", "id"),
        ("incompatible_union", "u", "id"),
    }


def test_unknown_schemas_skip_downstream_checks() -> None:
    doc = chain(
        node("src", "source", connector="postgres", dataset="t"),
        node("f", "filter", condition="anything > 1"),
    )
    assert validation_errors(doc) == []
    declared = chain(
        node("src", "source", connector="postgres", dataset="t", schema={"id": "int64"}),
        node("f", "filter", condition="anything > 1"),
    )
    assert codes(validation_errors(declared)) == [("missing_column", "f")]


def test_single_node_workflow_is_not_orphaned() -> None:
    assert validation_errors({"nodes": [SRC], "edges": []}) == []
