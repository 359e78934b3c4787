"""SQL predicates (``ReadRequest.predicate``) -> Arrow scan filters that answer as DuckDB.

A predicate is a UZO expression: DuckDB's dialect *and semantics*, which the
engine compiles (``uzo_engine.expressions``). This module pushes into the
``pyarrow.dataset`` scan only what Arrow computes exactly as DuckDB does, so
partitions and Parquet row groups are skipped by their statistics:

- comparisons (``= <> < <= > >=``), ``[NOT] IN (...)`` and ``[NOT] BETWEEN`` of a
  column with a literal of its kind, or of two columns of the same kind, where
  the kinds are integers (signed), DOUBLE, strings and booleans; NaN counts as
  the greatest DOUBLE, as in DuckDB;
- ``IS [NOT] NULL`` of any column, a boolean column, ``TRUE``/``FALSE``;
- ``AND``, ``OR`` and ``NOT`` of those (three-valued, as in SQL).

Everything else (arithmetic, functions, LIKE, casts, a string literal compared
with a number or a date...) is not evaluated here. :func:`to_arrow` splits the
predicate's top-level ``AND``: the conjuncts it can push are pushed, and the plan
reports ``"predicate"`` as pushed down only when all of them were. Otherwise the
caller filters the rows it reads with the whole predicate (the engine's source
node does, with its own compiler), so there is one SQL dialect, never a second
one evaluated here.
"""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from uzo_connectors.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlglot import exp as exp_t

_INT64 = (-(2**63), 2**63 - 1)


class Untranslatable(Exception):
    """The expression uses SQL whose Arrow answer could differ from DuckDB's."""


def parse(predicate: str) -> exp_t.Expr:
    import sqlglot
    from sqlglot.errors import ParseError

    try:
        return sqlglot.parse_one(predicate, read="duckdb")
    except ParseError as exc:
        raise ConfigError(f"predicate {predicate!r} is not a valid SQL expression: {exc}") from None
    except RecursionError:  # the parser recurses per bracket
        raise ConfigError(f"predicate {predicate[:80]!r}... is nested too deeply") from None


def columns_of(predicate: str) -> set[str]:
    from sqlglot import exp

    return {col.name for col in parse(predicate).find_all(exp.Column)}


def to_arrow(predicate: str, schema: pa.Schema) -> tuple[pc.Expression | None, bool]:
    """The Arrow filter of the conjuncts that translate, and whether all of them did."""
    pushed: list[pc.Expression] = []
    complete = True
    for conjunct in _conjuncts(parse(predicate)):
        try:
            pushed.append(_Translator(schema).condition(conjunct))
        except Untranslatable:
            complete = False
    return functools.reduce(operator.and_, pushed) if pushed else None, complete


def _conjuncts(node: exp_t.Expr) -> list[exp_t.Expr]:
    from sqlglot import exp

    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    if isinstance(node, exp.And):
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _kind(dtype: pa.DataType) -> str | None:
    """The kinds whose Arrow comparisons are DuckDB's (None: not pushed down)."""
    if pa.types.is_signed_integer(dtype):
        return "int"
    if pa.types.is_float64(dtype):
        return "double"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if pa.types.is_string_view(dtype):
        return "string"
    if pa.types.is_boolean(dtype):
        return "bool"
    return None


def _comparisons() -> dict[type[Any], tuple[Callable[[Any, Any], Any], str]]:
    """sqlglot node -> (Arrow operator, the operator with its operands swapped)."""
    from sqlglot import exp

    return {
        exp.EQ: (operator.eq, "eq"),
        exp.NEQ: (operator.ne, "ne"),
        exp.GT: (operator.gt, "lt"),
        exp.GTE: (operator.ge, "le"),
        exp.LT: (operator.lt, "gt"),
        exp.LTE: (operator.le, "ge"),
    }


_BY_NAME: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


