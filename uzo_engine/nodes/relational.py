"""Multi-row transforms: aggregate (group by), join, union."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from uzo_engine.expressions import (
    ExpressionError,
    compile_expression,
    qualified_columns,
    sql_name,
    unqualify,
)
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
#: the joins a ``condition`` is supported for (Polars' ``join_where`` strategies)
CONDITION_HOWS = ("inner", "left", "right", "full")
#: how a join condition names its inputs' columns: ``l.amount > r.threshold``
SIDES = {"l": "left", "r": "right"}


def _condition_check(sql: str | None) -> str | None:
    if sql is None:
        return None
    for qualifier, name in qualified_columns(sql):  # an ExpressionError is a ValueError
        if qualifier not in SIDES:
            quoted = f'"{name}"' if not name.isidentifier() else name
            got = f"{qualifier}.{quoted}" if qualifier else quoted
            raise ValueError(
                f"column {got} in the join condition: name it as l.{quoted} (left input) "
                f"or r.{quoted} (right input)"
            )
    return sql


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
    condition: str | None = Field(
        None,
        description="SQL boolean expression over both inputs, instead of keys: "
        "`l.amount > r.threshold` (l. the left input's columns, r. the right's); "
        "how inner, left, right or full",
    )

    _check_condition = field_validator("condition")(_condition_check)

    @model_validator(mode="after")
    def _keys(self) -> JoinParams:
        if self.condition is not None:
            if self.how not in CONDITION_HOWS:
                raise ValueError(
                    f"a join `condition` is for how {', '.join(CONDITION_HOWS)}, not {self.how!r}"
                )
            if self.on or self.left_on or self.right_on:
                raise ValueError(
                    "give either join keys or a `condition`, not both: put the key equality "
                    "in the condition (l.id = r.id AND ...)"
                )
            if self.maintain_order:
                raise ValueError("`maintain_order` is not supported with a `condition`")
            return self
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


def _joined_names(left: pl.Schema, right: pl.Schema, suffix: str) -> dict[tuple[str, str], str]:
    """Each input column's name in the joined frame, keyed ``(qualifier, column)``: a right
    column whose name a left one has gets the suffix (as Polars names them)."""
    names = {("l", c): c for c in left}
    names.update({("r", c): f"{c}{suffix}" if c in left else c for c in right})
    return names


def _compile_condition(params: JoinParams, left: pl.Schema, right: pl.Schema) -> Any:
    """The condition as a typed expression over the joined frame; SchemaErrors name
    ``config.condition``."""
    assert params.condition is not None
    sides = {"l": left, "r": right}
    for qualifier, column in qualified_columns(params.condition):
        schema = sides[qualifier or ""]
        if column not in schema:
            have = ", ".join(schema) or "none"
            raise SchemaError(
                f"join condition: column {qualifier}.{column} does not exist in the "
                f"{SIDES[qualifier or '']} input (available: {have})",
                code="missing_column",
                column=column,
                field="config.condition",
            )
    names = _joined_names(left, right, params.suffix)
    joined = {names[("l", c)]: t for c, t in left.items()}
    joined.update({names[("r", c)]: t for c, t in right.items()})
    try:
        return compile_expression(unqualify(params.condition, names), joined)
    except ExpressionError as e:
        # the message quotes the rewritten text: say it in the user's own words
        raise SchemaError(
            f"join condition {params.condition!r}: {e}",
            code="expression_error",
            field="config.condition",
        ) from None


_LEFT_ROW, _RIGHT_ROW = "__uzo_left_row", "__uzo_right_row"


def _condition_join(params: JoinParams, left: pl.LazyFrame, right: pl.LazyFrame) -> pl.LazyFrame:
    """``left`` joined to ``right`` where the condition is true (NULL matches nothing, as
    in SQL). The pairs come from Polars' inner ``join_where`` (a range join for
    inequalities); an outer join adds the rows of its kept side(s) that matched nothing,
    the other side's columns null. Polars' own outer ``join_where`` is not used: it fails
    on predicates with casts (``l.amount > r.threshold``, DOUBLE against BIGINT)."""
    ls, rs = left.collect_schema(), right.collect_schema()
    predicate = _compile_condition(params, ls, rs).expr.fill_null(False)
    if params.how == "inner":
        return left.join_where(right, predicate, suffix=params.suffix)
    names = _joined_names(ls, rs, params.suffix)
    columns = [names[("l", c)] for c in ls] + [names[("r", c)] for c in rs]
    left, right = left.with_row_index(_LEFT_ROW), right.with_row_index(_RIGHT_ROW)
    matched = left.join_where(right, predicate, suffix=params.suffix)
    parts = [matched.select(columns)]
    if params.how in ("left", "full"):
        unmatched = left.join(matched.select(_LEFT_ROW), on=_LEFT_ROW, how="anti")
        parts.append(unmatched.select(list(ls)))
    if params.how in ("right", "full"):
        unmatched = right.join(matched.select(_RIGHT_ROW), on=_RIGHT_ROW, how="anti")
        parts.append(unmatched.select(pl.col(c).alias(names[("r", c)]) for c in rs))
    return pl.concat(parts, how="diagonal").select(columns)


class JoinNode(LazyNodeType[JoinParams]):
    name = "join"
    Params = JoinParams
    inputs = ("left", "right")
    description = (
        "Join two inputs on key columns (inner/left/right/full/semi/anti/cross), or on a "
        "condition over both (l.amount > r.threshold)."
    )

    def referenced_columns(self, params: JoinParams) -> dict[str, tuple[str, ...]]:
        if params.condition is not None:
            read = qualified_columns(params.condition)
            return {
                port: tuple(c for q, c in read if SIDES.get(q or "") == port)
                for port in SIDES.values()
            }
        pairs = params.key_pairs()
        return {"left": tuple(a for a, _ in pairs), "right": tuple(b for _, b in pairs)}

    def infer_schema(
        self, params: JoinParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        if params.condition is not None:
            compiled = _compile_condition(params, inputs["left"], inputs["right"])
            if not isinstance(compiled.dtype, (pl.Boolean, pl.Null)):
                raise SchemaError(
                    f"join condition {params.condition!r} is {sql_name(compiled.dtype)}, "
                    "not BOOLEAN",
                    code="type_mismatch",
                    field="config.condition",
                )
            return super().infer_schema(params, inputs)
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
        if params.condition is not None:
            return {"out": _condition_join(params, left, right)}
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
