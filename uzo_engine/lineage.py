"""Column-level lineage, statically, from node configs and inferred schemas.

Each node type says which input columns feed each output column
(``NodeType.column_lineage``; expressions use the columns sqlglot finds). Here
those per-node maps are joined along the edges into workflow-wide edges
``(upstream node, column) -> (node, column)``, and traced back to sources.
Nodes whose schema is unknown before running (undeclared source schema, pivot
without declared columns, SQL) contribute what is known: nothing downstream of
an unknown schema is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from uzo_engine.validation import ValidatedNode, ValidatedWorkflow


@dataclass(frozen=True)
class ColumnRef:
    node_id: str
    column: str
    port: str = "out"


@dataclass(frozen=True)
class LineageEdge:
    source: ColumnRef  # an output column of an upstream node
    target: ColumnRef  # an output column of the downstream node


def node_lineage(vn: ValidatedNode) -> dict[str, dict[str, tuple[tuple[str, str], ...]]]:
    """Per output port and column: the (input port, input column) pairs feeding it."""
    if vn.input_schemas is None or vn.output_schemas is None:
        return {}
    return vn.node_type.column_lineage(vn.params, vn.input_schemas, vn.output_schemas)


def workflow_lineage(wf: ValidatedWorkflow) -> list[LineageEdge]:
    edges: list[LineageEdge] = []
    for node_id in wf.order:
        vn = wf.nodes[node_id]
        for out_port, columns in node_lineage(vn).items():
            for column, sources in columns.items():
                target = ColumnRef(node_id, column, out_port)
                for in_port, in_column in sources:
                    upstream = vn.inputs.get(in_port)
                    if upstream is not None:
                        source = ColumnRef(upstream.source, in_column, upstream.source_port)
                        edges.append(LineageEdge(source, target))
    return edges


def trace_to_sources(
    wf: ValidatedWorkflow, node_id: str, column: str, port: str = "out"
) -> set[ColumnRef]:
    """The columns of source nodes (no inputs) that an output column derives from."""
    incoming: dict[ColumnRef, list[ColumnRef]] = {}
    for e in workflow_lineage(wf):
        incoming.setdefault(e.target, []).append(e.source)
    result: set[ColumnRef] = set()
    todo, seen = [ColumnRef(node_id, column, port)], set()
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        parents = incoming.get(ref, [])
        if not parents and not wf.nodes[ref.node_id].inputs:
            result.add(ref)
        todo.extend(parents)
    return result
