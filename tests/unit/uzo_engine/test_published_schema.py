"""The JSON Schemas published in docs/schema/ match the code (regenerate with `uzo schema`)."""

from __future__ import annotations

import json
from pathlib import Path

from uzo_engine.graph import workflow_json_schema
from uzo_engine.nodes.registry import node_types_json_schema

DOCS = Path(__file__).resolve().parents[3] / "docs" / "schema"


def test_workflow_schema_is_current() -> None:
    published = json.loads((DOCS / "workflow.schema.json").read_text())
    assert published == json.loads(json.dumps(workflow_json_schema())), (
        "regenerate: uzo schema > docs/schema/workflow.schema.json"
    )


def test_node_type_schemas_are_current() -> None:
    published = json.loads((DOCS / "node-types.schema.json").read_text())
    assert published == json.loads(json.dumps(node_types_json_schema())), (
        "regenerate: uzo schema --node-types > docs/schema/node-types.schema.json"
    )


def test_expression_reference_is_current() -> None:
    from uzo_engine.expressions.reference import render

    published = (DOCS.parent / "expressions.md").read_text()
    assert published == render(), "regenerate: uzo schema --expressions > docs/expressions.md"
