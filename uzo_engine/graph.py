"""The workflow document: ReactFlow's ``{nodes, edges, viewport}`` as pydantic models.

- node: ``{id, type, position: {x, y}, data: {nodeType, label?, config, settings?}}``
- edge: ``{id, source, target, sourceHandle?, targetHandle?}``

``data.config`` is the node type's own config (validated by its ``Params``
model); ``data.settings`` holds what every node has: retries, retry backoff and
timeout. Handles name ports; a single-port side may omit its handle.

The document is the canvas as ReactFlow exports it (``toObject()``, v11 and v12), so a
node or an edge also carries what the canvas draws: ``width``, ``height``, ``measured``,
``selected``, ``dragging``, ``positionAbsolute``, ``style``, ``className``, ``zIndex``,
``parentId``/``parentNode``, ``extent``, ``hidden``, markers, labels, an edge's ``data``,
UI keys in a node's ``data``... The engine validates strictly only what it reads (ids,
``type``, ``position`` x/y, ``data.nodeType``, ``data.label``, ``data.config`` through the
node type's model, ``data.settings``, ``source``/``target`` and handles) and keeps
the rest as sent (``extra="allow"``), so a document survives a round trip through the
model. The document itself and its viewport are ReactFlow's own fixed shapes and stay
closed: a misspelt ``edges`` is an error, not an empty graph.

A document nests at most :data:`MAX_DOCUMENT_DEPTH` arrays and objects deep (a real one
nests about ten; a sub-workflow adds a few): deeper ones are refused with a message,
before a recursive parser or validator could fail on them (:func:`json_depth_error`,
:func:`document_depth_error`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

if TYPE_CHECKING:
    from collections.abc import Iterator

#: arrays and objects nested in one workflow document (JSON text or parsed)
MAX_DOCUMENT_DEPTH = 100

#: a coordinate: a JSON number (not a numeric string, not a boolean), finite
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _Model(BaseModel):
    """A shape UZO defines completely: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _CanvasModel(BaseModel):
    """A shape the canvas extends: the fields UZO reads are checked, others kept as sent."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Position(_CanvasModel):
    x: Number
    y: Number


class NodeSettings(_Model):
    """Run settings common to every node type."""

    retries: int = Field(0, ge=0, le=20, description="extra attempts after a failure")
    retry_backoff_seconds: float = Field(
        1.0, ge=0, description="wait before the first retry; doubles on each further retry"
    )
    timeout_seconds: float | None = Field(None, gt=0, description="per attempt, enforced by UZO")
    cpus: float | None = Field(
        None, gt=0, le=512, description="CPUs the step asks of the cluster (default: one slot)"
    )
    memory_mb: int | None = Field(
        None, ge=1, le=16 * 1024 * 1024, description="memory the step asks of the cluster, MiB"
    )
    resources: (
        dict[
            Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")],
            Annotated[float, Field(gt=0, le=1_000_000)],
        ]
        | None
    ) = Field(
        default=None,
        max_length=16,
        description='custom Ray resources the step needs, e.g. {"ssd": 1}',
    )

    def resource_request(self) -> tuple[float | None, int | None, tuple[tuple[str, float], ...]]:
        return (self.cpus, self.memory_mb, tuple(sorted((self.resources or {}).items())))


class NodeData(_CanvasModel):
    """What UZO reads of a node; other keys (UI state of the node's renderer) are kept."""

    nodeType: str = Field(min_length=1, description="a registered node type")
    label: str | None = None
    config: dict[str, Any] = Field(
        default_factory=dict, description="the node type's config, validated by its model"
    )
    settings: NodeSettings = Field(default_factory=NodeSettings)


class Node(_CanvasModel):
    """A node on the canvas; ReactFlow's UI fields (width, measured, selected...) are kept."""

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


class Edge(_CanvasModel):
    """An edge; ReactFlow's UI fields (type, animated, style, markers, label...) are kept."""

    id: str = Field(min_length=1)
    source: str
    target: str
    sourceHandle: str | None = None
    targetHandle: str | None = None


class Viewport(_Model):
    x: Number = 0
    y: Number = 0
    zoom: Number = 1


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


# a JSON string (its escapes included), then any bracket outside one
_JSON_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def json_depth_error(text: str, limit: int = MAX_DOCUMENT_DEPTH) -> str | None:
    """Why the JSON ``text`` nests too deeply to be parsed (None: it does not). A scan of
    its brackets outside strings, without parsing: ``json.loads`` recurses per level."""
    if text.count("[") + text.count("{") <= limit:
        return None
    depth = 0
    for match in _JSON_STRING_OR_BRACKET.finditer(text):
        char = match.group()
        if char in "[{":
            depth += 1
            if depth > limit:
                return (
                    f"nested too deeply: more than {limit} levels of arrays and objects"
                    f" (at character {match.start()})"
                )
        elif char in "]}":
            depth -= 1
    return None


def _nested(value: Any, path: str) -> Iterator[tuple[Any, str]]:
    if isinstance(value, dict):
        return ((v, f"{path}.{k}" if path else str(k)) for k, v in value.items())
    if isinstance(value, list):
        return ((v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value))
    return iter(())


def document_depth_error(doc: Any, limit: int = MAX_DOCUMENT_DEPTH) -> tuple[str, str] | None:
    """(message, location) when the parsed document ``doc`` nests lists and dicts deeper
    than ``limit`` (None: it does not). Iterative: any depth is measured safely."""
    stack = [_nested(doc, "")]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            continue
        value, path = child
        if isinstance(value, (dict, list)):
            if len(stack) >= limit:
                where = ".".join(path.split(".")[:6])  # where it starts: the rest is nesting
                message = f"nested too deeply: more than {limit} levels of arrays and objects"
                return message, f"{where}..."
            stack.append(_nested(value, path))
    return None
