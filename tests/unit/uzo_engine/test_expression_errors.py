"""Expression failures as a user meets them: refused at validation in SQL terms, or an
error at run time that names the node, the column and a value — never a wrong number."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.unit.uzo_engine.helpers import chain, node, values
from uzo_engine.runtime.local import run_workflow
from uzo_engine.validation import validation_errors

T = pa.table(
    {
        "k": pa.array([2_147_483_647, 1, None], pa.int32()),
        "q": pa.array([0, 2, 3], pa.int64()),
        "s": pa.array(["1", "x", None], pa.string()),
        "d": pa.array([None, None, None], pa.date32()),
    }
)


def derive(sql: str) -> dict[str, object]:
    return chain(values("t", T), node("c", "derive", columns={"out": sql}), node("f", "filter",
                 condition="out IS NOT NULL"))  # fmt: skip


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("k * 2", "value 4294967294 is out of range for INTEGER"),
        ("k + 1", "value 2147483648 is out of range for INTEGER"),
        ("CAST(s AS INTEGER)", "could not convert string to INTEGER (e.g. 'x')"),
        ("10 // q", "division by zero in 10 // q"),
        ("k % q", "division by zero in k % q"),
    ],
)
def test_a_failure_on_the_data_names_node_column_and_value(sql: str, fragment: str) -> None:
    result = run_workflow(derive(sql))
    assert result.status == "failed"
    error = result.error or ""
    assert "node 'c' (derive)" in error, error
    assert "'out' = " in error, error
    assert fragment in error, error


@pytest.mark.parametrize(
    "sql",
    [
        "IF(q = 0, NULL, 10 // q)",
        "CASE WHEN q = 0 THEN 0 ELSE k % q END",
        "COALESCE(1, CAST(s AS INTEGER))",
        "TRY_CAST(s AS INTEGER)",
        "1 // NULL",  # once a Polars panic
    ],
)
def test_guarded_expressions_do_not_fail(sql: str) -> None:
    assert run_workflow(derive(sql)).status == "succeeded"


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("regexp_matchess(s, 'a')", "unsupported function regexp_matchess() (did you mean"),
        ("date_part('fortnight', d)", "unsupported date part 'fortnight'"),
        ("s + 1", "no + for VARCHAR and INTEGER"),
        ("d = 1", "cannot combine values of type DATE and INTEGER"),
        ("k = 'abc'", "could not convert string 'abc' to INTEGER"),
        ("sum(k)", "aggregate function sum() is not allowed"),
        ("INTERVAL 1 MONTH", "an INTERVAL of months"),
        ("k IN (SELECT 1)", "IN (subquery) is not supported"),
    ],
)
def test_refused_at_validation_in_sql_terms_with_one_error(sql: str, fragment: str) -> None:
    errors = validation_errors(derive(sql))
    assert len(errors) == 1, [str(e) for e in errors]  # no follow-on error on the filter
    assert errors[0].node_id == "c"
    assert fragment in errors[0].message, errors[0].message


def test_a_filter_condition_must_be_boolean() -> None:
    doc = chain(values("t", T), node("f", "filter", condition="k + 1"))
    errors = validation_errors(doc)
    assert [e.node_id for e in errors] == ["f"]
    assert "is INTEGER, not BOOLEAN" in errors[0].message
