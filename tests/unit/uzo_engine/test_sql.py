"""The sql node: DuckDB over named inputs, in a connection that cannot escape."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from pydantic import ValidationError

from tests.unit.uzo_engine.helpers import assert_same, duck, edge, node, run_node, values
from uzo_engine.nodes.base import SchemaError
from uzo_engine.nodes.registry import get_node_type
from uzo_engine.nodes.sql import SqlPermissionError, locked_connection, run_sql
from uzo_engine.runtime.local import run_workflow
from uzo_engine.settings import get_engine_settings
from uzo_engine.validation import validation_errors

ORDERS = pa.table({"id": [1, 2, 3], "cust": [10, 20, 10], "amount": [5.0, None, 7.5]})
CUSTS = pa.table({"cust": [10, 20], "name": ["ann", "bob"]})


def test_sql_over_named_inputs_matches_duckdb() -> None:
    query = (
        "SELECT c.name, sum(o.amount) AS total FROM orders o JOIN customers c "
        "USING (cust) GROUP BY c.name"
    )
    got = run_node("sql", {"query": query}, {"orders": ORDERS, "customers": CUSTS})["out"]
    assert_same(got, duck(query, orders=ORDERS, customers=CUSTS))


def test_inputs_are_named_by_handle_or_upstream_label() -> None:
    doc = {
        "nodes": [
            values("o", ORDERS) | {"data": values("o", ORDERS)["data"] | {"label": "Orders 2024"}},
            values("c", CUSTS),
            node(
                "q", "sql", query="SELECT count(*) AS n FROM orders_2024 JOIN people USING (cust)"
            ),
        ],
        "edges": [edge("o", "q"), edge("c", "q", target_handle="people")],
    }
    result = run_workflow(doc)
    assert result.status == "succeeded", result.error
    assert result.table("q").to_pylist() == [{"n": 3}]


def test_sql_schema_is_inferred_and_missing_columns_are_named() -> None:
    doc = {
        "nodes": [
            values("t", ORDERS),
            node("q", "sql", query="SELECT idd FROM t"),
            node("f", "filter", condition="id > 1"),
        ],
        "edges": [edge("t", "q"), edge("t", "f")],
    }
    errors = validation_errors(doc)
    assert [(e.code, e.node_id, e.column) for e in errors] == [("missing_column", "q", "idd")]
    nt = get_node_type("sql")
    from uzo_engine.nodes.types import polars_schema

    schema = nt.infer_schema(
        nt.parse_params({"query": "SELECT id, amount * 2 AS a FROM t"}),
        {"t": polars_schema(ORDERS.schema)},
    )
    assert list(schema["out"]) == ["id", "a"]


def test_only_one_query_is_accepted() -> None:
    nt = get_node_type("sql")
    for bad, msg in [
        ("SELECT 1; SELECT 2", "exactly one"),
        ("DROP TABLE t", "only a query"),
        ("COPY t TO '/tmp/x.csv'", "only a query"),
        ("SELEC 1", "cannot parse|only a query"),
    ]:
        with pytest.raises(ValidationError, match=msg):
            nt.parse_params({"query": bad})


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_parquet('../../etc/x.parquet')",
        "SELECT * FROM read_csv('https://example.com/x.csv')",
    ],
)
def test_reading_files_or_network_is_blocked(query: str) -> None:
    with pytest.raises((SqlPermissionError, duckdb.Error), match=r"(?i)not allowed|does not exist"):
        run_sql(query, {})


@pytest.mark.parametrize(
    "statement",
    [
        "COPY (SELECT 1) TO '/tmp/uzo_leak.csv'",
        "ATTACH '/tmp/uzo_leak.duckdb' AS x",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "SET lock_configuration = false",
    ],
)
def test_locked_connection_refuses_escape_hatches(statement: str) -> None:
    con = locked_connection()
    try:
        with pytest.raises(duckdb.Error, match=r"(?i)permission|locked|disabled"):
            con.execute(statement)
    finally:
        con.close()


def test_blocked_read_fails_the_node_with_a_clear_error() -> None:
    doc = {
        "nodes": [
            values("t", ORDERS),
            node("q", "sql", query="SELECT t.*, p.* FROM t, read_csv('/etc/passwd') p"),
        ],
        "edges": [edge("t", "q")],
    }
    errors = validation_errors(doc)
    assert errors[0].node_id == "q"
    assert "not allowed in UZO SQL" in errors[0].message
    result = run_workflow(
        doc | {"nodes": [values("t", ORDERS), node("q", "sql", query="SELECT * FROM t")]}
    )
    assert result.status == "succeeded"


def test_queries_cannot_see_the_shared_temp_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DuckDB lets a locked query read its temp directory; by default that is `.tmp` under
    # the working directory, shared by every query (another run's spill files, or anything
    # else put there). Each sql execution gets a private one instead.
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "other_run.csv").write_text("secret\n42\n")
    monkeypatch.chdir(tmp_path)
    for query in ("SELECT * FROM glob('.tmp/*')", "SELECT * FROM read_csv('.tmp/other_run.csv')"):
        with pytest.raises(SqlPermissionError, match="not allowed in UZO SQL"):
            run_sql(query, {})


def test_each_execution_has_its_own_temp_directory_and_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UZO_SQL_MEMORY_LIMIT_MB", "300")
    monkeypatch.setenv("UZO_SQL_THREADS", "1")
    monkeypatch.setenv("UZO_SQL_TEMP_ROOT", str(tmp_path / "spill"))
    get_engine_settings.cache_clear()
    try:
        query = (
            "SELECT current_setting('temp_directory') AS t, current_setting('memory_limit') AS m,"
            " current_setting('threads') AS n"
        )
        first = run_sql(query, {}).to_pylist()[0]
        second = run_sql(query, {}).to_pylist()[0]
    finally:
        get_engine_settings.cache_clear()
    assert first["t"] != second["t"]
    assert Path(first["t"]).parent == tmp_path / "spill"
    assert not Path(first["t"]).exists()  # removed when the connection closed
    assert first["m"].startswith(("286", "300"))  # DuckDB shows MiB ("286.1 MiB")
    assert int(first["n"]) == 1


def test_a_query_over_its_memory_limit_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UZO_SQL_MEMORY_LIMIT_MB", "64")
    get_engine_settings.cache_clear()
    try:
        with pytest.raises(MemoryError, match="UZO_SQL_MEMORY_LIMIT_MB=64"):
            run_sql(
                "SELECT list(repeat('x', 1000)) FROM range(400000)",  # ~400 MB, cannot spill
                {},
            )
    finally:
        get_engine_settings.cache_clear()


def test_schema_inference_is_kept_per_query_and_input_schemas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import polars as pl

    from uzo_engine.nodes import sql as sql_module

    node_type = get_node_type("sql")
    runs: list[str] = []
    real = sql_module.run_sql

    def counting(query: str, tables: dict[str, pa.Table]) -> pa.Table:
        runs.append(query)
        return real(query, tables)

    monkeypatch.setattr(sql_module, "run_sql", counting)
    monkeypatch.setattr(sql_module, "_schemas", type(sql_module._schemas)())
    params = node_type.Params(query="SELECT a, a * 2 AS b FROM t")
    ints = {"t": pl.Schema({"a": pl.Int64})}
    first = node_type.infer_schema(params, ints)
    again = node_type.infer_schema(params, ints)
    assert first == again == {"out": pl.Schema({"a": pl.Int64, "b": pl.Int64})}
    assert len(runs) == 1  # the second answer came from the cache
    floats = node_type.infer_schema(params, {"t": pl.Schema({"a": pl.Float64})})
    assert floats["out"]["b"] == pl.Float64  # other input schemas: inferred afresh
    assert len(runs) == 2
    # a refusal is kept too, and raised afresh each time with its code and column
    bad = node_type.Params(query="SELECT missing FROM t")
    for _ in range(2):
        with pytest.raises(SchemaError) as refused:
            node_type.infer_schema(bad, ints)
        assert refused.value.code == "missing_column"
        assert refused.value.column == "missing"
    assert len(runs) == 3
    # bounded: the oldest entries go
    monkeypatch.setattr(sql_module, "SCHEMA_CACHE_SIZE", 2)
    node_type.infer_schema(node_type.Params(query="SELECT 1 AS x"), {})
    assert len(sql_module._schemas) == 2
