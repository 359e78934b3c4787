"""Node-type registry: built-ins declared as ``"module:Class"`` strings, plus plugins.

Plugins register through the entry-point group ``uzo.node_types`` (name ->
``module:Class``). Nothing is imported until a type is asked for.
"""

from __future__ import annotations

import difflib
import functools
import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from uzo_engine.nodes.base import NodeType

if TYPE_CHECKING:
    from pydantic import BaseModel

ENTRY_POINT_GROUP = "uzo.node_types"

BUILTIN_NODE_TYPES: dict[str, str] = {
    # sources and sinks
    "values": "uzo_engine.nodes.io:ValuesNode",
    "parquet_source": "uzo_engine.nodes.io:ParquetSourceNode",
    "parquet_sink": "uzo_engine.nodes.io:ParquetSinkNode",
    "source": "uzo_engine.nodes.io:ConnectorSourceNode",
    "sink": "uzo_engine.nodes.io:ConnectorSinkNode",
    # row-wise transforms
    "filter": "uzo_engine.nodes.transforms:FilterNode",
    "select": "uzo_engine.nodes.transforms:SelectNode",
    "derive": "uzo_engine.nodes.transforms:DeriveNode",
    "cast": "uzo_engine.nodes.transforms:CastNode",
    "fill_null": "uzo_engine.nodes.transforms:FillNullNode",
    # wide transforms
    "sort": "uzo_engine.nodes.transforms:SortNode",
    "limit": "uzo_engine.nodes.transforms:LimitNode",
    "distinct": "uzo_engine.nodes.transforms:DistinctNode",
    "sample": "uzo_engine.nodes.transforms:SampleNode",
    "aggregate": "uzo_engine.nodes.relational:AggregateNode",
    "join": "uzo_engine.nodes.relational:JoinNode",
    "union": "uzo_engine.nodes.relational:UnionNode",
    "pivot": "uzo_engine.nodes.reshape:PivotNode",
    "unpivot": "uzo_engine.nodes.reshape:UnpivotNode",
    "window": "uzo_engine.nodes.reshape:WindowNode",
    # SQL and control flow
    "sql": "uzo_engine.nodes.sql:SqlNode",
    "router": "uzo_engine.nodes.control:RouterNode",
    "branch": "uzo_engine.nodes.control:BranchNode",
    "loop": "uzo_engine.subworkflow:LoopNode",
    "loop_input": "uzo_engine.subworkflow:LoopInputNode",
    "llm": "uzo_engine.nodes.genai:LlmNode",
}


class UnknownNodeTypeError(KeyError):
    def __init__(self, name: str, known: list[str]):
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        self.message = f"unknown node type {name!r}{hint}"
        self.close_matches = close
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@functools.cache
def _plugin_specs() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def all_specs() -> dict[str, str]:
    """Every known node type name -> ``module:Class`` (plugins cannot shadow built-ins)."""
    return {**_plugin_specs(), **BUILTIN_NODE_TYPES}


def available_node_types() -> list[str]:
    return sorted(all_specs())


@functools.cache
def get_node_type(name: str) -> NodeType[Any]:
    spec = all_specs().get(name)
    if spec is None:
        raise UnknownNodeTypeError(name, available_node_types())
    module_name, _, attr = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ImportError(f"node type {name!r} could not be loaded from {spec}: {e}") from e
    if not (isinstance(cls, type) and issubclass(cls, NodeType)):
        raise TypeError(f"node type {name!r} ({spec}) is not a NodeType subclass")
    instance: NodeType[Any] = cls()
    return instance


def node_types_json_schema() -> dict[str, dict[str, Any]]:
    """The UI form of every node type: its config JSON Schema and ports."""
    out: dict[str, dict[str, Any]] = {}
    for name in available_node_types():
        nt = get_node_type(name)
        params: type[BaseModel] = nt.Params
        out[name] = {
            "config": params.model_json_schema(),
            "inputs": list(nt.inputs),
            "outputs": list(nt.outputs),
            "variadic_inputs": nt.variadic_inputs,
            "description": nt.description,
        }
    return out
