"""Multi-row transforms: aggregate (group by), join, union."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import polars as pl
from pydantic import Field, model_validator

from uzo_engine.nodes.base import ColumnSources, LazyNodeType, Params, SchemaError, require_columns
from uzo_engine.nodes.types import comparable, supertype

if TYPE_CHECKING:
    from collections.abc import Mapping

AggFunc = Literal[
    "sum",
    "count",
    "count_distinct",
    "avg",
    "mean",
    "min",
    "max",
    "median",
    "std",
    "var",
    "first",
    "last",
]


class Aggregation(Params):
    func: AggFunc
    column: str | None = Field(None, description="input column (count without one: count(*))")
    alias: str | None = Field(None, description="output name; default `<func>_<column>`")

    @model_validator(mode="after")
    def _needs_column(self) -> Aggregation:
        if self.column is None and self.func != "count":
            raise ValueError(f"aggregation {self.func!r} needs a `column`")
        return self

    @property
    def output_name(self) -> str:
        if self.alias:
            return self.alias
        return f"{self.func}_{self.column}" if self.column else "count"


class AggregateParams(Params):
    group_by: list[str] = Field(default_factory=list)
    aggregations: list[Aggregation] = Field(min_length=1)
    maintain_order: bool = Field(
        False, description="keep groups in the order they first appear; slower"
    )


def sum_input(c: pl.Expr, dtype: pl.DataType | None) -> pl.Expr:
    """What SUM adds up, as DuckDB types the sum: integers (and booleans) as HUGEINT (UZO:
    DECIMAL(38,0), which holds it and is what DuckDB exports), a decimal at scale 38,
    floats as DOUBLE. Polars would sum an INTEGER column in 32 bits and wrap."""
    if dtype is None:
        return c
    if dtype.is_integer() or isinstance(dtype, pl.Boolean):
        return c.cast(pl.Decimal(38, 0))
    if isinstance(dtype, pl.Decimal):
        return c.cast(pl.Decimal(38, dtype.scale or 0))
    if dtype.is_float():
        return c.cast(pl.Float64)
    return c


def as_double(c: pl.Expr, dtype: pl.DataType | None) -> pl.Expr:
    """The input of AVG, STDDEV, VARIANCE and MEDIAN of a number: DOUBLE, as DuckDB's result."""
    if dtype is not None and (dtype.is_numeric() or isinstance(dtype, pl.Boolean)):
        return c.cast(pl.Float64)
    return c


def aggregate_expr(agg: Aggregation, schema: Mapping[str, pl.DataType] | None = None) -> pl.Expr:
    """One aggregation with SQL semantics (nulls ignored; SUM of no values is NULL) and
    DuckDB's result types (see :func:`sum_input`; AVG/STDDEV/VARIANCE are DOUBLE, MEDIAN of
    a decimal keeps its type)."""
    if agg.column is None:
        return pl.len().cast(pl.Int64).alias(agg.output_name)
    c = pl.col(agg.column)
    dtype = schema.get(agg.column) if schema is not None else None
    median = c.median()
    if isinstance(dtype, pl.Decimal):  # DuckDB interpolates, then rounds to the scale
        median = median.round(dtype.scale or 0, mode="half_away_from_zero").cast(dtype)
    elif dtype is not None and dtype.is_numeric():
        median = as_double(c, dtype).median()
    exprs: dict[str, pl.Expr] = {
        "sum": pl.when(c.count() > 0).then(sum_input(c, dtype).sum()),
        "count": c.count().cast(pl.Int64),
        "count_distinct": c.drop_nulls().n_unique().cast(pl.Int64),
        "avg": as_double(c, dtype).mean(),
        "mean": as_double(c, dtype).mean(),
        "min": c.min(),
        "max": c.max(),
        "median": median,
        "std": as_double(c, dtype).std(ddof=1),
        "var": as_double(c, dtype).var(ddof=1),
        "first": c.first(),
        "last": c.last(),
    }
    return exprs[agg.func].alias(agg.output_name)


