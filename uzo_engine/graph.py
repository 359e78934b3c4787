"""The workflow document: ReactFlow's ``{nodes, edges, viewport}`` as pydantic models.

- node: ``{id, type, position: {x, y}, data: {nodeType, label?, config, settings?}}``
- edge: ``{id, source, target, sourceHandle?, targetHandle?}``

``data.config`` is the node type's own config (validated by its ``Params``
model); ``data.settings`` holds what every node has: retries, retry backoff and
timeout. Handles name ports; a single-port side may omit its handle.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Position(_Model):
    x: float
    y: float


class NodeSettings(_Model):
    """Run settings common to every node type."""

    retries: int = Field(0, ge=0, le=20, description="extra attempts after a failure")
    retry_backoff_seconds: float = Field(
        1.0, ge=0, description="wait before the first retry; doubles on each further retry"
    )
    timeout_seconds: float | None = Field(None, gt=0, description="per attempt, enforced by UZO")


class NodeData(_Model):
    nodeType: str = Field(min_length=1, description="a registered node type")
    label: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    settings: NodeSettings = Field(default_factory=NodeSettings)


class Node(_Model):
    id: str = Field(min_length=1)
    type: str = Field("default", description="ReactFlow renderer type (not the UZO node type)")
    position: Position = Field(default_factory=lambda: Position(x=0, y=0))
    data: NodeData

    @property
    def node_type(self) -> str:
        return self.data.nodeType

    @property
    def label(self) -> str:
        return self.data.label or self.id


class Edge(_Model):
    id: str = Field(min_length=1)
    source: str
    target: str
    sourceHandle: str | None = None
    targetHandle: str | None = None


class Viewport(_Model):
    x: float = 0
    y: float = 0
    zoom: float = 1


class WorkflowGraph(_Model):
    """A workflow as drawn on the canvas."""

    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    viewport: Viewport = Field(default_factory=Viewport)

    def node_map(self) -> dict[str, Node]:
        return {n.id: n for n in self.nodes}


_NAME = re.compile(r"[^0-9A-Za-z_]+")


def sql_name(text: str) -> str:
    """A label turned into a plain identifier (``"Orders 2024"`` -> ``orders_2024``)."""
    name = _NAME.sub("_", text).strip("_").lower() or "input"
    return f"t_{name}" if name[0].isdigit() else name


def variadic_port(edge: Edge, source: Node | None) -> str:
    """Input port name of an edge into a node that takes any number of inputs (union, sql):
    the target handle, else the upstream node's label (as an identifier), else its id."""
    if edge.targetHandle:
        return edge.targetHandle
    if source is not None and source.data.label:
        return sql_name(source.data.label)
    return sql_name(edge.source)


def workflow_json_schema() -> dict[str, Any]:
    """JSON Schema of the workflow document (node configs: see ``node_types_json_schema``)."""
    schema = WorkflowGraph.model_json_schema()
    schema["title"] = "UZO workflow"
    schema["$id"] = "https://uzo.dev/schemas/workflow.json"
    return schema
