"""Helpers for engine unit tests: workflow builders, step contexts, node runners, DuckDB
references."""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

import duckdb

from uzo_connectors.base import ConnectorContext
from uzo_connectors.settings import ConnectorSettings
from uzo_connectors.ssrf import EndpointPolicy
from uzo_engine.nodes.registry import get_node_type
from uzo_engine.nodes.types import polars_schema
from uzo_engine.plan import StepContext

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

    import pyarrow as pa


def node(
    node_id: str,
    node_type: str,
    label: str | None = None,
    settings: dict[str, Any] | None = None,
    **config: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {"nodeType": node_type, "config": config}
    if label is not None:
        data["label"] = label
    if settings is not None:
        data["settings"] = settings
    return {"id": node_id, "type": "default", "position": {"x": 0, "y": 0}, "data": data}


def edge(
    source: str, target: str, source_handle: str | None = None, target_handle: str | None = None
) -> dict[str, Any]:
    e: dict[str, Any] = {"id": f"{source}->{target}", "source": source, "target": target}
    if source_handle:
        e["sourceHandle"] = source_handle
    if target_handle:
        e["targetHandle"] = target_handle
    return e


def chain(*nodes: dict[str, Any]) -> dict[str, Any]:
    """A linear workflow of the given nodes."""
    edges = [edge(a["id"], b["id"]) for a, b in itertools.pairwise(nodes)]
    return {"nodes": list(nodes), "edges": edges, "viewport": {"x": 0, "y": 0, "zoom": 1}}


def values(node_id: str, table: pa.Table) -> dict[str, Any]:
    """A `values` node holding the rows of an Arrow table (types declared from its schema)."""
    from uzo_engine.nodes.types import dtype_text

    schema = {c: dtype_text(t) for c, t in polars_schema(table.schema).items()}
    return node(node_id, "values", rows=table.to_pylist(), schema=schema)


def confined(*roots: str | os.PathLike[str]) -> ConnectorContext:
    """A subscription's connector context: only ``roots`` on disk (relative paths in the
    first), the default endpoint policy (no loopback or private address), no ambient
    credentials."""
    return ConnectorContext(EndpointPolicy(), local_roots=tuple(str(r) for r in roots))


def tenant_ctx(
    *roots: str | os.PathLike[str], execution_id: str = "test", **fields: Any
) -> StepContext:
    """A step context confined to ``roots`` (see :func:`confined`)."""
    return StepContext(execution_id, connectors=confined(*roots), **fields)


def operator_ctx(execution_id: str = "test", **fields: Any) -> StepContext:
    """The step context of the operator's own runs, as the CLI builds it: no root limit,
    the endpoint policy and ambient types of the ``UZO_CONNECTORS_*`` environment."""
    return StepContext(execution_id, connectors=ConnectorSettings().operator_context(), **fields)


def run_node(
    node_type: str,
    config: Mapping[str, Any],
    inputs: Mapping[str, pa.Table],
    *,
    check_schema: bool = True,
) -> dict[str, pa.Table]:
    """Run one node type directly; also checks the static schema matches the real one."""
    nt = get_node_type(node_type)
    params = nt.parse_params(config)
    out = nt.run(params, inputs, StepContext(execution_id="test"))
    if check_schema:
        inferred = nt.infer_schema(params, {p: polars_schema(t.schema) for p, t in inputs.items()})
        for port, table in out.items():
            assert dict(inferred[port]) == dict(polars_schema(table.schema)), (
                f"inferred {inferred[port]} != actual {polars_schema(table.schema)}"
            )
    return out


def run1(
    node_type: str, config: Mapping[str, Any], table: pa.Table | None = None, **inputs: pa.Table
) -> pa.Table:
    ins = dict(inputs)
    if table is not None:
        ins["in"] = table
    return run_node(node_type, config, ins)["out"]


def duck(sql: str, **tables: pa.Table) -> pa.Table:
    con = duckdb.connect()
    for name, t in tables.items():
        con.register(name, t)
    return con.sql(sql).to_arrow_table()


def _norm(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 9)
    if hasattr(v, "is_finite") and hasattr(v, "as_tuple"):  # Decimal
        return round(float(v), 9)
    return v


def rows(table: pa.Table, *, sort: bool = True) -> list[tuple[Any, ...]]:
    out = [tuple(_norm(v) for v in r.values()) for r in table.to_pylist()]
    if sort:
        out.sort(
            key=lambda r: tuple((v is None, str(type(v)), v if v is not None else 0) for v in r)
        )
    return out


def assert_same(
    actual: pa.Table, expected: pa.Table, *, sort: bool = True, names: bool = True
) -> None:
    if names:
        assert actual.column_names == expected.column_names
    assert rows(actual, sort=sort) == rows(expected, sort=sort)
