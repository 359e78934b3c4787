"""SQL expression strings -> Polars expressions, plus the columns they read.

Filter predicates and derived columns are written as SQL expressions
(``amount > 100 AND region IN ('EU', 'US')``). sqlglot parses them (DuckDB
dialect); :func:`compile_expression` translates the tree into a ``pl.Expr`` and
records the referenced column names, which validation uses to reject missing
columns and lineage uses to link output columns to input columns.

Supported: column references, literals (numbers, strings, booleans, NULL,
``DATE '...'``, ``TIMESTAMP '...'``), comparisons, AND/OR/NOT, arithmetic
(``+ - * / // %``, unary minus), ``IS [NOT] NULL``, ``[NOT] IN``,
``[NOT] BETWEEN``, ``[NOT] [I]LIKE``, ``CASE``, ``IF``, ``CAST``/``::``,
``COALESCE``, ``NULLIF``, ``GREATEST``/``LEAST``, ``||``, string functions
(lower, upper, length, substr, trim/ltrim/rtrim, concat, replace, starts_with,
ends_with), numeric functions (abs, round, floor, ceil, sqrt), date functions
(year, month, day, extract, date_trunc) and ``date ± INTERVAL n unit``.
Anything else raises :class:`ExpressionError` naming the construct.

Semantics follow DuckDB (the tests compare with it), with one deliberate
difference: ``date_trunc`` and ``date ± INTERVAL`` on a DATE stay DATE (DuckDB
returns a TIMESTAMP at midnight).

Numbers (:mod:`uzo_engine.nodes.numeric` implements them):

- Literals: ``12`` is an integer, ``0.06`` is an exact DECIMAL(3,2) (precision =
  digits, scale = digits after the point; a double past 38 digits), ``1e3`` is a
  double — as in DuckDB. So ``0.06 + 0.01`` is exactly ``0.07``.
- Mixed kinds: decimal with float (column or ``CAST(.. AS double)``) computes in
  double; decimal with integer stays decimal; comparisons follow the same
  promotion (a decimal column against ``0.05`` compares exactly).
- ``+ - %`` on decimals: scale = the larger scale. ``*``: scale = the sum of the
  scales (DECIMAL(15,2) * DECIMAL(15,2) has scale 4: 24386.67 * 0.04 =
  975.4668), a double when that sum exceeds 38. ``/`` is always a double
  (DuckDB: decimal / decimal is DOUBLE); ``//`` divides decimals as doubles.
  Decimal results carry precision 38 (Polars widens; DuckDB tracks a smaller
  precision, e.g. DECIMAL(18,4)): same values and scales, wider declared type.
- ``ROUND(x, n)``: on a decimal, exact, half away from zero, scale becomes
  ``min(scale, n)``; on a double, the exact binary value rounded half away from
  zero (DuckDB: ``ROUND(980.5 * 0.01, 2)`` is 9.8 because 9.805 is stored as
  9.80499999...); integers are unchanged for ``n >= 0``.
- ``IN (...)``: constants are compared in the subject's kind (doubles against a
  float column, exact decimals against integer/decimal columns).
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from uzo_engine.nodes.numeric import (
    Number,
    divide,
    int_divide,
    is_in,
    multiply,
    number_literal,
    parse_number,
    sql_round,
)
from uzo_engine.nodes.types import UnknownTypeError, cast_expr, parse_dtype

if TYPE_CHECKING:
    from collections.abc import Callable


class ExpressionError(ValueError):
    """An expression that cannot be parsed or uses an unsupported construct."""


@dataclass(frozen=True)
class CompiledExpression:
    sql: str
    expr: pl.Expr
    columns: tuple[str, ...]  # referenced input columns, in first-use order


def parse(sql: str) -> exp.Expr:
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except ParseError as e:
        raise ExpressionError(f"cannot parse expression {sql!r}: {e}") from None
    if tree is None:
        raise ExpressionError(f"empty expression {sql!r}")
    return tree


def referenced_columns(sql: str) -> tuple[str, ...]:
    """The column names an expression reads (for validation and lineage)."""
    return compile_expression(sql).columns


@functools.lru_cache(maxsize=4096)
def compile_expression(sql: str) -> CompiledExpression:
    if not isinstance(sql, str) or not sql.strip():
        raise ExpressionError("an expression must be a non-empty SQL string")
    translator = _Translator(sql)
    expr = translator.translate(parse(sql))
    return CompiledExpression(sql=sql, expr=expr, columns=tuple(translator.columns))


_TRUNC_UNITS = {
    "YEAR": "1y",
    "QUARTER": "1q",
    "MONTH": "1mo",
    "WEEK": "1w",
    "DAY": "1d",
    "HOUR": "1h",
    "MINUTE": "1m",
    "SECOND": "1s",
}
_OFFSET_UNITS = {
    "YEAR": "y",
    "QUARTER": "q",
    "MONTH": "mo",
    "WEEK": "w",
    "DAY": "d",
    "HOUR": "h",
    "MINUTE": "m",
    "SECOND": "s",
}
_AGGREGATES = (exp.AggFunc, exp.Window)


def _folded(expr: pl.Expr) -> pl.Expr:
    """A column-free expression as the literal it evaluates to (same value and type), so
    Polars can compare it with Parquet statistics and skip row groups."""
    series = pl.select(expr.alias("value")).to_series()
    if len(series) != 1:
        return expr
    return pl.lit(series[0], dtype=series.dtype)


def like_to_regex(pattern: str, *, case_insensitive: bool = False) -> str:
    out = []
    for ch in pattern:
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    flags = "(?s" + ("i" if case_insensitive else "") + ")"
    return flags + "^" + "".join(out) + "$"


def _sql_mod(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """SQL's remainder takes the sign of the dividend (Polars' follows the divisor)."""
    magnitude = a.abs() % b.abs()
    return pl.when(a < 0).then(-magnitude).otherwise(magnitude)


class _Translator:
    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.columns: list[str] = []

    def unsupported(self, node: exp.Expr, what: str | None = None) -> ExpressionError:
        name = what or (node.sql_name() if isinstance(node, exp.Func) else type(node).__name__)
        return ExpressionError(
            f"unsupported SQL construct {name} ({node.sql(dialect='duckdb')}) "
            f"in expression {self.sql!r}"
        )

    def literal_str(self, node: exp.Expr | None, what: str) -> str:
        if isinstance(node, exp.Literal) and node.is_string:
            return str(node.this)
        if isinstance(node, exp.Var):
            return str(node.this)
        raise ExpressionError(f"{what} must be a string literal in expression {self.sql!r}")

    def unit(self, node: exp.Expr | None) -> str:
        return self.literal_str(node, "a date part").upper().rstrip("S")

    def translate(self, node: exp.Expr) -> pl.Expr:
        t = self.translate
        binary: dict[type[exp.Expr], Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
            exp.EQ: lambda a, b: a == b,
            exp.NEQ: lambda a, b: a != b,
            exp.GT: lambda a, b: a > b,
            exp.GTE: lambda a, b: a >= b,
            exp.LT: lambda a, b: a < b,
            exp.LTE: lambda a, b: a <= b,
            exp.And: lambda a, b: a & b,
            exp.Or: lambda a, b: a | b,
            exp.Mul: multiply,
            exp.Div: divide,
            exp.IntDiv: int_divide,  # SQL truncates toward zero
            exp.Mod: _sql_mod,
            exp.DPipe: lambda a, b: pl.concat_str([a, b]),
        }
        if isinstance(node, _AGGREGATES):
            raise self.unsupported(node, f"aggregate/window function {node.key.upper()}")
        if isinstance(node, (exp.Add, exp.Sub)):
            return self.add_sub(node)
        fn = binary.get(type(node))
        if fn is not None:
            return fn(t(node.this), t(node.expression))
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                raise self.unsupported(node, "*")
            name = node.name
            if name not in self.columns:
                self.columns.append(name)
            return pl.col(name)
        if isinstance(node, exp.Paren):
            return t(node.this)
        if isinstance(node, exp.Literal):
            if node.is_string:
                return pl.lit(str(node.this))
            return number_literal(parse_number(str(node.this)))
        if isinstance(node, exp.Boolean):
            return pl.lit(bool(node.this))
        if isinstance(node, exp.Null):
            return pl.lit(None)
        if isinstance(node, exp.Neg):
            return -t(node.this)
        if isinstance(node, exp.Not):
            return ~t(node.this)
        if isinstance(node, exp.Is):
            if isinstance(node.expression, exp.Null):
                return t(node.this).is_null()
            raise self.unsupported(node, "IS other than IS NULL")
        if isinstance(node, exp.In):
            if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
                raise self.unsupported(node, "IN with a subquery")
            values = [self.constant(v) for v in node.expressions]
            return is_in(t(node.this), values)
        if isinstance(node, exp.Between):
            return t(node.this).is_between(t(node.args["low"]), t(node.args["high"]))
        if isinstance(node, (exp.Like, exp.ILike)):
            pattern = self.literal_str(node.expression, "a LIKE pattern")
            if node.args.get("escape"):
                raise self.unsupported(node, "LIKE ... ESCAPE")
            regex = like_to_regex(pattern, case_insensitive=isinstance(node, exp.ILike))
            out = t(node.this).str.contains(regex)
            return ~out if node.args.get("negate") else out
        if isinstance(node, exp.Case):
            return self.case(node)
        if isinstance(node, exp.If):
            default = node.args.get("false")
            return (
                pl.when(t(node.this))
                .then(t(node.args["true"]))
                .otherwise(t(default) if default is not None else pl.lit(None))
            )
        if isinstance(node, (exp.Cast, exp.TryCast)):
            return self.cast(node)
        return self.function(node)

    def constant(self, node: exp.Expr) -> object:
        if isinstance(node, exp.Literal):
            if node.is_string:
                return str(node.this)
            return parse_number(str(node.this))
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
            value = self.constant(node.this)
            assert isinstance(value, (int, float, decimal.Decimal))
            return -value
        if isinstance(node, exp.Boolean):
            return bool(node.this)
        if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal):
            return self.typed_literal(node)
        raise self.unsupported(node, "non-constant IN list element")

    def typed_literal(self, node: exp.Cast) -> object:
        text = str(node.this.this)
        kind = node.to.this
        try:
            if kind == exp.DType.DATE:
                return dt.date.fromisoformat(text)
            if kind in (exp.DType.TIMESTAMP, exp.DType.DATETIME):
                return dt.datetime.fromisoformat(text)
        except ValueError:
            raise ExpressionError(
                f"invalid {kind.value} literal {text!r} in {self.sql!r}"
            ) from None
        raise self.unsupported(node, f"typed literal {node.sql(dialect='duckdb')}")

    def cast(self, node: exp.Cast | exp.TryCast) -> pl.Expr:
        kind = node.to.this
        if (
            isinstance(node.this, exp.Literal)
            and node.this.is_string
            and kind
            in (
                exp.DType.DATE,
                exp.DType.TIMESTAMP,
                exp.DType.DATETIME,
            )
        ):
            return pl.lit(self.typed_literal(node))  # DATE '2024-01-31'
        type_sql = node.to.sql(dialect="duckdb").lower().replace(" ", "")
        try:
            dtype = parse_dtype(type_sql)
        except UnknownTypeError:
            raise self.unsupported(node, f"CAST to {type_sql}") from None
        return cast_expr(self.translate(node.this), dtype, strict=not isinstance(node, exp.TryCast))

    def case(self, node: exp.Case) -> pl.Expr:
        subject = node.this
        ifs = node.args.get("ifs") or []
        builder: Any = None
        for branch in ifs:
            cond_node = branch.this
            cond = (
                self.translate(subject) == self.translate(cond_node)
                if subject is not None
                else self.translate(cond_node)
            )
            value = self.translate(branch.args["true"])
            builder = (
                pl.when(cond).then(value) if builder is None else builder.when(cond).then(value)
            )
        if builder is None:
            raise self.unsupported(node, "CASE without WHEN")
        default = node.args.get("default")
        chain: pl.Expr = builder.otherwise(
            self.translate(default) if default is not None else pl.lit(None)
        )
        return chain

    def add_sub(self, node: exp.Add | exp.Sub) -> pl.Expr:
        sign = 1 if isinstance(node, exp.Add) else -1
        right = node.expression
        if isinstance(right, exp.Interval):
            amount_text = self.literal_str(right.this, "an INTERVAL amount")
            if not re.fullmatch(r"-?\d+", amount_text.strip()):
                raise ExpressionError(f"INTERVAL amount must be an integer in {self.sql!r}")
            unit = self.unit(right.args.get("unit"))
            if unit not in _OFFSET_UNITS:
                raise self.unsupported(right, f"INTERVAL unit {unit}")
            offset = f"{sign * int(amount_text)}{_OFFSET_UNITS[unit]}"
            shifted = self.translate(node.this).dt.offset_by(offset)
            if node.this.find(exp.Column) is None:  # DATE '...' + INTERVAL: a constant
                return _folded(shifted)
            return shifted
        a, b = self.translate(node.this), self.translate(right)
        return a + b if sign == 1 else a - b

    def function(self, node: exp.Expr) -> pl.Expr:
        t = self.translate

        if isinstance(node, exp.Lower):
            return t(node.this).str.to_lowercase()
        if isinstance(node, exp.Upper):
            return t(node.this).str.to_uppercase()
        if isinstance(node, exp.Length):
            return t(node.this).str.len_chars().cast(pl.Int64)
        if isinstance(node, exp.Substring):
            start = node.args.get("start")
            length = node.args.get("length")
            offset = t(start) - 1 if start is not None else pl.lit(0)
            return t(node.this).str.slice(offset, t(length) if length is not None else None)
        if isinstance(node, exp.Trim):
            if node.expression is not None:
                raise self.unsupported(node, "TRIM with characters")
            position = str(node.args.get("position") or "").upper()
            if position == "LEADING":
                return t(node.this).str.strip_chars_start()
            if position == "TRAILING":
                return t(node.this).str.strip_chars_end()
            return t(node.this).str.strip_chars()
        if isinstance(node, exp.Concat):
            return pl.concat_str([t(a) for a in node.expressions], ignore_nulls=True)
        if isinstance(node, exp.Replace):
            return t(node.this).str.replace_all(
                self.literal_str(node.expression, "REPLACE's pattern"),
                t(node.args["replacement"]),
                literal=True,
            )
        if isinstance(node, exp.StartsWith):
            return t(node.this).str.starts_with(t(node.expression))
        if isinstance(node, exp.EndsWith):
            return t(node.this).str.ends_with(t(node.expression))
        if isinstance(node, exp.Year):
            return t(node.this).dt.year().cast(pl.Int64)
        if isinstance(node, exp.Month):
            return t(node.this).dt.month().cast(pl.Int64)
        if isinstance(node, exp.Day):
            return t(node.this).dt.day().cast(pl.Int64)
        if isinstance(node, exp.Extract):
            part = self.unit(node.this)
            parts = {
                "YEAR": "year",
                "MONTH": "month",
                "DAY": "day",
                "HOUR": "hour",
                "MINUTE": "minute",
                "SECOND": "second",
                "QUARTER": "quarter",
                "DOW": "weekday",
            }
            if part not in parts:
                raise self.unsupported(node, f"EXTRACT({part})")
            return getattr(t(node.expression).dt, parts[part])().cast(pl.Int64)  # type: ignore[no-any-return]
        if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)):
            unit = self.unit(node.args.get("unit"))
            if unit not in _TRUNC_UNITS:
                raise self.unsupported(node, f"date_trunc unit {unit}")
            return t(node.this).dt.truncate(_TRUNC_UNITS[unit])
        if isinstance(node, exp.Coalesce):
            return pl.coalesce([t(node.this), *(t(a) for a in node.expressions)])
        if isinstance(node, exp.Nullif):
            a = t(node.this)
            return pl.when(a == t(node.expression)).then(pl.lit(None)).otherwise(a)
        if isinstance(node, (exp.Greatest, exp.Least)):
            items = [t(node.this), *(t(a) for a in node.expressions)]
            if isinstance(node, exp.Greatest):
                return pl.max_horizontal(items)
            return pl.min_horizontal(items)
        if isinstance(node, exp.Abs):
            return t(node.this).abs()
        if isinstance(node, exp.Round):
            decimals = node.args.get("decimals")
            places = int(self.literal_num(decimals)) if decimals else 0
            return sql_round(t(node.this), places)
        if isinstance(node, exp.Floor):
            return t(node.this).floor()
        if isinstance(node, exp.Ceil):
            return t(node.this).ceil()
        if isinstance(node, exp.Sqrt):
            return t(node.this).sqrt()

        raise self.unsupported(node)

    def literal_num(self, node: exp.Expr) -> Number:
        value = self.constant(node)
        if not isinstance(value, (int, float, decimal.Decimal)):
            raise ExpressionError(f"expected a number, got {node.sql()} in {self.sql!r}")
        return value
