"""Single-input transforms: filter, select/rename, derive, cast, fill_null (row-wise,
fusable), and sort, limit, distinct, sample (whole-table)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from uzo_engine.expressions import ExpressionError, check, compile_expression, explain, sql_name
from uzo_engine.nodes.base import (
    ColumnSources,
    LazyNodeType,
    NodeType,
    Params,
    SchemaError,
    require_columns,
)
from uzo_engine.nodes.types import cast_expr, parse_dtype, to_arrow, to_polars

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pyarrow as pa

    from uzo_engine.plan import StepContext


def _expr_check(sql: str) -> str:
    check(sql)  # raises ExpressionError (a ValueError) -> pydantic error
    return sql


def _compile(sql: str, schema: Mapping[str, pl.DataType]) -> Any:
    """The typed expression over ``schema``; a SchemaError naming what is wrong."""
    try:
        return compile_expression(sql, schema)
    except ExpressionError as e:
        column = getattr(e, "column", None)
        code = "missing_column" if column else "expression_error"
        raise SchemaError(str(e), code=code, column=column) from None


def explain_expressions(
    expressions: Mapping[str, str], df: pl.DataFrame, error: Exception
) -> str | None:
    """Which expression failed on this data, in DuckDB's words (an overflow, a bad cast)."""
    schema = dict(df.schema)
    for name, sql in expressions.items():
        try:
            compiled = compile_expression(sql, schema)
            df.select(compiled.expr.alias(name))
        except Exception as e:
            why = explain(e) or str(e).strip().splitlines()[0]
            return f"{name!r} = {sql}: {why}"
        schema[name] = compiled.dtype
    return explain(error)


# ---------------------------------------------------------------- filter


class FilterParams(Params):
    condition: str = Field(description="SQL boolean expression; rows where it is true are kept")

    _check = field_validator("condition")(_expr_check)


