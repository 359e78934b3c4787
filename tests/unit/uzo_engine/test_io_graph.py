"""The workflow document model, sources/sinks, lineage and profiles."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from tests.unit.uzo_engine.helpers import (
    chain,
    confined,
    edge,
    node,
    operator_ctx,
    run1,
    tenant_ctx,
    values,
)
from uzo_engine.graph import WorkflowGraph, sql_name, workflow_json_schema
from uzo_engine.lineage import ColumnRef, trace_to_sources, workflow_lineage
from uzo_engine.profile import profile_table
from uzo_engine.runtime.local import run_workflow
from uzo_engine.validation import validate_workflow, validation_errors

if TYPE_CHECKING:
    from pathlib import Path


def test_document_round_trip_keeps_canvas_fields_and_checks_what_it_reads() -> None:
    doc = chain(node("a", "values", label="A", rows=[{"x": 1}]), node("b", "limit", n=1))
    graph = WorkflowGraph.model_validate(doc)
    assert json.loads(graph.model_dump_json(exclude_none=True)) == doc | {
        "nodes": [
            n | {"data": n["data"] | {"settings": {"retries": 0, "retry_backoff_seconds": 1.0}}}
            for n in doc["nodes"]
        ]
    }
    # the canvas's own fields are kept as sent; what the engine reads is still checked
    drawn = {"id": "a", "data": {"nodeType": "x", "color": "red"}, "selected": True}
    kept = WorkflowGraph.model_validate({"nodes": [drawn]}).nodes[0]
    assert kept.model_dump()["selected"] is True
    assert kept.data.model_dump()["color"] == "red"
    for bad, field in (
        ({"nodes": [{"id": "a", "data": {"nodeType": "x"}, "position": {"x": "1", "y": 0}}]},
         "position"),
        ({"nodes": [{"id": "a", "data": {"nodeType": "x", "settings": {"retry": 1}}}]}, "retry"),
        ({"nodes": [], "egdes": []}, "egdes"),
        ({"viewport": {"x": 0, "y": 0, "zoom": 1, "zom": 2}}, "zom"),
    ):  # fmt: skip
        with pytest.raises(ValidationError, match=field):
            WorkflowGraph.model_validate(bad)
    schema = workflow_json_schema()
    assert schema["title"] == "UZO workflow"
    assert schema["$defs"]["Node"]["additionalProperties"] is True
    assert schema["$defs"]["NodeSettings"]["additionalProperties"] is False
    assert schema["additionalProperties"] is False
    assert sql_name("Orders 2024!") == "orders_2024"
    assert sql_name("2024") == "t_2024"


def test_values_node_types_and_empty_tables() -> None:
    out = run1(
        "values",
        {"rows": [{"d": "2024-01-02", "n": 1}, {"n": None, "s": "x"}], "schema": {"d": "date"}},
    )
    assert out.to_pylist() == [
        {"d": dt.date(2024, 1, 2), "n": 1, "s": None},
        {"d": None, "n": None, "s": "x"},
    ]
    empty = run1("values", {"schema": {"a": "int64", "b": "decimal(10,2)"}})
    assert empty.num_rows == 0
    assert empty.schema.field("b").type == pa.decimal128(10, 2)
    errors = validation_errors({"nodes": [node("v", "values")], "edges": []})
    assert errors[0].code == "invalid_config"


def test_parquet_source_pushdown_preview_and_sink(tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": list(range(100)), "v": [i * 1.5 for i in range(100)]}), src)
    out = tmp_path / "out.parquet"
    doc = chain(
        node("s", "parquet_source", path=str(src)),
        node("f", "filter", condition="id % 10 = 0"),
        node("d", "derive", columns={"w": "v * 2"}),
        node("w", "parquet_sink", path=str(out)),
    )
    result = run_workflow(doc, ctx=tenant_ctx(tmp_path))
    assert result.status == "succeeded", result.error
    assert [s.node_ids for s in result.plan.steps.values()] == [("s", "f", "d"), ("w",)]
    written = pq.read_table(out)
    assert written.num_rows == 10
    assert written.column("w").to_pylist()[1] == 30.0
    assert result.results["w"].rows_in == 10
    preview = run_workflow(doc, ctx=tenant_ctx(tmp_path, preview_limit=25))
    assert preview.table("d").num_rows == 3  # ids 0, 10, 20 among the first 25 rows
    missing = validation_errors(
        chain(
            node("s", "parquet_source", path=str(tmp_path / "no")),
            node("f", "filter", condition="id > 0"),
        ),
        connectors=confined(tmp_path),
    )
    assert [(e.code, e.node_id) for e in missing] == [("source_error", "s")]


def test_connector_source_and_sink_through_uzo_connectors(tmp_path: Path) -> None:
    pytest.importorskip("uzo_connectors.registry")
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}), tmp_path / "in.parquet")
    config = {"root": str(tmp_path)}
    doc = chain(
        node(
            "s",
            "source",
            connector="file",
            config=config,
            dataset="in.parquet",
            columns=["id", "name"],
            schema={"id": "int64", "name": "string"},
        ),
        node("f", "filter", condition="id >= 2"),
        node(
            "w",
            "sink",
            connector="file",
            connector_id="files",
            dataset="out.parquet",
            mode="overwrite",
        ),
    )
    result = run_workflow(doc, ctx=tenant_ctx(tmp_path, connector_configs={"files": config}))
    assert result.status == "succeeded", result.error
    assert pq.read_table(tmp_path / "out.parquet").to_pylist() == [
        {"id": 2, "name": "b"},
        {"id": 3, "name": "c"},
    ]
    limited = run_workflow(
        doc, ctx=tenant_ctx(tmp_path, preview_limit=1, connector_configs={"files": config})
    )
    assert limited.results["s"].rows_out == 1
    unknown = run_workflow(chain(node("s", "source", connector="nope", dataset="x")))
    assert "unknown connector type 'nope'" in (unknown.error or "")


SOURCE_PREDICATES = [
    "x / 2 = 1",  # Arrow divides integers as integers (was pushed down: x = 3 passed)
    "substr(s, -2) = 'ef'",  # a negative start counts from the end (Polars SQL: no rows)
    "x = '3'",  # the string literal becomes the column's type (Polars SQL: an error)
    "round(f) = 3",  # half away from zero (Polars: half to even)
    "x > 1 AND substr(s, -2, 2) = 'ef'",  # pushed in part, the rest filtered by the engine
    "NOT (x IN (3, 2)) OR s IS NULL",
    "f > 1e300",  # NaN is the greatest number
]


@pytest.mark.parametrize("predicate", SOURCE_PREDICATES)
def test_source_predicates_have_duckdbs_semantics_through_the_file_connector(
    tmp_path: Path, predicate: str
) -> None:
    """One SQL dialect: the file connector pushes down only what Arrow answers as DuckDB
    does; the engine's source node filters the rest with the engine's own compiler."""
    import duckdb

    table = pa.table(
        {
            "id": [1, 2, 3, 4, 5],
            "x": [-7, 3, 2, None, 6],
            "s": ["abcdef", "xy", " a ", None, "zzef"],
            "f": [2.5, 3.5, float("nan"), None, 3.0],
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    duck = duckdb.connect()
    duck.register("t", table)
    expected = [
        r[0] for r in duck.execute(f"SELECT id FROM t WHERE {predicate} ORDER BY id").fetchall()
    ]

    def read(**extra: Any) -> list[int]:
        source = node(
            "s", "source", connector="file", config={"root": str(tmp_path)},
            dataset="t.parquet", predicate=predicate, **extra,
        )  # fmt: skip
        result = run_workflow(chain(source), ctx=tenant_ctx(tmp_path))
        assert result.status == "succeeded", result.error
        return sorted(result.table("s").column("id").to_pylist())

    assert read() == expected
    assert read(columns=["id"]) == expected  # the predicate's columns are read anyway
    assert read(limit=1) == expected[:1]  # the limit counts rows that pass the predicate


def test_source_predicates_are_validated_as_uzo_expressions() -> None:
    errors = validation_errors(
        chain(node("s", "source", connector="file", dataset="t", predicate="x >"))
    )
    assert errors
    assert errors[0].node_id == "s"
    typed = chain(
        node(
            "s", "source", connector="file", dataset="t", predicate="x + 1",
            schema={"x": "int64"},
        )
    )  # fmt: skip
    assert any("not BOOLEAN" in e.message for e in validation_errors(typed))


def test_connector_nodes_use_the_callers_connector_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Source nodes build their connector with the step context's connector context; the
    operator's (the CLI's) comes from the settings: no ambient credentials unless
    UZO_CONNECTORS_AMBIENT_CREDENTIALS allows the type, and the endpoint policy of
    UZO_CONNECTORS_* (nothing here reaches the network)."""
    doc = chain(
        node(
            "s",
            "source",
            connector="s3",
            config={"bucket": "lake", "endpoint_url": "http://127.0.0.1:9"},
            dataset="x.parquet",
        )
    )
    monkeypatch.delenv("UZO_CONNECTORS_AMBIENT_CREDENTIALS", raising=False)
    refused = run_workflow(doc, ctx=operator_ctx())
    assert "access_key_id" in (refused.error or ""), refused.error
    monkeypatch.setenv("UZO_CONNECTORS_AMBIENT_CREDENTIALS", "s3")
    allowed = run_workflow(doc, ctx=operator_ctx())  # past the credentials, not the policy
    assert "loopback" in (allowed.error or ""), allowed.error
    # a step context that names no connector context is locked down: no ambient identity
    default = run_workflow(doc)
    assert "access_key_id" in (default.error or ""), default.error