class _Translator:
    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema

    def condition(self, node: exp_t.Expr) -> pc.Expression:
        """A boolean Arrow expression with DuckDB's three-valued answer."""
        from sqlglot import exp

        if isinstance(node, exp.Paren):
            return self.condition(node.this)
        if isinstance(node, exp.And):
            return self.condition(node.left) & self.condition(node.right)
        if isinstance(node, exp.Or):
            return self.condition(node.left) | self.condition(node.right)
        if isinstance(node, exp.Not):
            return ~self.condition(node.this)
        if isinstance(node, exp.Boolean):
            return pc.scalar(bool(node.this))
        if isinstance(node, exp.Column):
            field, kind = self.column(node)
            if kind != "bool":
                raise Untranslatable("a non-boolean column as a condition")
            return field
        if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
            return self.field(node.this).is_null()  # any type: never NULL itself
        if isinstance(node, exp.In):
            if node.args.get("query") is not None or not node.expressions:
                raise Untranslatable("IN (subquery)")
            tests = [self.compare(operator.eq, "eq", node.this, v) for v in node.expressions]
            return functools.reduce(operator.or_, tests)
        if isinstance(node, exp.Between):
            low = self.compare(operator.ge, "le", node.this, node.args["low"])
            high = self.compare(operator.le, "ge", node.this, node.args["high"])
            return low & high
        comparison = _comparisons().get(type(node))
        if comparison is not None:
            op, swapped = comparison
            return self.compare(op, swapped, node.args["this"], node.args["expression"])
        raise Untranslatable(type(node).__name__)

    def field(self, node: exp_t.Expr) -> pc.Expression:
        from sqlglot import exp

        if not isinstance(node, exp.Column) or node.table or node.name not in self.schema.names:
            raise Untranslatable("not a column of the dataset")
        return pc.field(node.name)

    def column(self, node: exp_t.Expr) -> tuple[pc.Expression, str]:
        field = self.field(node)
        kind = _kind(self.schema.field(node.name).type)
        if kind is None:
            raise Untranslatable(f"column {node.name}'s type")
        return field, kind

    def compare(
        self,
        op: Callable[[Any, Any], Any],
        swapped: str,
        left: exp_t.Expr,
        right: exp_t.Expr,
    ) -> pc.Expression:
        """``left op right``; a column is kept on the left (``3 < x`` is ``x > 3``)."""
        from sqlglot import exp

        if not isinstance(left, exp.Column) and isinstance(right, exp.Column):
            op, left, right = _BY_NAME[swapped], right, left
        field, kind = self.column(left)
        if isinstance(right, exp.Column):
            other, other_kind = self.column(right)
            if kind == "double" or kind != other_kind:
                raise Untranslatable("NaN or mixed kinds between columns")
            return op(field, other)
        value = _literal(right, kind)
        result: pc.Expression = op(field, pc.scalar(value))
        if kind == "double" and op in (operator.gt, operator.ge):
            result = result | pc.is_nan(field)  # DuckDB: NaN is greater than every number
        return result


def _literal(node: exp_t.Expr, kind: str) -> Any:
    """The Python value of a literal of ``kind`` (Untranslatable if it is another kind)."""
    from sqlglot import exp

    negative = False
    while isinstance(node, exp.Neg | exp.Paren):
        negative = not negative if isinstance(node, exp.Neg) else negative
        node = node.this
    if isinstance(node, exp.Boolean) and kind == "bool" and not negative:
        return bool(node.this)
    if not isinstance(node, exp.Literal):
        raise Untranslatable(type(node).__name__)
    if node.is_string:
        if kind != "string" or negative:
            raise Untranslatable("a string meets a non-string")
        return node.this
    if kind not in {"int", "double"}:
        raise Untranslatable("a number meets a non-number")
    text = str(node.this)
    try:
        number: int | float = int(text)
    except ValueError:
        if kind != "double":
            raise Untranslatable("a decimal literal meets an integer column") from None
        number = float(text)
    else:
        if not _INT64[0] <= number <= _INT64[1]:
            raise Untranslatable("an integer literal beyond BIGINT")
    return -number if negative else number
