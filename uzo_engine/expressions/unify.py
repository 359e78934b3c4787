"""Bringing operands to one type, as DuckDB's binder does before an operator runs."""

from __future__ import annotations

import polars as pl

from uzo_engine.expressions.casts import cast, convert_literal
from uzo_engine.expressions.sqltypes import (
    HUGEINT,
    _dtype,
    family,
    is_numeric,
    numeric_supertype,
    sql_name,
    temporal_supertype,
)
from uzo_engine.expressions.typed import ExpressionError, Text, Typed, constant, null_of


def coerce(t: Typed, target: pl.DataType) -> Typed:
    """``t`` as ``target`` by an implicit (never failing) conversion, or a literal parsed."""
    if t.dtype == target:
        return t
    if t.is_null:
        return null_of(target)
    if t.constant and isinstance(t.value, str) and family(target) != "string":
        if isinstance(target, pl.Decimal):  # a string meets a decimal at the widest width
            return convert_literal(t, pl.Decimal(38, target.scale or 0))
        return convert_literal(t, target)
    if t.constant and t.value is not None and family(target) in ("integer", "decimal", "float"):
        converted = cast(t, target, strict=True, guard=None)
        try:  # a number literal stays a constant (functions read constant arguments)
            value = pl.select(converted.expr.alias("v")).item()
        except Exception:
            return converted
        return constant(value, target)
    return cast(t, target, strict=False, guard=None)


def common_type(items: list[Typed], what: Text, *, equality: bool = False) -> pl.DataType:
    """The type a list of operands meets in (comparison, CASE branches, IN lists, ...);
    ``equality``: compared for (in)equality, where DuckDB lets a BOOLEAN meet any number."""
    typed = [t for t in items if not t.is_null]
    if not typed:
        return pl.Null()
    # string literals take the type of the typed operands
    anchors = [t for t in typed if not (t.constant and isinstance(t.value, str))] or typed
    families = {t.family for t in anchors}
    if families == {"bool", "integer"} and all(
        t.literal_int in (0, 1) for t in anchors if t.family == "integer"
    ):  # b = 1: the integer literal 0 or 1 is read as a boolean
        return pl.Boolean()
    if (
        "bool" in families
        and len(families) > 1
        and all(t.family == "bool" or is_numeric(t.dtype) for t in anchors)
    ):  # otherwise a boolean meeting integers counts as 0 or 1 (not decimals or floats)
        numbers = [t for t in anchors if t.family != "bool"]
        inexact = [t for t in numbers if t.family != "integer" and t.dtype != HUGEINT]
        if inexact and not equality:
            names = f"BOOLEAN and {sql_name(inexact[0].dtype)}"
            raise ExpressionError(f"{what}: cannot combine values of type {names} without a CAST")
        result = numbers[0].dtype
        for t in numbers[1:]:
            result = numeric_supertype(result, t.dtype)
        return result
    result = anchors[0].dtype
    if len(families) == 1 and families <= {"string", "bool", "time", "list", "struct", "binary"}:
        if families == {"list"}:
            return _list_common(anchors, what)
        return result
    if all(is_numeric(t.dtype) for t in anchors):
        # integer literals adapt to the other operands' type when they fit
        typed_ones = [t for t in anchors if t.literal_int is None]
        literals = [t for t in anchors if t.literal_int is not None]
        base = typed_ones or literals[:1]
        result = base[0].dtype
        for t in base[1:]:
            result = numeric_supertype(result, t.dtype)
        for t in literals if typed_ones else literals[1:]:
            result = numeric_supertype(result, t.dtype, b_literal=t.literal_int)
        return result
    if families <= {"date", "timestamp"}:
        for t in anchors[1:]:
            merged = temporal_supertype(result, t.dtype)
            assert merged is not None
            result = merged
        return result
    names = " and ".join(sorted({sql_name(t.dtype) for t in anchors}))
    raise ExpressionError(f"{what}: cannot combine values of type {names} without a CAST")


def _list_common(items: list[Typed], what: Text) -> pl.DataType:
    inner = [_dtype(t.dtype.inner) for t in items if isinstance(t.dtype, pl.List)]
    first = inner[0]
    for other in inner[1:]:
        if other != first:
            if first.is_numeric() and other.is_numeric():
                first = numeric_supertype(first, other)
            else:
                raise ExpressionError(f"{what}: lists of different element types")
    return pl.List(first)


def unify(
    items: list[Typed], what: Text, *, equality: bool = False
) -> tuple[list[Typed], pl.DataType]:
    target = common_type(items, what, equality=equality)
    if isinstance(target, pl.Null):
        return items, target
    return [coerce(t, target) for t in items], target