def test_lineage_follows_expressions_renames_joins_and_aggregates() -> None:
    doc = {
        "nodes": [
            values("o", pa.table({"oid": [1], "cust": [1], "price": [2.0], "qty": [3]})),
            values("c", pa.table({"cust": [1], "name": ["a"]})),
            node("d", "derive", columns={"total": "price * qty", "big": "total > 5"}),
            node("j", "join", on=["cust"]),
            node("s", "select", rename={"name": "customer"}),
            node(
                "a",
                "aggregate",
                group_by=["customer"],
                aggregations=[{"func": "sum", "column": "total", "alias": "revenue"}],
            ),
        ],
        "edges": [
            edge("o", "d"),
            edge("d", "j", target_handle="left"),
            edge("c", "j", target_handle="right"),
            edge("j", "s"),
            edge("s", "a"),
        ],
    }
    wf = validate_workflow(doc)
    assert trace_to_sources(wf, "a", "revenue") == {ColumnRef("o", "price"), ColumnRef("o", "qty")}
    assert trace_to_sources(wf, "a", "customer") == {ColumnRef("c", "name")}
    assert trace_to_sources(wf, "d", "big") == {ColumnRef("o", "price"), ColumnRef("o", "qty")}
    assert trace_to_sources(wf, "j", "cust") == {ColumnRef("o", "cust"), ColumnRef("c", "cust")}
    edges = workflow_lineage(wf)
    assert any(
        e.source == ColumnRef("j", "name") and e.target == ColumnRef("s", "customer") for e in edges
    )