class AggregateNode(LazyNodeType[AggregateParams]):
    name = "aggregate"
    Params = AggregateParams
    description = "Group rows and compute aggregates per group (or over all rows)."

    def referenced_columns(self, params: AggregateParams) -> dict[str, tuple[str, ...]]:
        cols = [*params.group_by, *(a.column for a in params.aggregations if a.column)]
        return {"in": tuple(dict.fromkeys(cols))}

    def infer_schema(
        self, params: AggregateParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        schema = inputs["in"]
        require_columns(schema, self.referenced_columns(params)["in"])
        for a in params.aggregations:
            if a.func in ("sum", "avg", "mean", "median", "std", "var") and a.column:
                dtype = schema[a.column]
                if not (dtype.is_numeric() or isinstance(dtype, (pl.Null, pl.Boolean))):
                    raise SchemaError(
                        f"{a.func} needs a numeric column; {a.column!r} is {dtype}",
                        code="type_mismatch",
                        column=a.column,
                    )
        return super().infer_schema(params, inputs)

    def build(
        self, params: AggregateParams, inputs: Mapping[str, pl.LazyFrame]
    ) -> dict[str, pl.LazyFrame]:
        lf = inputs["in"]
        schema = lf.collect_schema()
        aggs = [aggregate_expr(a, schema) for a in params.aggregations]
        if not params.group_by:
            return {"out": lf.select(aggs)}
        grouped = lf.group_by(params.group_by, maintain_order=params.maintain_order)
        return {"out": grouped.agg(aggs)}

    def column_lineage(
        self,
        params: AggregateParams,
        inputs: Mapping[str, pl.Schema],
        outputs: Mapping[str, pl.Schema],
    ) -> dict[str, dict[str, ColumnSources]]:
        out: dict[str, ColumnSources] = {g: (("in", g),) for g in params.group_by}
        for a in params.aggregations:
            out[a.output_name] = (("in", a.column),) if a.column else ()
        return {"out": out}


# ---------------------------------------------------------------- join

JoinHow = Literal["inner", "left", "right", "full", "semi", "anti", "cross"]


class JoinParams(Params):
    how: JoinHow = "inner"
    on: list[str] | None = Field(None, description="key columns with the same name on both sides")
    left_on: list[str] | None = None
    right_on: list[str] | None = None
    suffix: str = Field("_right", description="added to right-side names that clash")
    maintain_order: bool = Field(
        False,
        description="keep the left (right for a right join) input's row order; slower",
    )

    @model_validator(mode="after")
    def _keys(self) -> JoinParams:
        if self.how == "cross":
            if self.on or self.left_on or self.right_on:
                raise ValueError("a cross join takes no keys")
            return self
        if self.on:
            if self.left_on or self.right_on:
                raise ValueError("give either `on` or `left_on`/`right_on`, not both")
        elif not self.left_on or not self.right_on:
            raise ValueError("give the join keys: `on`, or `left_on` and `right_on`")
        elif len(self.left_on) != len(self.right_on):
            raise ValueError("`left_on` and `right_on` must have the same length")
        return self

    def key_pairs(self) -> list[tuple[str, str]]:
        if self.on:
            return [(k, k) for k in self.on]
        return list(zip(self.left_on or [], self.right_on or [], strict=True))


def _join_order(params: JoinParams) -> Literal["none", "left_right", "right_left"]:
    """Row order is opt-in: SQL promises none and keeping it makes Polars' join slower."""
    if not params.maintain_order:
        return "none"
    return "right_left" if params.how == "right" else "left_right"


class JoinNode(LazyNodeType[JoinParams]):
    name = "join"
    Params = JoinParams
    inputs = ("left", "right")
    description = "Join two inputs on key columns (inner/left/right/full/semi/anti/cross)."

    def referenced_columns(self, params: JoinParams) -> dict[str, tuple[str, ...]]:
        pairs = params.key_pairs()
        return {"left": tuple(a for a, _ in pairs), "right": tuple(b for _, b in pairs)}

    def infer_schema(
        self, params: JoinParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        for port, cols in self.referenced_columns(params).items():
            require_columns(inputs[port], cols, port=port, what="join key")
        for lk, rk in params.key_pairs():
            lt, rt = inputs["left"][lk], inputs["right"][rk]
            if not comparable(lt, rt):
                raise SchemaError(
                    f"join keys have incompatible types: left {lk!r} is {lt}, right {rk!r} is {rt}",
                    code="incompatible_join_keys",
                    column=lk,
                )
        return super().infer_schema(params, inputs)

    def build(
        self, params: JoinParams, inputs: Mapping[str, pl.LazyFrame]
    ) -> dict[str, pl.LazyFrame]:
        left, right = inputs["left"], inputs["right"]
        if params.how == "cross":
            return {"out": left.join(right, how="cross", suffix=params.suffix)}
        pairs = params.key_pairs()
        ls, rs = left.collect_schema(), right.collect_schema()
        casts_l, casts_r = [], []
        for lk, rk in pairs:  # align numeric key widths (int32 vs int64 ...)
            if ls[lk] != rs[rk]:
                common = supertype(ls[lk], rs[rk])
                if common is not None:
                    casts_l.append(pl.col(lk).cast(common))
                    casts_r.append(pl.col(rk).cast(common))
        if casts_l:
            left, right = left.with_columns(casts_l), right.with_columns(casts_r)
        out = left.join(
            right,
            left_on=[a for a, _ in pairs],
            right_on=[b for _, b in pairs],
            how=params.how,
            suffix=params.suffix,
            coalesce=bool(params.on),
            maintain_order=_join_order(params),
        )
        return {"out": out}

    def column_lineage(
        self, params: JoinParams, inputs: Mapping[str, pl.Schema], outputs: Mapping[str, pl.Schema]
    ) -> dict[str, dict[str, ColumnSources]]:
        left, right = inputs["left"], inputs["right"]
        result: dict[str, ColumnSources] = {}
        keys = dict(params.key_pairs()) if params.on else {}
        for col in outputs["out"]:
            if col in keys:
                result[col] = (("left", col), ("right", keys[col]))
            elif col in left:
                result[col] = (("left", col),)
            elif col in right:
                result[col] = (("right", col),)
            elif col.endswith(params.suffix) and col[: -len(params.suffix)] in right:
                result[col] = (("right", col[: -len(params.suffix)]),)
            else:
                result[col] = ()
        return {"out": result}


# ---------------------------------------------------------------- union


class UnionParams(Params):
    distinct: bool = Field(False, description="remove duplicate rows (SQL UNION vs UNION ALL)")
    allow_missing: bool = Field(True, description="a column missing on one input becomes null")
    order: list[str] | None = Field(None, description="input port order (default: by name)")
    maintain_order: bool = Field(
        False, description="with `distinct`: keep rows in the order they first appear; slower"
    )


def _ordered(params: UnionParams, ports: list[str]) -> list[str]:
    if params.order:
        return [p for p in params.order if p in ports] + [p for p in ports if p not in params.order]
    return sorted(ports)


def unified_schema(params: UnionParams, inputs: Mapping[str, pl.Schema]) -> pl.Schema:
    ports = _ordered(params, list(inputs))
    columns: dict[str, pl.DataType] = {}
    for port in ports:
        for col, dtype in inputs[port].items():
            if col not in columns:
                columns[col] = dtype
                continue
            common = supertype(columns[col], dtype)
            if common is None:
                raise SchemaError(
                    f"union: column {col!r} is {columns[col]} on one input and {dtype} "
                    f"on input {port!r}; cast one of them",
                    code="incompatible_union",
                    column=col,
                )
            columns[col] = common
    if not params.allow_missing:
        for port in ports:
            missing = [c for c in columns if c not in inputs[port]]
            if missing:
                raise SchemaError(
                    f"union: input {port!r} lacks column {missing[0]!r}",
                    code="incompatible_union",
                    column=missing[0],
                )
    return pl.Schema(columns)


class UnionNode(LazyNodeType[UnionParams]):
    name = "union"
    Params = UnionParams
    inputs = ()
    variadic_inputs = True
    min_inputs = 1
    description = "Stack inputs by column name, unifying column types."

    def infer_schema(
        self, params: UnionParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        return {"out": unified_schema(params, inputs)}

    def build(
        self, params: UnionParams, inputs: Mapping[str, pl.LazyFrame]
    ) -> dict[str, pl.LazyFrame]:
        schemas = {p: lf.collect_schema() for p, lf in inputs.items()}
        target = unified_schema(params, schemas)
        frames = []
        for port in _ordered(params, list(inputs)):
            have = schemas[port]
            frames.append(
                inputs[port].select(
                    [
                        (pl.col(c) if c in have else pl.lit(None)).cast(t).alias(c)
                        for c, t in target.items()
                    ]
                )
            )
        out = pl.concat(frames, how="vertical")
        if params.distinct:
            out = out.unique(maintain_order=params.maintain_order)
        return {"out": out}
