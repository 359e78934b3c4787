"""Reshaping and window functions: pivot, unpivot, window."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import polars as pl
from pydantic import Field, model_validator

from uzo_engine.nodes.base import (
    ColumnSources,
    LazyNodeType,
    NodeType,
    Params,
    SchemaError,
    SchemaUnknownError,
    require_columns,
)
from uzo_engine.nodes.relational import Aggregation, aggregate_expr, as_double, sum_input
from uzo_engine.nodes.transforms import SortKey
from uzo_engine.nodes.types import to_arrow, to_polars

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pyarrow as pa

    from uzo_engine.plan import StepContext

# ---------------------------------------------------------------- pivot

PivotAgg = Literal["sum", "count", "min", "max", "avg", "first", "last"]


class PivotParams(Params):
    index: list[str] = Field(min_length=1, description="columns that identify an output row")
    on: str = Field(description="column whose values become output columns")
    values: str = Field(description="column aggregated into the new columns")
    aggregate: PivotAgg = "first"
    columns: list[str] | None = Field(
        None,
        description="the expected values of `on` (output columns, in order); when given, the "
        "output schema is known before running and other values are dropped",
    )


class PivotNode(NodeType[PivotParams]):
    name = "pivot"
    Params = PivotParams
    description = "Turn the values of one column into columns (long -> wide)."

    def referenced_columns(self, params: PivotParams) -> dict[str, tuple[str, ...]]:
        return {"in": (*params.index, params.on, params.values)}

    def _agg(self, params: PivotParams) -> Aggregation:
        return Aggregation(func=params.aggregate, column=params.values)

    def infer_schema(
        self, params: PivotParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        schema = inputs["in"]
        require_columns(schema, self.referenced_columns(params)["in"])
        if params.columns is None:
            raise SchemaUnknownError("pivot output columns depend on the data (set `columns`)")
        agg_type = (
            pl.LazyFrame(schema=schema)
            .select(aggregate_expr(self._agg(params), schema))
            .collect_schema()
            .dtypes()[0]
        )
        out = {c: schema[c] for c in params.index}
        for c in params.columns:
            if c in out:
                raise SchemaError(f"pivot column {c!r} clashes with an index column", column=c)
            out[c] = agg_type
        return {"out": pl.Schema(out)}

    def run(
        self, params: PivotParams, inputs: Mapping[str, pa.Table], ctx: StepContext
    ) -> dict[str, pa.Table]:
        df = to_polars(inputs["in"])
        on = pl.col(params.on).cast(pl.String)
        if params.columns is not None:
            df = df.filter(on.is_in(params.columns))
        grouped = (
            df.with_columns(on.alias(params.on))
            .group_by([*params.index, params.on], maintain_order=True)
            .agg(aggregate_expr(self._agg(params), df.schema).alias(params.values))
        )
        keys = params.columns
        if keys is None:
            keys = [str(v) for v in grouped[params.on].unique(maintain_order=True).drop_nulls()]
        wide = grouped.pivot(
            params.on, keys, index=params.index, values=params.values, maintain_order=True
        )
        exprs = [pl.col(c) for c in params.index]
        value_type = grouped.schema[params.values]
        exprs += [
            (pl.col(k) if k in wide.columns else pl.lit(None)).cast(value_type).alias(k)
            for k in keys
        ]
        return {"out": to_arrow(wide.select(exprs))}

    def column_lineage(
        self, params: PivotParams, inputs: Mapping[str, pl.Schema], outputs: Mapping[str, pl.Schema]
    ) -> dict[str, dict[str, ColumnSources]]:
        out: dict[str, ColumnSources] = {}
        for c in outputs["out"]:
            if c in params.index:
                out[c] = (("in", c),)
            else:
                out[c] = (("in", params.on), ("in", params.values))
        return {"out": out}


# ---------------------------------------------------------------- unpivot


class UnpivotParams(Params):
    index: list[str] = Field(default_factory=list, description="columns kept as they are")
    on: list[str] | None = Field(None, description="columns turned into rows (default: the rest)")
    variable_name: str = "variable"
    value_name: str = "value"


class UnpivotNode(LazyNodeType[UnpivotParams]):
    name = "unpivot"
    Params = UnpivotParams
    description = "Turn columns into (variable, value) rows (wide -> long)."

    def referenced_columns(self, params: UnpivotParams) -> dict[str, tuple[str, ...]]:
        return {"in": (*params.index, *(params.on or ()))}

    def build(
        self, params: UnpivotParams, inputs: Mapping[str, pl.LazyFrame]
    ) -> dict[str, pl.LazyFrame]:
        lf = inputs["in"]
        on = params.on
        if on is None:
            on = [c for c in lf.collect_schema().names() if c not in params.index]
        return {
            "out": lf.unpivot(
                on=on,
                index=params.index,
                variable_name=params.variable_name,
                value_name=params.value_name,
            )
        }

    def column_lineage(
        self,
        params: UnpivotParams,
        inputs: Mapping[str, pl.Schema],
        outputs: Mapping[str, pl.Schema],
    ) -> dict[str, dict[str, ColumnSources]]:
        on = params.on or [c for c in inputs["in"] if c not in params.index]
        out: dict[str, ColumnSources] = {c: (("in", c),) for c in params.index}
        out[params.variable_name] = ()
        out[params.value_name] = tuple(("in", c) for c in on)
        return {"out": out}


# ---------------------------------------------------------------- window

WindowFuncName = Literal[
    "row_number",
    "rank",
    "dense_rank",
    "lag",
    "lead",
    "cum_sum",
    "cum_count",
    "cum_min",
    "cum_max",
    "cum_avg",
    "moving_sum",
    "moving_avg",
    "moving_min",
    "moving_max",
    "sum",
    "count",
    "avg",
    "min",
    "max",
]
_NEEDS_ORDER = {"row_number", "rank", "dense_rank", "lag", "lead"}
_NO_COLUMN = {"row_number", "rank", "dense_rank"}


class WindowFunc(Params):
    func: WindowFuncName
    alias: str
    column: str | None = None
    offset: int = Field(1, ge=0, description="lag/lead distance")
    default: str | int | float | bool | None = Field(None, description="lag/lead fill value")
    size: int | None = Field(None, ge=1, description="moving_*: rows in the frame (incl. current)")

    @model_validator(mode="after")
    def _check(self) -> WindowFunc:
        if self.func not in _NO_COLUMN and self.column is None:
            raise ValueError(f"window function {self.func!r} needs a `column`")
        if self.func.startswith("moving_") and self.size is None:
            raise ValueError(f"window function {self.func!r} needs a frame `size`")
        return self


class WindowParams(Params):
    partition_by: list[str] = Field(default_factory=list)
    order_by: list[SortKey | str] = Field(default_factory=list)
    functions: list[WindowFunc] = Field(min_length=1)

    def sort_keys(self) -> list[SortKey]:
        return [SortKey(column=k) if isinstance(k, str) else k for k in self.order_by]


_ROW = "__uzo_row"
_POS = "__uzo_pos"
_PEER = "__uzo_peer"
_PART = "__uzo_part"
_FRAME = "__uzo_frame"


class WindowNode(LazyNodeType[WindowParams]):
    """Window functions over partitions in a given order.

    Cumulative and moving aggregates use ROWS frames (a row's frame holds the rows
    before it in the order, not its ties); nulls are ignored as in SQL. The output
    keeps the input row order.
    """

    name = "window"
    Params = WindowParams
    description = "Ranking, lag/lead, cumulative and moving aggregates over partitions."

    def referenced_columns(self, params: WindowParams) -> dict[str, tuple[str, ...]]:
        cols = [*params.partition_by, *(k.column for k in params.sort_keys())]
        cols += [f.column for f in params.functions if f.column]
        return {"in": tuple(dict.fromkeys(cols))}

    def infer_schema(
        self, params: WindowParams, inputs: Mapping[str, pl.Schema]
    ) -> dict[str, pl.Schema]:
        for f in params.functions:
            if f.func in _NEEDS_ORDER and not params.order_by:
                raise SchemaError(f"window function {f.func!r} needs `order_by`", column=f.alias)
        return super().infer_schema(params, inputs)

    def _expr(self, f: WindowFunc, over: list[str], schema: Mapping[str, pl.DataType]) -> pl.Expr:
        def w(e: pl.Expr) -> pl.Expr:
            return e.over(over) if over else e

        c = pl.col(f.column) if f.column else pl.lit(None)
        dtype = schema.get(f.column) if f.column else None
        pos = w(pl.int_range(pl.len(), dtype=pl.Int64)) + 1
        if f.func == "row_number":
            return pos
        if f.func == "dense_rank":
            return w(pl.col(_PEER) - pl.col(_PEER).first()) + 1
        if f.func == "rank":
            return pl.col(_POS).min().over([*over, _PEER])
        if f.func in ("lag", "lead"):
            shift = f.offset if f.func == "lag" else -f.offset
            fill = pl.lit(f.default) if f.default is not None else None
            return w(c.shift(shift, fill_value=fill))
        nonnull = w(c.cum_count())
        running = w(sum_input(c, dtype).fill_null(0).cum_sum())
        cumulative = {
            "cum_sum": pl.when(nonnull > 0).then(running),
            "cum_count": nonnull.cast(pl.Int64),
            "cum_min": w(c.cum_min().forward_fill()),
            "cum_max": w(c.cum_max().forward_fill()),
            # DuckDB's AVG is DOUBLE: the running sum is divided as a double, not at the scale
            "cum_avg": pl.when(nonnull > 0).then(running.cast(pl.Float64) / nonnull),
        }
        if f.func in cumulative:
            return cumulative[f.func]
        if f.func.startswith("moving_"):
            # a ROWS frame of `size` rows over the synthetic index _FRAME, which leaves a gap
            # between partitions, so a frame never reaches into the previous partition; each
            # frame is aggregated afresh (no running float error), for any type
            frames = {
                "moving_sum": pl.when(c.count() > 0).then(sum_input(c, dtype).sum()),
                "moving_avg": as_double(c, dtype).mean(),
                "moving_min": c.min(),
                "moving_max": c.max(),
            }
            return frames[f.func].rolling(index_column=_FRAME, period=f"{f.size or 1}i")
        agg = aggregate_expr(
            Aggregation.model_validate({"func": f.func, "column": f.column}), schema
        )
        return w(agg)

    def build(
        self, params: WindowParams, inputs: Mapping[str, pl.LazyFrame]
    ) -> dict[str, pl.LazyFrame]:
        lf = inputs["in"]
        schema = lf.collect_schema()
        names = schema.names()
        keys = params.sort_keys()
        over = list(params.partition_by)
        lf = lf.with_row_index(_ROW)
        if over or keys:
            lf = lf.sort(
                [*over, *(k.column for k in keys)],
                descending=[False] * len(over) + [k.descending for k in keys],
                nulls_last=[True] * len(over) + [k.nulls_last for k in keys],
                maintain_order=True,
            )
        peer_cols = [*over, *(k.column for k in keys)]  # peers: same partition and order key
        peer = pl.struct(peer_cols).rle_id() if peer_cols else pl.lit(0, dtype=pl.UInt32)
        partition = pl.struct(over).rle_id() if over else pl.lit(0, dtype=pl.UInt32)
        lf = lf.with_columns(
            (
                pl.int_range(pl.len(), dtype=pl.Int64).over(over) + 1
                if over
                else pl.int_range(pl.len(), dtype=pl.Int64) + 1
            ).alias(_POS),
            peer.cast(pl.Int64).alias(_PEER),
            partition.cast(pl.Int64).alias(_PART),
        )
        if any(f.func.startswith("moving_") for f in params.functions):
            stride = pl.len().cast(pl.Int64) + 1
            lf = lf.with_columns((pl.col(_PART) * stride + pl.col(_POS)).alias(_FRAME))
        lf = lf.with_columns([self._expr(f, over, schema).alias(f.alias) for f in params.functions])
        out_cols = [*(n for n in names if n not in {f.alias for f in params.functions})]
        out_cols += [f.alias for f in params.functions]
        return {"out": lf.sort(_ROW).select(out_cols)}

    def column_lineage(
        self,
        params: WindowParams,
        inputs: Mapping[str, pl.Schema],
        outputs: Mapping[str, pl.Schema],
    ) -> dict[str, dict[str, ColumnSources]]:
        out: dict[str, ColumnSources] = {c: (("in", c),) for c in inputs["in"]}
        for f in params.functions:
            out[f.alias] = (("in", f.column),) if f.column else ()
        return {"out": {c: out.get(c, ()) for c in outputs["out"]}}
