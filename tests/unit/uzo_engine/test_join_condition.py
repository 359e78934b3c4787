"""The join node's ``condition``: non-equi joins over both inputs, checked against DuckDB."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from pydantic import ValidationError

from tests.unit.uzo_engine.helpers import assert_same, duck, run_node
from uzo_engine.nodes.registry import get_node_type
from uzo_engine.nodes.types import polars_schema
from uzo_engine.runtime.local import run_workflow
from uzo_engine.validation import WorkflowValidationError, validate_workflow

L = pa.table(
    {
        "id": pa.array([1, 2, 3, 4, 5], pa.int32()),
        "amount": [10.0, None, 7.0, 2.5, 100.0],
        "x": pa.array([1, 2, 3, None, 5], pa.int64()),
        "name": ["a", "b", "c", "d", "e"],
    }
)
R = pa.table(
    {
        "tid": pa.array([1, 2, 3], pa.int64()),
        "threshold": pa.array([5, 8, None], pa.int64()),  # integers against DOUBLE amounts
        "hi": [9.0, 50.0, 1.0],
        "x": pa.array([2, None, 3], pa.int64()),
    }
)
# our output names: the right `x` clashes with the left one and gets the suffix
COLUMNS = "l.id, l.amount, l.x, l.name, r.tid, r.threshold, r.hi, r.x AS x_right"
CONDITIONS = [
    "l.amount > r.threshold",
    "l.amount BETWEEN r.threshold AND r.hi",
    "l.x = r.x AND l.amount < r.threshold * 2",
    "l.amount > r.threshold OR l.x = r.x",
    "l.x < r.x AND l.name <> 'c'",
    "coalesce(l.amount, 0) >= r.hi - 1",
]
SQL_JOIN = {"inner": "JOIN", "left": "LEFT JOIN", "right": "RIGHT JOIN", "full": "FULL JOIN"}


@pytest.mark.parametrize("how", list(SQL_JOIN))
@pytest.mark.parametrize("condition", CONDITIONS)
def test_condition_joins_match_duckdb(how: str, condition: str) -> None:
    got = run_node("join", {"how": how, "condition": condition}, {"left": L, "right": R})["out"]
    expected = duck(f"SELECT {COLUMNS} FROM l {SQL_JOIN[how]} r ON {condition}", l=L, r=R)
    assert got.column_names == expected.column_names
    assert got.num_rows == expected.num_rows
    assert_same(got, expected)


def test_an_outer_condition_join_keeps_the_rows_without_a_match() -> None:
    cfg = {"how": "left", "condition": "l.amount > r.hi"}
    got = run_node("join", cfg, {"left": L, "right": R})["out"].to_pylist()
    unmatched = sorted(r["id"] for r in got if r["tid"] is None)
    assert unmatched == [2]  # a NULL amount matches nothing (2.5 > 1.0 matches band 3)
    assert {r["id"] for r in got} == {1, 2, 3, 4, 5}


def test_suffix_names_the_clashing_right_columns() -> None:
    cfg = {"condition": "l.x = r.x", "suffix": "_r"}
    got = run_node("join", cfg, {"left": L, "right": R})["out"]
    assert got.column_names == ["id", "amount", "x", "name", "tid", "threshold", "hi", "x_r"]
    assert sorted(got.column("id").to_pylist()) == [2, 3]


def test_in_a_workflow_after_a_fused_filter() -> None:
    def node(node_id: str, node_type: str, config: dict[str, Any]) -> dict[str, Any]:
        position = {"x": 0, "y": 0}
        data = {"nodeType": node_type, "config": config}
        return {"id": node_id, "type": "default", "position": position, "data": data}

    doc = {
        "nodes": [
            node("orders", "values", {"rows": L.to_pylist()}),
            node("bands", "values", {"rows": R.to_pylist()}),
            node("some", "filter", {"condition": "id > 1"}),
            node("j", "join", {"condition": "l.amount BETWEEN r.threshold AND r.hi"}),
        ],
        "edges": [
            {"id": "e1", "source": "orders", "target": "some"},
            {"id": "e2", "source": "some", "target": "j", "targetHandle": "left"},
            {"id": "e3", "source": "bands", "target": "j", "targetHandle": "right"},
        ],
        "viewport": {"x": 0, "y": 0, "zoom": 1},
    }
    result = run_workflow(doc)
    assert result.status == "succeeded", result.error
    got = result.table("j")
    expected = duck(
        f"SELECT {COLUMNS} FROM (SELECT * FROM l WHERE id > 1) l "
        "JOIN r ON l.amount BETWEEN r.threshold AND r.hi",
        l=L,
        r=R,
    )
    assert_same(got, expected)


# -- validation ------------------------------------------------------------------------------


def _workflow(config: dict[str, Any]) -> dict[str, Any]:
    def values(node_id: str, table: pa.Table) -> dict[str, Any]:
        data = {"nodeType": "values", "config": {"rows": table.to_pylist()}}
        return {"id": node_id, "type": "default", "position": {"x": 0, "y": 0}, "data": data}

    join = {"nodeType": "join", "config": config}
    return {
        "nodes": [
            values("a", L),
            values("b", R),
            {"id": "bands_join", "type": "default", "position": {"x": 0, "y": 0}, "data": join},
        ],
        "edges": [
            {"id": "e1", "source": "a", "target": "bands_join", "targetHandle": "left"},
            {"id": "e2", "source": "b", "target": "bands_join", "targetHandle": "right"},
        ],
        "viewport": {"x": 0, "y": 0, "zoom": 1},
    }


def _error(config: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(WorkflowValidationError) as caught:
        validate_workflow(_workflow(config))
    (error,) = caught.value.errors
    assert error.node_id == "bands_join"
    return error.to_dict()


@pytest.mark.parametrize(
    ("condition", "code", "message", "column"),
    [
        (
            "l.nope > r.threshold",
            "missing_column",
            "column l.nope does not exist in the left",
            "nope",
        ),
        ("l.amount > r.amount", "missing_column", "r.amount does not exist in the right", "amount"),
        ("l.amount + r.hi", "type_mismatch", "is DOUBLE, not BOOLEAN", None),
        ("l.name > 5", "expression_error", "join condition 'l.name > 5'", None),
    ],
)
def test_schema_errors_name_the_node_and_the_condition(
    condition: str, code: str, message: str, column: str | None
) -> None:
    error = _error({"condition": condition})
    assert error["code"] == code
    assert error["field"] == "config.condition"
    assert message in error["message"]
    assert error.get("column") == column


@pytest.mark.parametrize(
    ("config", "field", "message"),
    [
        ({"condition": "amount > r.hi"}, "config.condition", "name it as l.amount (left input)"),
        ({"condition": "t.amount > r.hi"}, "config.condition", "column t.amount"),
        ({"condition": "l.amount >"}, "config.condition", "cannot parse"),
        ({"how": "semi", "condition": "l.x = r.x"}, "config", "not 'semi'"),
        ({"how": "cross", "condition": "l.x = r.x"}, "config", "not 'cross'"),
        ({"on": ["x"], "condition": "l.x < r.x"}, "config", "not both"),
        ({"condition": "l.x < r.x", "maintain_order": True}, "config", "maintain_order"),
    ],
)
def test_config_errors_name_the_field(config: dict[str, Any], field: str, message: str) -> None:
    error = _error(config)
    assert error["code"] == "invalid_config"
    assert error["field"] == field
    assert message in error["message"]
    with pytest.raises(ValidationError):
        get_node_type("join").parse_params(config)


def test_referenced_columns_by_side() -> None:
    nt = get_node_type("join")
    params = nt.parse_params({"condition": "l.amount > r.threshold AND l.x = r.x"})
    assert nt.referenced_columns(params) == {"left": ("amount", "x"), "right": ("threshold", "x")}


def test_quoted_names_and_lineage() -> None:
    left = L.rename_columns(["id", "unit price", "x", "name"])
    cfg = {"condition": 'l."unit price" >= r.hi'}
    got = run_node("join", cfg, {"left": left, "right": R})["out"]
    expected = duck(
        "SELECT l.*, r.tid, r.threshold, r.hi, r.x AS x_right "
        'FROM l JOIN r ON l."unit price" >= r.hi',
        l=left,
        r=R,
    )
    assert_same(got, expected)
    nt = get_node_type("join")
    params = nt.parse_params(cfg)
    schemas = {"left": polars_schema(left.schema), "right": polars_schema(R.schema)}
    lineage = nt.column_lineage(params, schemas, nt.infer_schema(params, schemas))["out"]
    assert lineage["unit price"] == (("left", "unit price"),)
    assert lineage["x_right"] == (("right", "x"),)
    with pytest.raises(ValidationError, match=r'name it as l\."unit price"'):
        nt.parse_params({"condition": '"unit price" > r.hi'})
