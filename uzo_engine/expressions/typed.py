"""A compiled sub-expression: the Polars expression and the SQL type it has."""

from __future__ import annotations

import contextlib
import decimal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from uzo_engine.expressions.sqltypes import family

if TYPE_CHECKING:
    from collections.abc import Callable


class ExpressionError(ValueError):
    """An expression that cannot be parsed, is ill-typed, or uses an unsupported construct."""


class LazyText:
    """Text made when a message needs it: a sub-expression's SQL, whose rendering copies
    its subtree (rendering every link of ``a + b + ...`` up front is quadratic)."""

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[], str]) -> None:
        self._make = make

    def __str__(self) -> str:
        return self._make()


#: what an operation is, in messages: text, or text made when needed
Text = str | LazyText


class _Nothing:
    def __repr__(self) -> str:
        return "<not a constant>"


NOT_CONSTANT: Any = _Nothing()


@dataclass(frozen=True)
class Typed:
    expr: pl.Expr
    dtype: pl.DataType
    # the Python value when the expression is a constant (a literal or a folded one)
    value: Any = NOT_CONSTANT
    # an integer literal as written (it adapts to the other operand's integer type)
    int_literal: bool = False

    @property
    def constant(self) -> bool:
        return self.value is not NOT_CONSTANT

    @property
    def family(self) -> str:
        return family(self.dtype)

    @property
    def is_null(self) -> bool:
        """An untyped NULL literal."""
        return isinstance(self.dtype, pl.Null)

    @property
    def null_constant(self) -> bool:
        """NULL, typed or not (``NULL``, ``CAST(NULL AS VARCHAR)``): a function of it is NULL."""
        return self.is_null or (self.constant and self.value is None)

    @property
    def literal_int(self) -> int | None:
        """The value of an integer literal (for literal typing), else None."""
        if self.int_literal and isinstance(self.value, int) and not isinstance(self.value, bool):
            return self.value
        return None

    def with_expr(self, expr: pl.Expr) -> Typed:
        return Typed(expr, self.dtype)


def scalar(value: Any, dtype: pl.DataType) -> pl.Expr:
    """A one-value literal (a Python list would otherwise become a column, not a scalar)."""
    if isinstance(value, pl.Series):
        value = value.to_list()
    if isinstance(value, (list, tuple)):
        return pl.lit(pl.Series([list(value)], dtype=dtype)).first()
    return pl.lit(value, dtype=dtype)


def constant(value: Any, dtype: pl.DataType, *, int_literal: bool = False) -> Typed:
    """A literal of a known type (None: a typed NULL)."""
    if isinstance(dtype, pl.Null):
        return Typed(pl.lit(None), dtype, None)
    if isinstance(value, decimal.Decimal) and isinstance(dtype, pl.Decimal):
        with contextlib.suppress(decimal.InvalidOperation):  # too many digits: keep it exact
            value = value.quantize(decimal.Decimal(1).scaleb(-(dtype.scale or 0)))
    return Typed(scalar(value, dtype), dtype, value, int_literal=int_literal)


def null_of(dtype: pl.DataType) -> Typed:
    return Typed(pl.lit(None, dtype=dtype), dtype, None)
