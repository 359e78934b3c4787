"""Documents as ReactFlow's ``toObject()`` exports them (v11 and v12) validate and run.

The fixtures in tests/fixtures/reactflow/ carry the canvas's own fields on nodes
(width, measured, positionAbsolute, parentNode/parentId, extent, style...), on edges
(type, animated, markers, label, data...), UI keys in a node's ``data`` and a viewport.
The engine checks what it reads and keeps the rest as sent.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.uzo_engine.helpers import chain, confined, node
from uzo_engine.graph import WorkflowGraph, workflow_json_schema
from uzo_engine.nodes.registry import get_node_type
from uzo_engine.runtime.local import run_workflow
from uzo_engine.validation import validate_workflow, validation_errors

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "reactflow"
VERSIONS = ("v11", "v12")

NODE_UI_FIELDS: dict[str, Any] = {
    "width": 180,
    "height": 64,
    "measured": {"width": 180, "height": 64},
    "selected": True,
    "dragging": False,
    "positionAbsolute": {"x": 10, "y": 20},
    "sourcePosition": "right",
    "targetPosition": "left",
    "style": {"border": "1px solid red"},
    "className": "uzo-node",
    "zIndex": 4,
    "parentId": "a",
    "parentNode": "a",
    "extent": "parent",
    "hidden": True,
    "deletable": False,
    "draggable": True,
    "selectable": True,
    "connectable": False,
    "focusable": True,
    "expandParent": True,
    "dragHandle": ".grip",
    "origin": [0.5, 0.5],
    "ariaLabel": "a node",
}
EDGE_UI_FIELDS: dict[str, Any] = {
    "type": "smoothstep",
    "animated": True,
    "style": {"stroke": "#000"},
    "markerEnd": {"type": "arrowclosed", "color": "#000"},
    "markerStart": "arrow",
    "label": "rows",
    "data": {"anything": [1, 2]},
    "hidden": False,
    "selected": True,
    "zIndex": 1,
    "interactionWidth": 20,
    "reconnectable": "target",
    "updatable": True,
}


def load(version: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / f"{version}.json").read_text())
    return doc


def two_nodes() -> dict[str, Any]:
    return chain(node("a", "values", rows=[{"x": 1}]), node("b", "filter", condition="x > 0"))


@pytest.mark.parametrize("version", VERSIONS)
def test_an_exported_document_validates_and_runs(version: str) -> None:
    doc = load(version)
    assert validation_errors(doc) == []
    validated = validate_workflow(doc)
    assert validated.order[-1] == "top"
    assert validated.nodes["join"].node.data.settings.retries >= 1
    result = run_workflow(doc)
    assert result.status == "succeeded", result.error
    rows = result.table("top").to_pylist()
    assert sorted((r["order_id"], r["country"]) for r in rows) == [(1, "FR"), (2, "US")]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_model_keeps_every_field_as_sent(version: str) -> None:
    doc = load(version)
    graph = WorkflowGraph.model_validate(doc)
    assert json.loads(graph.model_dump_json(exclude_unset=True)) == doc
    # and a second pass over the dump changes nothing
    again = WorkflowGraph.model_validate(json.loads(graph.model_dump_json(exclude_unset=True)))
    assert again == graph


@pytest.mark.parametrize(("name", "value"), NODE_UI_FIELDS.items(), ids=list(NODE_UI_FIELDS))
def test_each_node_ui_field_is_accepted(name: str, value: Any) -> None:
    doc = two_nodes()
    doc["nodes"][1][name] = value
    doc["nodes"][1]["data"]["toolbarOpen"] = True  # a UI key in data
    assert validation_errors(doc) == []


@pytest.mark.parametrize(("name", "value"), EDGE_UI_FIELDS.items(), ids=list(EDGE_UI_FIELDS))
def test_each_edge_ui_field_is_accepted(name: str, value: Any) -> None:
    doc = two_nodes()
    doc["edges"][0][name] = value
    assert validation_errors(doc) == []


def _one_issue(doc: dict[str, Any]) -> tuple[str, str | None, str | None]:
    errors = validation_errors(doc)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0].code, errors[0].node_id or errors[0].edge_id, errors[0].field


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        # a typo in the node type's config is still refused by its model
        (("nodes", 1, "data", "config", "conditon"), "x > 0",
         ("invalid_config", "b", "config.conditon")),
        (("nodes", 1, "data", "settings"), {"retry": 2},
         ("invalid_document", "b", "data.settings.retry")),
        (("nodes", 1, "data", "nodeType"), 7, ("invalid_document", "b", "data.nodeType")),
        (("nodes", 1, "data", "label"), {"text": "B"}, ("invalid_document", "b", "data.label")),
        (("nodes", 1, "position", "x"), "10", ("invalid_document", "b", "position.x")),
        (("nodes", 1, "position", "y"), True, ("invalid_document", "b", "position.y")),
        (("nodes", 1, "type"), None, ("invalid_document", "b", "type")),
        (("edges", 0, "source"), 1, ("invalid_document", "a->b", "source")),
    ],
)  # fmt: skip
def test_what_the_engine_reads_is_still_checked(
    path: tuple[str | int, ...], value: Any, expected: tuple[str, str, str]
) -> None:
    doc = copy.deepcopy(two_nodes())
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert _one_issue(doc) == expected


def test_a_malformed_node_does_not_hide_the_other_errors() -> None:
    doc = load("v12")
    doc["nodes"][1]["position"]["x"] = "40"  # malformed: the document does not parse
    doc["nodes"][3]["data"]["config"]["conditon"] = "amount > 1"
    doc["nodes"][4]["data"]["nodeType"] = "limt"
    doc["edges"][0]["targetHandle"] = "middle"
    found = [(e.code, e.node_id, e.field) for e in validation_errors(doc)]
    assert found == [
        ("invalid_document", "customers", "position.x"),
        ("invalid_config", "big", "config.conditon"),
        ("unknown_node_type", "top", "data.nodeType"),
        ("extra_input", "join", "middle"),
    ]  # and nothing about the join's other input, fed by the malformed node


def test_a_wrong_handle_names_the_handle_and_nothing_breaks_downstream() -> None:
    doc = two_nodes()
    doc["edges"][0]["targetHandle"] = "nope"
    found = [(e.code, e.node_id, e.field) for e in validation_errors(doc)]
    assert found == [("extra_input", "b", "nope"), ("missing_input", "b", "in")]


def test_the_document_and_its_viewport_stay_closed() -> None:
    doc = two_nodes() | {"egdes": []}
    assert {(e.code, e.field) for e in validation_errors(doc)} == {("invalid_document", "egdes")}
    doc = two_nodes()
    doc["viewport"]["zom"] = 2
    assert [e.field for e in validation_errors(doc)] == ["viewport.zom"]


def test_the_json_schema_says_what_is_open() -> None:
    defs = workflow_json_schema()["$defs"]
    for name in ("Node", "NodeData", "Edge", "Position"):
        assert defs[name]["additionalProperties"] is True, name
    for name in ("NodeSettings", "Viewport"):
        assert defs[name]["additionalProperties"] is False, name
    assert defs["Position"]["properties"]["x"]["type"] == "number"


def test_validation_stays_off_storage_unless_given_a_connector_context(tmp_path: Path) -> None:
    doc = chain(
        node("s", "parquet_source", path=str(tmp_path / "missing.parquet")),
        node("f", "filter", condition="nope > 1"),
    )
    # without a context the source's schema is unknown, so nothing downstream is checked
    assert validation_errors(doc) == []
    assert [e.code for e in validation_errors(doc, connectors=confined(tmp_path))] == [
        "source_error"
    ]
    assert get_node_type("parquet_source").infer_reads_data
    assert not get_node_type("values").infer_reads_data


def test_node_types_name_the_connector_configs_they_carry_inline() -> None:
    source = get_node_type("source").inline_connectors(
        {"connector": "postgres", "config": {"host": "db", "password": "x"}, "dataset": "t"}
    )
    assert [(c.connector_type, c.field, dict(c.config)) for c in source] == [
        ("postgres", "config", {"host": "db", "password": "x"})
    ]
    sink = get_node_type("sink").inline_connectors({"config": {"password": "x"}})
    assert [(c.connector_type, c.field) for c in sink] == [(None, "config")]
    llm = get_node_type("llm").inline_connectors({"config": {"api_key": "k"}, "template": "t"})
    assert [(c.connector_type, c.field) for c in llm] == [("openai", "config")]
    assert get_node_type("source").inline_connectors({"connector_id": "c1"}) == []
    assert get_node_type("filter").inline_connectors({"condition": "x > 0"}) == []