def test_profile_of_a_table() -> None:
    t = pa.table(
        {
            "n": pa.array([1, 2, None, 2]),
            "s": ["a", None, "b", "a"],
            "d": [dt.date(2024, 1, i) for i in (1, 2, 3, 4)],
            "b": [True, False, None, True],
        }
    )
    p = profile_table(t)
    assert p["row_count"] == 4
    assert p["columns"]["n"] == {
        "type": "int64",
        "null_count": 1,
        "distinct_estimate": 2,
        "min": 1,
        "max": 2,
        "mean": pytest.approx(5 / 3),
    }
    assert p["columns"]["s"]["min"] == "a"
    assert p["columns"]["d"]["max"] == "2024-01-04"
    assert p["columns"]["b"]["null_count"] == 1
    assert profile_table(t.slice(0, 0))["columns"]["n"]["min"] is None


def test_a_saved_connectors_fields_win_over_the_nodes_inline_config(tmp_path: Path) -> None:
    """An inline field that differs from the saved connector's (here its root) fails the
    node naming the field; an inline value equal to the saved one runs."""
    pq.write_table(pa.table({"id": [1, 2]}), tmp_path / "in.parquet")
    other = tmp_path / "other"
    other.mkdir()

    def read_with_inline_root(root: Path) -> Any:
        source = node(
            "s",
            "source",
            connector="file",
            connector_id="files",
            config={"root": str(root)},
            dataset="in.parquet",
        )
        saved = {"files": {"root": str(tmp_path)}}
        return run_workflow(chain(source), ctx=tenant_ctx(tmp_path, connector_configs=saved))

    redirected = read_with_inline_root(other)
    assert redirected.status == "failed"
    assert "config.root" in (redirected.error or "")
    assert "saved connector 'files'" in (redirected.error or "")
    same = read_with_inline_root(tmp_path)
    assert same.status == "succeeded", same.error
    assert same.results["s"].rows_out == 2