class FilterNode(LazyNodeType[FilterParams]):
    name = "filter"
    Params = FilterParams
    rowwise = True
    description = "Keep the rows where a SQL condition holds."

    def referenced_columns(self, params: FilterParams) -> dict[str, tuple[str, ...]]:
        return {"in": check(params.condition)}

    def infer_schema(
        self, params: FilterParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        require_columns(inputs["in"], check(params.condition))
        compiled = _compile(params.condition, inputs["in"])
        if not isinstance(compiled.dtype, (pl.Boolean, pl.Null)):
            raise SchemaError(
                f"filter condition {params.condition!r} is {sql_name(compiled.dtype)}, not BOOLEAN",
                code="type_mismatch",
            )
        return {"out": inputs["in"]}

    def build(
        self, params: FilterParams, inputs: Mapping[str, pl.LazyFrame]
    ) -> dict[str, pl.LazyFrame]:
        lf = inputs["in"]
        compiled = _compile(params.condition, lf.collect_schema())
        return {"out": lf.filter(compiled.expr)}

    def explain_error(
        self, params: FilterParams, inputs: Mapping[str, pl.DataFrame], error: Exception
    ) -> str | None:
        return explain_expressions({"condition": params.condition}, inputs["in"], error)


# ---------------------------------------------------------------- select / rename


class SelectParams(Params):
    columns: list[str] | None = Field(None, description="columns to keep, in order (all: null)")
    drop: list[str] = Field(default_factory=list, description="columns to remove")
    rename: dict[str, str] = Field(default_factory=dict, description="old name -> new name")


class SelectNode(LazyNodeType[SelectParams]):
    name = "select"
    Params = SelectParams
    rowwise = True
    description = "Keep, drop, reorder and rename columns."

    def referenced_columns(self, params: SelectParams) -> dict[str, tuple[str, ...]]:
        return {"in": (*(params.columns or ()), *params.drop, *params.rename)}

    def build(
        self, params: SelectParams, inputs: Mapping[str, pl.LazyFrame]
    ) -> dict[str, pl.LazyFrame]:
        lf = inputs["in"]
        if params.columns is not None:
            lf = lf.select(params.columns)
        if params.drop:
            lf = lf.drop(params.drop)
        if params.rename:
            lf = lf.rename(params.rename)
        return {"out": lf}

    def column_lineage(
        self,
        params: SelectParams,
        inputs: Mapping[str, pl.Schema],
        outputs: Mapping[str, pl.Schema],
    ) -> dict[str, dict[str, ColumnSources]]:
        back = {new: old for old, new in params.rename.items()}
        return {"out": {c: (("in", back.get(c, c)),) for c in outputs["out"]}}


# ---------------------------------------------------------------- derive


class DeriveParams(Params):
    columns: dict[str, str] = Field(
        min_length=1,
        description="new (or replaced) column -> SQL expression; later ones may use earlier ones",
    )

    @field_validator("columns")
    @classmethod
    def _check_exprs(cls, v: dict[str, str]) -> dict[str, str]:
        for sql in v.values():
            check(sql)
        return v


class DeriveNode(LazyNodeType[DeriveParams]):
    name = "derive"
    Params = DeriveParams
    rowwise = True
    description = "Add or replace columns computed from SQL expressions."

    def referenced_columns(self, params: DeriveParams) -> dict[str, tuple[str, ...]]:
        defined: set[str] = set()
        needed: list[str] = []
        for name, sql in params.columns.items():
            for col in check(sql):
                if col not in defined and col not in needed:
                    needed.append(col)
            defined.add(name)
        return {"in": tuple(needed)}

    def infer_schema(
        self, params: DeriveParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        require_columns(inputs["in"], self.referenced_columns(params)["in"])
        schema = dict(inputs["in"])
        for name, sql in params.columns.items():
            schema[name] = _compile(sql, schema).dtype
        return {"out": pl.Schema(schema)}

    def build(
        self, params: DeriveParams, inputs: Mapping[str, pl.LazyFrame]
    ) -> dict[str, pl.LazyFrame]:
        lf = inputs["in"]
        schema = dict(lf.collect_schema())
        batch: list[pl.Expr] = []
        batch_names: set[str] = set()
        for name, sql in params.columns.items():
            compiled = _compile(sql, schema)
            if batch_names.intersection(compiled.columns):  # depends on this batch: new stage
                lf = lf.with_columns(batch)
                batch, batch_names = [], set()
            batch.append(compiled.expr.alias(name))
            batch_names.add(name)
            schema[name] = compiled.dtype
        return {"out": lf.with_columns(batch)}

    def explain_error(
        self, params: DeriveParams, inputs: Mapping[str, pl.DataFrame], error: Exception
    ) -> str | None:
        return explain_expressions(params.columns, inputs["in"], error)

    def column_lineage(
        self,
        params: DeriveParams,
        inputs: Mapping[str, pl.Schema],
        outputs: Mapping[str, pl.Schema],
    ) -> dict[str, dict[str, ColumnSources]]:
        sources: dict[str, ColumnSources] = {c: (("in", c),) for c in inputs["in"]}
        for name, sql in params.columns.items():
            refs: list[tuple[str, str]] = []
            for col in check(sql):
                for src in sources.get(col, ()):
                    if src not in refs:
                        refs.append(src)
            sources[name] = tuple(refs)
        return {"out": {c: sources.get(c, ()) for c in outputs["out"]}}


# ---------------------------------------------------------------- cast


class CastParams(Params):
    columns: dict[str, str] = Field(min_length=1, description="column -> type name")
    strict: bool = Field(True, description="fail on values that do not convert (else: null)")

    @field_validator("columns")
    @classmethod
    def _check_types(cls, v: dict[str, str]) -> dict[str, str]:
        for t in v.values():
            parse_dtype(t)
        return v


class CastNode(LazyNodeType[CastParams]):
    name = "cast"
    Params = CastParams
    rowwise = True
    description = "Convert columns to other types."

    def referenced_columns(self, params: CastParams) -> dict[str, tuple[str, ...]]:
        return {"in": tuple(params.columns)}

    def _exprs(self, params: CastParams, strict: bool) -> list[pl.Expr]:
        return [
            cast_expr(pl.col(c), parse_dtype(t), strict=strict) for c, t in params.columns.items()
        ]

    def build(
        self, params: CastParams, inputs: Mapping[str, pl.LazyFrame]
    ) -> dict[str, pl.LazyFrame]:
        return {"out": inputs["in"].with_columns(self._exprs(params, params.strict))}

    def explain_error(
        self, params: CastParams, inputs: Mapping[str, pl.DataFrame], error: Exception
    ) -> str | None:
        df = inputs["in"]
        for col, type_name in params.columns.items():
            converted = df.select(cast_expr(pl.col(col), parse_dtype(type_name), strict=False))
            bad = df[col].filter(converted[col].is_null() & df[col].is_not_null())
            if len(bad):
                return (
                    f"column {col!r}: value {bad[0]!r} cannot be converted to {type_name} "
                    f"({len(bad)} bad value(s))"
                )
        return None


# ---------------------------------------------------------------- fill_null

Scalar = str | int | float | bool


class FillNullParams(Params):
    values: dict[str, Scalar] = Field(default_factory=dict, description="column -> fill value")
    value: Scalar | None = Field(None, description="fill value for `columns` (all: null)")
    columns: list[str] | None = None
    strategy: Literal["forward", "backward", "min", "max", "mean", "zero", "one"] | None = None

    @model_validator(mode="after")
    def _one_mode(self) -> FillNullParams:
        modes = sum([bool(self.values), self.value is not None, self.strategy is not None])
        if modes != 1:
            raise ValueError("give exactly one of `values`, `value` or `strategy`")
        return self


class FillNullNode(LazyNodeType[FillNullParams]):
    name = "fill_null"
    Params = FillNullParams
    rowwise = True
    description = "Replace nulls by constants or a fill strategy."

    def referenced_columns(self, params: FillNullParams) -> dict[str, tuple[str, ...]]:
        return {"in": (*params.values, *(params.columns or ()))}

    def build(
        self, params: FillNullParams, inputs: Mapping[str, pl.LazyFrame]
    ) -> dict[str, pl.LazyFrame]:
        lf = inputs["in"]
        if params.values:
            exprs = [pl.col(c).fill_null(pl.lit(v)) for c, v in params.values.items()]
            return {"out": lf.with_columns(exprs)}
        cols = params.columns or lf.collect_schema().names()
        if params.strategy is not None:
            exprs = [pl.col(c).fill_null(strategy=params.strategy) for c in cols]
        else:
            exprs = [pl.col(c).fill_null(pl.lit(params.value)) for c in cols]
        return {"out": lf.with_columns(exprs)}


# ---------------------------------------------------------------- sort / limit / distinct


class SortKey(Params):
    column: str
    descending: bool = False
    nulls_last: bool = True  # SQL engines' default for ascending order


class SortParams(Params):
    by: list[SortKey | str] = Field(min_length=1)

    def sort_keys(self) -> list[SortKey]:
        return [SortKey(column=k) if isinstance(k, str) else k for k in self.by]


class SortNode(LazyNodeType[SortParams]):
    name = "sort"
    Params = SortParams
    description = "Order rows by one or more columns."

    def referenced_columns(self, params: SortParams) -> dict[str, tuple[str, ...]]:
        return {"in": tuple(k.column for k in params.sort_keys())}

    def build(
        self, params: SortParams, inputs: Mapping[str, pl.LazyFrame]
    ) -> dict[str, pl.LazyFrame]:
        keys = params.sort_keys()
        return {
            "out": inputs["in"].sort(
                [k.column for k in keys],
                descending=[k.descending for k in keys],
                nulls_last=[k.nulls_last for k in keys],
                maintain_order=True,
            )
        }


class LimitParams(Params):
    n: int = Field(ge=0)
    offset: int = Field(0, ge=0)


class LimitNode(LazyNodeType[LimitParams]):
    name = "limit"
    Params = LimitParams
    description = "Keep at most n rows (after skipping `offset`)."

    def build(
        self, params: LimitParams, inputs: Mapping[str, pl.LazyFrame]
    ) -> dict[str, pl.LazyFrame]:
        return {"out": inputs["in"].slice(params.offset, params.n)}


class DistinctParams(Params):
    subset: list[str] | None = Field(None, description="columns that define a duplicate")
    keep: Literal["first", "last", "any"] = "first"
    maintain_order: bool = Field(
        False,
        description=(
            "keep rows in the order they first appear; slower "
            "(always on with a `subset` and keep first/last)"
        ),
    )


class DistinctNode(LazyNodeType[DistinctParams]):
    name = "distinct"
    Params = DistinctParams
    description = "Remove duplicate rows (optionally by a subset of columns)."

    def referenced_columns(self, params: DistinctParams) -> dict[str, tuple[str, ...]]:
        return {"in": tuple(params.subset or ())}

    def build(
        self, params: DistinctParams, inputs: Mapping[str, pl.LazyFrame]
    ) -> dict[str, pl.LazyFrame]:
        # Without a subset the duplicates are whole identical rows: which one is kept does
        # not matter, so row order is opt-in (SQL DISTINCT promises none either). With a
        # subset, keep first/last keeps the input order as it always has.
        keyed = bool(params.subset) and params.keep != "any"
        order = params.maintain_order or keyed
        return {
            "out": inputs["in"].unique(subset=params.subset, keep=params.keep, maintain_order=order)
        }


class SampleParams(Params):
    n: int | None = Field(None, ge=0)
    fraction: float | None = Field(None, ge=0)
    seed: int = 0
    with_replacement: bool = False

    @model_validator(mode="after")
    def _one(self) -> SampleParams:
        if (self.n is None) == (self.fraction is None):
            raise ValueError("give exactly one of `n` or `fraction`")
        return self


class SampleNode(NodeType[SampleParams]):
    name = "sample"
    Params = SampleParams
    description = "A seeded random sample of rows (n rows or a fraction)."

    def infer_schema(
        self, params: SampleParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        return {"out": inputs["in"]}

    def run(
        self, params: SampleParams, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        df = to_polars(inputs["in"])
        kwargs: dict[str, Any] = {"seed": params.seed, "with_replacement": params.with_replacement}
        if params.n is not None:
            n = params.n if params.with_replacement else min(params.n, df.height)
            out = df.sample(n=n, **kwargs)
        else:
            out = df.sample(fraction=params.fraction, **kwargs)
        return {"out": to_arrow(out)}
