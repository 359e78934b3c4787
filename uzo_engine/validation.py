"""Validate a workflow before anything runs, collecting every error.

Structural checks: document shape, duplicate ids, unknown node types, invalid
configs (pydantic errors mapped to node id and field), edges to unknown nodes,
unknown/missing/extra ports, cycles (naming the cycle), orphan nodes. Then a
static schema inference in topological order rejects a filter/derive on a
missing column, a join on keys of incompatible types, a union of incompatible
schemas, ... naming the node and the column.

Nothing reads data unless the caller says where it may: node types whose schema is
in the data they describe (``infer_reads_data``: the Parquet source reads file
metadata) are read only through a ``connectors`` context given to the validator, and
only within its local roots (the CLI gives the operator's context). Without one (the
API when a workflow is saved, the compiler before a run) their schema, and what is
downstream of it, is unknown until they run.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pydantic

from uzo_engine.graph import Edge, Node, WorkflowGraph, document_depth_error, variadic_port
from uzo_engine.nodes.base import NodeType, Params, SchemaError, SchemaUnknownError
from uzo_engine.nodes.registry import UnknownNodeTypeError, get_node_type

if TYPE_CHECKING:
    from collections.abc import Mapping

    import polars as pl

    from uzo_connectors.base import ConnectorContext


@dataclass(frozen=True)
class ValidationIssue:
    code: str
    message: str
    node_id: str | None = None
    edge_id: str | None = None
    field: str | None = None
    column: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def __str__(self) -> str:
        where = f"node {self.node_id!r}: " if self.node_id else ""
        if self.edge_id and not self.node_id:
            where = f"edge {self.edge_id!r}: "
        return where + self.message


class WorkflowValidationError(ValueError):
    def __init__(self, errors: list[ValidationIssue]):
        self.errors = errors
        lines = "\n".join(f"- {e}" for e in errors)
        super().__init__(f"the workflow has {len(errors)} error(s):\n{lines}")


@dataclass(frozen=True)
class ResolvedEdge:
    edge_id: str
    source: str
    source_port: str
    target: str
    target_port: str


@dataclass
class ValidatedNode:
    node: Node
    node_type: NodeType[Any]
    params: Params
    inputs: dict[str, ResolvedEdge] = field(default_factory=dict)  # input port -> edge
    # output port -> schema; None when unknown before running (e.g. undeclared source schema)
    output_schemas: dict[str, pl.Schema] | None = None
    input_schemas: dict[str, pl.Schema] | None = None


@dataclass
class ValidatedWorkflow:
    graph: WorkflowGraph
    nodes: dict[str, ValidatedNode]
    order: list[str]  # topological
    edges: list[ResolvedEdge]
    # source node -> its outgoing edges in edge order, built on the first consumers() call
    _outgoing: dict[str, list[ResolvedEdge]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def consumers(self, node_id: str, port: str | None = None) -> list[ResolvedEdge]:
        if self._outgoing is None:  # an index: a scan of every edge per node is quadratic
            self._outgoing = defaultdict(list)
            for e in self.edges:
                self._outgoing[e.source].append(e)
        return [e for e in self._outgoing.get(node_id, []) if port is None or e.source_port == port]


def validate_workflow(
    workflow: WorkflowGraph | Mapping[str, Any],
    *,
    check_schemas: bool = True,
    connectors: ConnectorContext | None = None,
) -> ValidatedWorkflow:
    """The validated workflow, or :class:`WorkflowValidationError` listing every error.
    ``connectors``: where schema inference may read data (see the module); None: nowhere."""
    result, errors = _validate(workflow, check_schemas=check_schemas, connectors=connectors)
    if errors or result is None:
        raise WorkflowValidationError(errors)
    return result


def validation_errors(
    workflow: WorkflowGraph | Mapping[str, Any],
    *,
    check_schemas: bool = True,
    connectors: ConnectorContext | None = None,
) -> list[ValidationIssue]:
    """Every error of the workflow (empty when it is valid). Without ``connectors`` schema
    inference stays off storage: node types that read files to know their schema
    (``infer_reads_data``) are left unknown, and so is what is downstream of them."""
    return _validate(workflow, check_schemas=check_schemas, connectors=connectors)[1]


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _document_issue(doc: Mapping[str, Any], err: Any) -> ValidationIssue:
    """A document-shape error, attributed to the node or edge it is in when possible."""
    loc = tuple(err["loc"])
    msg = err["msg"]
    if len(loc) >= 2 and loc[0] in ("nodes", "edges") and isinstance(loc[1], int):
        items = doc.get(str(loc[0]))
        item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
        item_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(item_id, str):
            field = _loc(loc[2:])
            text = f"{field}: {msg}" if field else msg
            if loc[0] == "nodes":
                return ValidationIssue("invalid_document", text, node_id=item_id, field=field)
            return ValidationIssue("invalid_document", text, edge_id=item_id, field=field)
    return ValidationIssue("invalid_document", f"{_loc(loc)}: {msg}", field=_loc(loc))


def _validate(
    workflow: WorkflowGraph | Mapping[str, Any],
    *,
    check_schemas: bool,
    connectors: ConnectorContext | None = None,
) -> tuple[ValidatedWorkflow | None, list[ValidationIssue]]:
    errors: list[ValidationIssue] = []
    reported: _Reported = _Reported(set(), [])
    if isinstance(workflow, WorkflowGraph):
        graph = workflow
    else:
        too_deep = document_depth_error(workflow)  # pydantic and the nodes recurse per level
        if too_deep is not None:
            message, where = too_deep
            at = tuple(int(p) if p.isdigit() else p for p in where.split("."))
            return None, [_document_issue(workflow, {"loc": at, "msg": message})]
        try:
            graph = WorkflowGraph.model_validate(workflow)
        except pydantic.ValidationError as e:
            errors = [_document_issue(workflow, err) for err in e.errors()]
            salvaged = _salvage(workflow)
            if salvaged is None:
                return None, errors
            # the rest of the document is still checked: every error at once
            graph, reported = salvaged

    # ids
    nodes: dict[str, Node] = {}
    for node in graph.nodes:
        if node.id in nodes:
            errors.append(
                ValidationIssue(
                    "duplicate_node_id", f"node id {node.id!r} is used twice", node_id=node.id
                )
            )
        nodes.setdefault(node.id, node)
    seen_edges: set[str] = set()
    for edge in graph.edges:
        if edge.id in seen_edges:
            errors.append(
                ValidationIssue(
                    "duplicate_edge_id", f"edge id {edge.id!r} is used twice", edge_id=edge.id
                )
            )
        seen_edges.add(edge.id)

    # types and configs
    validated: dict[str, ValidatedNode] = {}
    for node_id, node in nodes.items():
        try:
            nt = get_node_type(node.node_type)
        except UnknownNodeTypeError as e:
            errors.append(
                ValidationIssue(
                    "unknown_node_type", e.message, node_id=node_id, field="data.nodeType"
                )
            )
            continue
        except ImportError as e:
            errors.append(ValidationIssue("unknown_node_type", str(e), node_id=node_id))
            continue
        try:
            params = nt.parse_params(node.data.config)
        except pydantic.ValidationError as e:
            for err in e.errors():
                loc = _loc(err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                errors.append(
                    ValidationIssue(
                        "invalid_config",
                        f"config.{loc}: {msg}" if loc else msg,
                        node_id=node_id,
                        field=f"config.{loc}" if loc else "config",
                    )
                )
            continue
        validated[node_id] = ValidatedNode(node=node, node_type=nt, params=params)

    # edges and ports
    resolved: list[ResolvedEdge] = []
    linked: set[str] = set()
    fed_by_broken: set[str] = set()  # nodes with an input from a node already reported
    for source, target in reported.edges:  # edges reported as malformed still link nodes
        linked.update(end for end in (source, target) if end is not None)
        if target is not None:
            fed_by_broken.add(target)
    for edge in graph.edges:
        if reported.nodes & {edge.source, edge.target}:  # a malformed node, reported already
            linked.update((edge.source, edge.target))
            if edge.source in reported.nodes:
                fed_by_broken.add(edge.target)
            continue
        missing = [n for n in (edge.source, edge.target) if n not in nodes]
        for n in missing:
            errors.append(
                ValidationIssue(
                    "unknown_edge_node",
                    f"edge {edge.id!r} refers to unknown node {n!r}",
                    edge_id=edge.id,
                )
            )
        if missing:
            continue
        linked.update((edge.source, edge.target))
        src, dst = validated.get(edge.source), validated.get(edge.target)
        if src is None or dst is None:  # already reported (unknown type / bad config)
            if src is None:
                fed_by_broken.add(edge.target)
            continue
        out_port = _output_port(edge.sourceHandle, src, edge.id, errors)
        in_port = _input_port(edge, dst, nodes.get(edge.source), errors)
        if out_port is None or in_port is None:
            continue
        if in_port in dst.inputs:
            errors.append(
                ValidationIssue(
                    "extra_input",
                    f"input port {in_port!r} has more than one incoming edge "
                    f"({dst.inputs[in_port].edge_id!r} and {edge.id!r})",
                    node_id=dst.node.id,
                    edge_id=edge.id,
                )
            )
            continue
        r = ResolvedEdge(edge.id, edge.source, out_port, edge.target, in_port)
        dst.inputs[in_port] = r
        resolved.append(r)

    for node_id, vn in validated.items():
        nt = vn.node_type
        if nt.variadic_inputs:
            if len(vn.inputs) < nt.min_inputs:
                errors.append(
                    ValidationIssue(
                        "missing_input",
                        f"{nt.name} needs at least {nt.min_inputs} input(s), has {len(vn.inputs)}",
                        node_id=node_id,
                    )
                )
        elif node_id not in fed_by_broken:  # one error per mistake: no follow-on ones
            for port in nt.inputs:
                if port not in vn.inputs:
                    errors.append(
                        ValidationIssue(
                            "missing_input",
                            f"input port {port!r} is not connected",
                            node_id=node_id,
                            field=port,
                        )
                    )
    # a malformed edge that names no node could be the one link of any node: no guessing
    if len(nodes) > 1 and all(None not in ends for ends in reported.edges):
        for node_id in nodes:
            if node_id not in linked:
                errors.append(
                    ValidationIssue(
                        "orphan_node",
                        "node is not connected to the rest of the workflow",
                        node_id=node_id,
                    )
                )

    # cycles and order
    adjacency: dict[str, list[str]] = defaultdict(list)
    for link in graph.edges:
        if link.source in nodes and link.target in nodes:
            adjacency[link.source].append(link.target)
    for cycle in find_cycles(list(nodes), adjacency):
        path = " -> ".join([*cycle, cycle[0]])
        errors.append(ValidationIssue("cycle", f"cycle: {path}", node_id=cycle[0]))
    order = topological_order(list(nodes), adjacency)

    if check_schemas and len(order) == len(nodes):
        errors.extend(_infer_schemas(validated, order, fed_by_broken, connectors))
    if errors:
        return None, errors
    return ValidatedWorkflow(graph=graph, nodes=validated, order=order, edges=resolved), []


@dataclass(frozen=True)
class _Reported:
    """What a malformed document's shape errors already cover: the ids of its malformed
    nodes, and (source, target) of its malformed edges (None where not a string)."""

    nodes: set[str]
    edges: list[tuple[str | None, str | None]]


def _salvage(doc: Mapping[str, Any]) -> tuple[WorkflowGraph, _Reported] | None:
    """The well-formed nodes and edges of a malformed document, to check them too."""
    if not isinstance(doc, dict):
        return None
    raw_nodes, raw_edges = doc.get("nodes", []), doc.get("edges", [])
    if not isinstance(raw_nodes, list) or not isinstance(raw_edges, list):
        return None
    reported = _Reported(set(), [])
    nodes: list[Node] = []
    for raw in raw_nodes:
        try:
            nodes.append(Node.model_validate(raw))
        except pydantic.ValidationError:
            if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                reported.nodes.add(raw["id"])
    edges: list[Edge] = []
    for raw in raw_edges:
        try:
            edges.append(Edge.model_validate(raw))
        except pydantic.ValidationError:
            if isinstance(raw, dict):
                source, target = raw.get("source"), raw.get("target")
                reported.edges.append(
                    (
                        source if isinstance(source, str) else None,
                        target if isinstance(target, str) else None,
                    )
                )
    return WorkflowGraph(nodes=nodes, edges=edges), reported


def _output_port(
    handle: str | None, src: ValidatedNode, edge_id: str, errors: list[ValidationIssue]
) -> str | None:
    outputs = src.node_type.outputs
    if handle is None:
        if len(outputs) == 1:
            return outputs[0]
        what = "has no outputs" if not outputs else f"has outputs {list(outputs)}; set sourceHandle"
        errors.append(
            ValidationIssue(
                "unknown_output_port",
                f"{src.node_type.name} {what}",
                node_id=src.node.id,
                edge_id=edge_id,
            )
        )
        return None
    if handle not in outputs:
        errors.append(
            ValidationIssue(
                "unknown_output_port",
                f"{src.node_type.name} has no output {handle!r} "
                f"(outputs: {list(outputs) or 'none'})",
                node_id=src.node.id,
                edge_id=edge_id,
                field=handle,
            )
        )
        return None
    return handle


def _input_port(
    edge: Any, dst: ValidatedNode, source: Node | None, errors: list[ValidationIssue]
) -> str | None:
    nt = dst.node_type
    if nt.variadic_inputs:
        return variadic_port(edge, source)
    handle: str | None = edge.targetHandle
    if handle is None:
        if len(nt.inputs) == 1:
            return nt.inputs[0]
        what = (
            "takes no input" if not nt.inputs else f"has inputs {list(nt.inputs)}; set targetHandle"
        )
        errors.append(
            ValidationIssue(
                "extra_input", f"{nt.name} {what}", node_id=dst.node.id, edge_id=edge.id
            )
        )
        return None
    if handle not in nt.inputs:
        errors.append(
            ValidationIssue(
                "extra_input",
                f"{nt.name} has no input {handle!r} (inputs: {list(nt.inputs) or 'none'})",
                node_id=dst.node.id,
                edge_id=edge.id,
                field=handle,
            )
        )
        return None
    return handle


def find_cycles(nodes: list[str], adjacency: Mapping[str, list[str]]) -> list[list[str]]:
    """One cycle (as a node path) per strongly connected component that has one.

    Tarjan's algorithm with an explicit stack: a chain of any length is walked without
    recursion (a recursive walk fails past Python's ~1,000 frames)."""
    position = {n: i for i, n in enumerate(nodes)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def component_cycle(component: set[str]) -> list[str]:
        start = min(component, key=position.__getitem__)
        path, seen, current = [start], {start}, start
        while True:
            nxt = next(t for t in adjacency.get(current, []) if t in component)
            if nxt == start or nxt in seen:
                return path[path.index(nxt) :] if nxt != start else path
            path.append(nxt)
            seen.add(nxt)
            current = nxt

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)

    for root in nodes:
        if root in index:
            continue
        visit(root)
        # (node, its successors still to look at): the call stack of the recursive version
        work = [(root, iter(adjacency.get(root, [])))]
        while work:
            v, successors = work[-1]
            w = next(successors, None)
            if w is not None:
                if w not in index:
                    visit(w)
                    work.append((w, iter(adjacency.get(w, []))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()  # every successor of v done: v's component is complete, if it roots one
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                component: set[str] = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.add(w)
                    if w == v:
                        break
                if len(component) > 1 or v in adjacency.get(v, []):
                    cycles.append(component_cycle(component))
    return cycles


def topological_order(nodes: list[str], adjacency: Mapping[str, list[str]]) -> list[str]:
    """Kahn's algorithm, stable in document order (the ready node first in the document
    goes first); nodes on cycles are left out."""
    indegree = dict.fromkeys(nodes, 0)
    for targets in adjacency.values():
        for t in targets:
            indegree[t] += 1
    position = {n: i for i, n in enumerate(nodes)}
    ready = [position[n] for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        n = nodes[heapq.heappop(ready)]
        order.append(n)
        for t in adjacency.get(n, []):
            indegree[t] -= 1
            if indegree[t] == 0:
                heapq.heappush(ready, position[t])
    return order


def _infer_schemas(
    validated: dict[str, ValidatedNode],
    order: list[str],
    skip: set[str] | None = None,
    connectors: ConnectorContext | None = None,
) -> list[ValidationIssue]:
    """Schemas in topological order; a node downstream of a failed one is not checked (its
    input is unknown), so one mistake gives one error. A node whose schema is in its data
    is read through ``connectors`` only (None: unknown, and so is what is downstream)."""
    errors: list[ValidationIssue] = []
    for node_id in order:
        vn = validated.get(node_id)
        if vn is None or (skip is not None and node_id in skip):
            continue
        reads = vn.node_type.infer_reads_data
        if reads and connectors is None:
            continue  # unknown without reading: downstream is not checked either
        if not vn.node_type.variadic_inputs and set(vn.node_type.inputs) - set(vn.inputs):
            continue  # an input is missing: reported as such, nothing to infer from
        inputs: dict[str, pl.Schema] = {}
        known = True
        for port, edge in vn.inputs.items():
            upstream = validated[edge.source].output_schemas
            if upstream is None or edge.source_port not in upstream:
                known = False
                break
            inputs[port] = upstream[edge.source_port]
        if not known:
            continue
        vn.input_schemas = inputs
        try:
            if reads and connectors is not None:
                vn.output_schemas = vn.node_type.read_schema(vn.params, inputs, connectors)
            else:
                vn.output_schemas = vn.node_type.infer_schema(vn.params, inputs)
        except SchemaUnknownError:
            continue
        except SchemaError as e:
            errors.append(
                ValidationIssue(e.code, str(e), node_id=node_id, field=e.field, column=e.column)
            )
        except Exception as e:  # a node type's bug must still name the node
            errors.append(
                ValidationIssue("schema_error", f"{type(e).__name__}: {e}", node_id=node_id)
            )
    return errors
