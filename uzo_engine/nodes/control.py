"""Control flow: router (rows to `true`/`false`), branch (run downstream only when a
condition on the input holds), loop (a sub-workflow per item/partition of the input)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
from pydantic import Field, field_validator

from uzo_engine.expressions import ExpressionError, check, compile_expression, sql_name
from uzo_engine.nodes.base import NodeType, Params, SchemaError, require_columns
from uzo_engine.nodes.types import to_arrow, to_polars

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pyarrow as pa

    from uzo_engine.plan import StepContext


def _check_expr(v: str) -> str:
    check(v)
    return v


def _condition(condition: str, schema: Mapping[str, pl.DataType]) -> pl.Expr:
    """The compiled boolean condition over ``schema`` (SchemaError if it is not one)."""
    require_columns(schema, check(condition))
    try:
        compiled = compile_expression(condition, schema)
    except ExpressionError as e:
        raise SchemaError(str(e), code="expression_error") from None
    if not isinstance(compiled.dtype, (pl.Boolean, pl.Null)):
        raise SchemaError(
            f"condition {condition!r} is {sql_name(compiled.dtype)}, not BOOLEAN",
            code="type_mismatch",
        )
    return compiled.expr


def _check_boolean(condition: str, schema: Mapping[str, pl.DataType]) -> None:
    _condition(condition, schema)


# ---------------------------------------------------------------- router


class RouterParams(Params):
    condition: str = Field(description="SQL predicate; true rows go to `true`, the rest to `false`")

    _check = field_validator("condition")(_check_expr)


class RouterNode(NodeType[RouterParams]):
    name = "router"
    Params = RouterParams
    outputs = ("true", "false")
    description = "Send rows where a condition holds to `true`, the others (incl. NULL) to `false`."

    def referenced_columns(self, params: RouterParams) -> dict[str, tuple[str, ...]]:
        return {"in": check(params.condition)}

    def infer_schema(
        self, params: RouterParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        _check_boolean(params.condition, inputs["in"])
        return {"true": inputs["in"], "false": inputs["in"]}

    def run(
        self, params: RouterParams, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        df = to_polars(inputs["in"])
        condition = _condition(params.condition, df.schema)
        mask = df.select(condition.fill_null(False).alias("m"))
        keep = mask["m"]
        return {"true": to_arrow(df.filter(keep)), "false": to_arrow(df.filter(~keep))}


# ---------------------------------------------------------------- branch

BRANCH_VARIABLES = ("row_count", "column_count")


class BranchParams(Params):
    condition: str = Field(
        "row_count > 0",
        description="SQL predicate over the input's `row_count` and `column_count`",
    )

    @field_validator("condition")
    @classmethod
    def _vars(cls, v: str) -> str:
        unknown = [c for c in check(v) if c not in BRANCH_VARIABLES]
        if unknown:
            raise ValueError(f"unknown variable {unknown[0]!r}; use {', '.join(BRANCH_VARIABLES)}")
        return v


class BranchNode(NodeType[BranchParams]):
    name = "branch"
    Params = BranchParams
    description = "Pass the input on only when a condition holds; otherwise downstream is skipped."

    def infer_schema(
        self, params: BranchParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        _check_boolean(params.condition, {v: pl.Int64() for v in BRANCH_VARIABLES})
        return {"out": inputs["in"]}

    def holds(self, params: BranchParams, table: pa.Table) -> bool:
        facts = pl.DataFrame({"row_count": [table.num_rows], "column_count": [table.num_columns]})
        value = facts.select(_condition(params.condition, facts.schema).alias("c"))["c"][0]
        return bool(value)

    def run(
        self, params: BranchParams, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        table = inputs["in"]
        return {"out": table} if self.holds(params, table) else {}
