"""What changed between two workflow documents: a pure function, no database.

Both inputs are ReactFlow documents ``{nodes, edges, viewport}``. Nodes are matched by
``id``, edges by ``id``: an id only in the newer document is added, one only in the
older is removed, one in both whose content differs is changed.

A change is either *logic* (what the engine runs) or *layout* (what only the canvas
shows). Layout is a closed list of presentation fields (:data:`NODE_LAYOUT_FIELDS`,
:data:`EDGE_LAYOUT_FIELDS`, the node's ``data.label`` and the document's ``viewport``);
everything else counts as logic, so a field nobody listed is never hidden in the layout
section: "layout only" is a claim that must hold. Changed paths are dotted, list items
by their index (``data.config.rows.0.amount``), as the API names fields in errors; a list
whose length changed is reported as one change of the whole list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

#: node fields ReactFlow (or the canvas) keeps for drawing only
NODE_LAYOUT_FIELDS = frozenset(
    {
        "position",
        "positionAbsolute",
        "width",
        "height",
        "measured",
        "selected",
        "dragging",
        "resizing",
        "style",
        "className",
        "zIndex",
        "hidden",
        "draggable",
        "selectable",
        "connectable",
        "deletable",
        "focusable",
        "dragHandle",
        "sourcePosition",
        "targetPosition",
        "type",  # the canvas component that draws it; the engine reads data.nodeType
    }
)
#: node ``data`` fields that are presentation only
NODE_DATA_LAYOUT_FIELDS = frozenset({"label"})
#: edge fields that only change how an edge is drawn
EDGE_LAYOUT_FIELDS = frozenset(
    {
        "type",
        "animated",
        "selected",
        "style",
        "className",
        "zIndex",
        "hidden",
        "label",
        "labelStyle",
        "labelShowBg",
        "labelBgStyle",
        "labelBgPadding",
        "labelBgBorderRadius",
        "markerStart",
        "markerEnd",
        "interactionWidth",
        "focusable",
        "deletable",
        "updatable",
        "reconnectable",
        "pathOptions",
    }
)
#: document fields that are presentation only
DOCUMENT_LAYOUT_FIELDS = frozenset({"viewport"})

Kind = Literal["added", "removed", "changed"]
_MISSING: Any = object()


@dataclass(frozen=True)
class FieldChange:
    """One value that differs: ``old``/``new`` are None where the field is absent
    (``kind`` says which: added, removed or changed)."""

    path: str
    kind: Kind
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class ItemChange:
    """A node or edge present in both documents, and what differs (its logic changes in
    ``nodes``/``edges``, its presentation changes in ``layout``)."""

    id: str
    changes: list[FieldChange]


@dataclass
class Section:
    """Nodes (or edges): the whole items added or removed, and those logically changed."""

    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[ItemChange] = field(default_factory=list)


@dataclass
class Layout:
    """Presentation changes, kept apart: per node, per edge, and of the viewport."""

    nodes: list[ItemChange] = field(default_factory=list)
    edges: list[ItemChange] = field(default_factory=list)
    viewport: list[FieldChange] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.nodes or self.edges or self.viewport)


@dataclass
class DiagramDiff:
    nodes: Section
    edges: Section
    layout: Layout

    @property
    def logic_changed(self) -> bool:
        return any(s.added or s.removed or s.changed for s in (self.nodes, self.edges))

    @property
    def identical(self) -> bool:
        return not self.logic_changed and self.layout.empty()

    @property
    def layout_only(self) -> bool:
        """Something changed, and none of it is logic."""
        return not self.logic_changed and not self.layout.empty()


def diff_documents(old: Any, new: Any) -> DiagramDiff:
    """What changed from document ``old`` to document ``new``."""
    old_doc = old if isinstance(old, dict) else {}
    new_doc = new if isinstance(new, dict) else {}
    nodes, node_layout = _items(old_doc.get("nodes"), new_doc.get("nodes"), _split_node)
    edges, edge_layout = _items(old_doc.get("edges"), new_doc.get("edges"), _split_edge)
    viewport: list[FieldChange] = []
    for key in sorted(DOCUMENT_LAYOUT_FIELDS):
        viewport += value_changes(old_doc.get(key, _MISSING), new_doc.get(key, _MISSING), key)
    return DiagramDiff(nodes, edges, Layout(node_layout, edge_layout, viewport))


def value_changes(old: Any, new: Any, path: str) -> list[FieldChange]:
    """The leaves that differ between two JSON values, below ``path``.

    Objects are compared key by key, lists of equal length item by item; anything else
    (scalars, lists of different lengths, a type change) is one change at ``path``.
    """
    if old is _MISSING and new is _MISSING:
        return []
    if old is _MISSING:
        return [FieldChange(path, "added", None, new)]
    if new is _MISSING:
        return [FieldChange(path, "removed", old, None)]
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[FieldChange] = []
        for key in _keys(old, new):
            out += value_changes(old.get(key, _MISSING), new.get(key, _MISSING), _join(path, key))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out += value_changes(a, b, _join(path, str(i)))
        return out
    if _same(old, new):
        return []
    return [FieldChange(path, "changed", old, new)]


# -- internals -------------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python, but not in JSON: a boolean turned into a number is a change
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The keys of both, in the older document's order, then the newly added ones."""
    return list(old) + [k for k in new if k not in old]


def _split_node(node: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A node as (logic fields, layout fields); ``data.label`` goes to layout."""
    logic: dict[str, Any] = {}
    layout: dict[str, Any] = {}
    for key, value in node.items():
        if key == "id":
            continue
        if key in NODE_LAYOUT_FIELDS:
            layout[key] = value
        elif key == "data" and isinstance(value, dict):
            data = {k: v for k, v in value.items() if k not in NODE_DATA_LAYOUT_FIELDS}
            shown = {k: v for k, v in value.items() if k in NODE_DATA_LAYOUT_FIELDS}
            logic["data"] = data
            if shown:
                layout["data"] = shown
        else:
            logic[key] = value
    return logic, layout


def _split_edge(edge: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    logic = {k: v for k, v in edge.items() if k != "id" and k not in EDGE_LAYOUT_FIELDS}
    layout = {k: v for k, v in edge.items() if k in EDGE_LAYOUT_FIELDS}
    return logic, layout


def _by_id(items: Any) -> dict[str, dict[str, Any]]:
    """Items keyed by id (the first of a duplicated id wins); a draft's item without a
    string id is keyed by its position, ``#3``."""
    out: dict[str, dict[str, Any]] = {}
    if not isinstance(items, list):
        return out
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        key = item["id"] if isinstance(item.get("id"), str) else f"#{i}"
        out.setdefault(key, item)
    return out


Split = Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]


def _items(old_items: Any, new_items: Any, split: Split) -> tuple[Section, list[ItemChange]]:
    old, new = _by_id(old_items), _by_id(new_items)
    section = Section(
        added=[new[k] for k in new if k not in old],
        removed=[old[k] for k in old if k not in new],
    )
    layout: list[ItemChange] = []
    for key in (k for k in old if k in new):
        old_logic, old_layout = split(old[key])
        new_logic, new_layout = split(new[key])
        logic_changes = value_changes(old_logic, new_logic, "")
        layout_changes = value_changes(old_layout, new_layout, "")
        if logic_changes:
            section.changed.append(ItemChange(key, logic_changes))
        if layout_changes:
            layout.append(ItemChange(key, layout_changes))
    return section, layout
