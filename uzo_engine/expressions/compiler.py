"""The typed translation of one SQL expression (a sqlglot tree) into a Polars expression.

The input schema is known, so every node gets its DuckDB type while it is
translated; operators and functions check their operand types and refuse what
DuckDB refuses, in DuckDB's words, before anything runs. Constant
sub-expressions are folded (``DATE '1995-01-01' + INTERVAL 1 YEAR`` becomes a
literal Polars can compare with Parquet statistics).

Conditional branches (CASE, IF, COALESCE) are translated in a *scope*: the rows
for which the branch is used. Operations that can fail (strict casts, integer
overflow, division by zero) mask the rows outside their scope first, so a
guarded expression (``IF(q = 0, NULL, a // q)``) only fails where DuckDB would.
"""

from __future__ import annotations

import contextlib
import decimal
import difflib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import polars as pl
from sqlglot import exp

from uzo_engine.expressions import arithmetic
from uzo_engine.expressions.arithmetic import Interval
from uzo_engine.expressions.casts import cast
from uzo_engine.expressions.registry import REGISTRY, sql_function_name
from uzo_engine.expressions.sqltypes import (
    decimal_literal_type,
    family,
    is_numeric,
    literal_int_type,
    sql_name,
)
from uzo_engine.expressions.typed import (
    ExpressionError,
    LazyText,
    Typed,
    constant,
    null_of,
    scalar,
)
from uzo_engine.expressions.unify import coerce, unify

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

BOOL = pl.Boolean()
NULL_BOOL = Typed(pl.lit(None, dtype=pl.Boolean), BOOL, None)


class MissingColumnError(ExpressionError):
    def __init__(self, message: str, column: str) -> None:
        super().__init__(message)
        self.column = column


_INTERVAL_UNITS = {
    "YEAR": ("months", 12),
    "QUARTER": ("months", 3),
    "MONTH": ("months", 1),
    "WEEK": ("days", 7),
    "DAY": ("days", 1),
    "HOUR": ("micros", 3_600_000_000),
    "MINUTE": ("micros", 60_000_000),
    "SECOND": ("micros", 1_000_000),
    "MILLISECOND": ("micros", 1_000),
    "MICROSECOND": ("micros", 1),
}
_INTERVAL_TEXT = re.compile(r"^\s*(-?\d+)\s*([A-Za-z]+)?\s*$")


def unit_name(text: str) -> str:
    unit = text.strip().upper()
    aliases = {
        "YEARS": "YEAR", "Y": "YEAR", "YR": "YEAR", "YRS": "YEAR",
        "QUARTERS": "QUARTER", "MONTHS": "MONTH", "MON": "MONTH", "MONS": "MONTH",
        "WEEKS": "WEEK", "W": "WEEK", "DAYS": "DAY", "D": "DAY",
        "HOURS": "HOUR", "H": "HOUR", "HR": "HOUR", "HRS": "HOUR",
        "MINUTES": "MINUTE", "MIN": "MINUTE", "MINS": "MINUTE", "M": "MINUTE",
        "SECONDS": "SECOND", "S": "SECOND", "SEC": "SECOND", "SECS": "SECOND",
        "MILLISECONDS": "MILLISECOND", "MS": "MILLISECOND", "MSEC": "MILLISECOND",
        "MICROSECONDS": "MICROSECOND", "US": "MICROSECOND", "USEC": "MICROSECOND",
    }  # fmt: skip
    return aliases.get(unit, unit)


def parse_number(text: str) -> Typed:
    """A numeric literal typed as DuckDB types it: INTEGER/BIGINT, DECIMAL(p,s), DOUBLE."""
    if re.fullmatch(r"\d+", text):
        value = int(text)
        return constant(value, literal_int_type(value), int_literal=True)
    if re.fullmatch(r"\d*\.\d*", text) and text != ".":
        number = decimal.Decimal(text)
        dtype = decimal_literal_type(number)
        if dtype is not None:
            return constant(number, dtype)
    return constant(float(text), pl.Float64())


class Translator:
    def __init__(self, sql: str, schema: Mapping[str, pl.DataType]) -> None:
        self.sql = sql
        self.schema = schema
        self.columns: list[str] = []
        self.guard: pl.Expr | None = None
        self.volatile = False
        # id of each node of the tree being translated -> whether a column is under it
        self._reads_columns: dict[int, bool] = {}

    # -- helpers --------------------------------------------------------------------------

    def error(self, message: str) -> ExpressionError:
        return ExpressionError(f"{message} in expression {self.sql!r}")

    @staticmethod
    def text(node: exp.Expr) -> str:
        return node.sql(dialect="duckdb")

    @contextlib.contextmanager
    def scope(self, condition: pl.Expr | None) -> Iterator[None]:
        """Translate the body for the rows where ``condition`` (and the outer scope) holds."""
        previous = self.guard
        if condition is not None:
            self.guard = condition if previous is None else previous & condition
        try:
            yield
        finally:
            self.guard = previous

    def arg(self, node: exp.Expr, key: str = "this") -> Typed:
        child = node.args.get(key)
        if child is None:
            raise self.error(f"{sql_function_name(node)}() needs its {key} argument")
        return self.translate(child)

    def args(self, node: exp.Expr) -> list[Typed]:
        return [self.translate(a) for a in node.expressions]

    def literal_text(self, node: exp.Expr | None, what: str) -> str:
        if isinstance(node, exp.Literal) and node.is_string:
            return str(node.this)
        if isinstance(node, exp.Var):
            return str(node.this)
        raise self.error(f"{what} must be a string literal")

    def literal_value(self, node: exp.Expr | None, what: str) -> object:
        if node is None:
            raise self.error(f"{what} is missing")
        value = self.translate(node)
        if not value.constant:
            raise self.error(f"{what} must be a constant")
        return value.value

    def expect(self, t: Typed, families: tuple[str, ...], what: str) -> Typed:
        """``t`` if of one of ``families`` (a NULL or a string literal is converted)."""
        if t.family in families:
            return t
        targets = {
            "string": pl.String(), "integer": pl.Int64(), "float": pl.Float64(),
            "bool": BOOL, "date": pl.Date(), "timestamp": pl.Datetime("us"),
        }  # fmt: skip
        if (t.is_null or (t.constant and isinstance(t.value, str))) and families[0] in targets:
            return coerce(t, targets[families[0]])
        wanted = " or ".join(f.upper() for f in families)
        raise self.error(f"{what} must be {wanted}, not {sql_name(t.dtype)}")

    def boolean(self, t: Typed, what: str) -> Typed:
        if t.family == "bool":
            return t
        if t.null_constant:  # a NULL of any type converts to BOOLEAN
            return NULL_BOOL
        if is_numeric(t.dtype) or (t.constant and isinstance(t.value, str)):
            return coerce(t, BOOL)
        raise self.error(f"{what} must be BOOLEAN, not {sql_name(t.dtype)}")

    # -- the walk -------------------------------------------------------------------------

    def translate(self, node: exp.Expr) -> Typed:
        if not self._reads_columns:  # the root: index its tree once
            self._index_columns(node)
        result = self._translate(node)
        if result.constant or self.volatile or isinstance(node, exp.Literal):
            return result
        if not self._reads_column(node) and not isinstance(result.dtype, pl.Duration):
            return self._fold(result)
        return result

    def _index_columns(self, tree: exp.Expr) -> None:
        """Whether each node reads a column, bottom up without recursion (a search under
        every node of ``a + b + ...`` is quadratic)."""
        order, todo = [], [tree]
        while todo:
            node = todo.pop()
            order.append(node)
            todo.extend(node.iter_expressions())
        for node in reversed(order):  # children before their parent
            self._reads_columns[id(node)] = isinstance(node, exp.Column) or any(
                self._reads_columns[id(c)] for c in node.iter_expressions()
            )

    def _reads_column(self, node: exp.Expr) -> bool:
        known = self._reads_columns.get(id(node))
        if known is None:  # a node a handler made: not in the tree
            return node.find(exp.Column) is not None
        return known

    def _fold(self, t: Typed) -> Typed:
        try:
            series = pl.select(t.expr.alias("v")).to_series()
            if len(series) != 1:
                return t
            value = series[0]  # (a date past 9999 has no Python value: stays unfolded)
            if isinstance(value, pl.Series):
                value = value.to_list()
            return Typed(scalar(value, t.dtype), t.dtype, value)
        except Exception:  # it fails on evaluation: leave it to fail (in scope) at run time
            return t

    def _translate(self, node: exp.Expr) -> Typed:
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            return handler(self, node)
        if isinstance(node, (exp.AggFunc, exp.Window)):
            raise self.error(
                f"aggregate function {sql_function_name(node)}() is not allowed in a row"
                " expression: use an aggregate or window node"
            )
        fn = REGISTRY.lookup(node)
        if fn is not None:
            if fn.volatile:
                self.volatile = True
            return fn.impl(self, node)
        raise self.unsupported(node)

    def unsupported(self, node: exp.Expr) -> ExpressionError:
        if isinstance(node, exp.Func):
            name = sql_function_name(node)
            close = difflib.get_close_matches(name, list(REGISTRY.by_name), n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            return self.error(f"unsupported function {name}(){hint}")
        return self.error(f"unsupported SQL construct {self.text(node)}")

    # -- leaves ---------------------------------------------------------------------------

    def column(self, node: exp.Column) -> Typed:
        if isinstance(node.this, exp.Star):
            raise self.error("* is not a value")
        if node.table:
            raise self.error(
                f"qualified name {self.text(node)}: refer to the column by its name alone"
            )
        name = node.name
        if name not in self.schema:
            have = ", ".join(self.schema) or "none"
            raise MissingColumnError(
                f"column {name!r} does not exist (available: {have}) in expression {self.sql!r}",
                name,
            )
        if name not in self.columns:
            self.columns.append(name)
        dtype = self.schema[name]
        if isinstance(dtype, pl.Datetime) and dtype.time_zone and dtype.time_zone != "UTC":
            # an instant, handled in UZO's session time zone (UTC) as DuckDB handles it in its own
            utc = pl.Datetime(dtype.time_unit, "UTC")
            return Typed(pl.col(name).dt.convert_time_zone("UTC"), utc)
        return Typed(pl.col(name), dtype)

    def literal(self, node: exp.Literal) -> Typed:
        if node.is_string:
            return constant(str(node.this), pl.String())
        return parse_number(str(node.this))

    # -- operators ------------------------------------------------------------------------

    def compare(self, op: str, left: exp.Expr, right: exp.Expr, node: exp.Expr) -> Typed:
        a, b = self.translate(left), self.translate(right)
        return self.compare_typed(op, a, b, self.text(node))

    def compare_typed(self, op: str, a: Typed, b: Typed, what: str) -> Typed:
        if a.null_constant or b.null_constant:  # NULL, whatever the other side (not evaluated)
            return NULL_BOOL
        a, b = _prune_friendly(a, b)
        (x, y), _ = unify([a, b], f"comparison {what}", equality=op in ("=", "<>"))
        fns: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
            "=": lambda p, q: p == q,
            "<>": lambda p, q: p != q,
            ">": lambda p, q: p > q,
            ">=": lambda p, q: p >= q,
            "<": lambda p, q: p < q,
            "<=": lambda p, q: p <= q,
        }
        return Typed(fns[op](x.expr, y.expr), BOOL)

    def logic(self, node: exp.And | exp.Or) -> Typed:
        a = self.boolean(self.translate(node.this), f"{node.key.upper()} operand")
        b = self.boolean(self.translate(node.expression), f"{node.key.upper()} operand")
        if isinstance(node, exp.And):
            return Typed(a.expr & b.expr, BOOL)
        return Typed(a.expr | b.expr, BOOL)

    def add_sub(self, node: exp.Add | exp.Sub) -> Typed:
        op = "+" if isinstance(node, exp.Add) else "-"
        left, right = node.this, node.expression
        if isinstance(right, exp.Interval) or isinstance(left, exp.Interval):
            interval_node, other = (
                (right, left) if isinstance(right, exp.Interval) else (left, right)
            )
            if op == "-" and interval_node is left:
                raise self.error("INTERVAL - value: subtract the interval from the value")
            base = self.translate(other)
            return self.add_interval(base, interval_node, -1 if op == "-" else 1)
        a, b = self.translate(left), self.translate(right)
        return self.arith_typed(op, a, b, node)

    def arith(self, op: str, node: exp.Binary) -> Typed:
        return self.arith_typed(op, self.translate(node.this), self.translate(node.expression),
                                node)  # fmt: skip

    def arith_typed(self, op: str, a: Typed, b: Typed, node: exp.Expr) -> Typed:
        what = LazyText(lambda: self.text(node))
        temporal = {"date", "timestamp", "interval"}
        if a.family in temporal or b.family in temporal:
            if a.null_constant or b.null_constant:
                if op == "-" and {a.family, b.family} <= {"date", "null"}:
                    return null_of(pl.Int64())  # date - date: days
                if (
                    op == "-"
                    and a.family in ("date", "timestamp")
                    and b.family in ("date", "timestamp")
                ):
                    return null_of(pl.Duration("us"))
                return null_of(a.dtype if a.family in temporal else b.dtype)
            return arithmetic.temporal(op, a, b, None, what)
        for t in (a, b):
            if not (is_numeric(t.dtype) or t.is_null or (t.constant and isinstance(t.value, str))):
                raise self.error(
                    f"no {op} for {sql_name(a.dtype)} and {sql_name(b.dtype)}"
                    " (cast them to numbers, or use || to concatenate strings)"
                )
        if a.constant and isinstance(a.value, str):
            a = coerce(a, b.dtype if not b.is_null else pl.Float64())
        if b.constant and isinstance(b.value, str):
            b = coerce(b, a.dtype if not a.is_null else pl.Float64())
        if a.is_null and b.is_null:
            return null_of(pl.Float64() if op == "/" else pl.Null())
        if a.null_constant or b.null_constant:  # NULL, of the type the operation would have
            x = null_of(b.dtype) if a.is_null else a  # an untyped NULL takes the other's type
            y = null_of(a.dtype) if b.is_null else b
            shape = arithmetic.numeric(op, null_of(x.dtype), null_of(y.dtype), None, what)
            return null_of(shape.dtype)
        return arithmetic.numeric(op, a, b, self.guard, what)

    def interval(self, node: exp.Interval) -> tuple[Interval | None, pl.Expr | None, str]:
        """A literal interval, or a column-valued one (an offset string expr), and its unit."""
        unit_node = node.args.get("unit")
        amount_node = node.this
        if unit_node is None and isinstance(amount_node, exp.Literal) and amount_node.is_string:
            m = _INTERVAL_TEXT.match(str(amount_node.this))
            if m is None or m.group(2) is None:
                raise self.error(f"cannot read INTERVAL {self.text(amount_node)}")
            amount, unit = int(m.group(1)), unit_name(m.group(2))
        else:
            unit = unit_name(self.literal_text(unit_node, "an INTERVAL unit") if unit_node else "")
            if isinstance(amount_node, exp.Literal):
                text = str(amount_node.this).strip()
                if not re.fullmatch(r"-?\d+", text):
                    raise self.error("an INTERVAL amount must be a whole number")
                amount = int(text)
            else:
                value = self.expect(self.translate(amount_node), ("integer",), "INTERVAL amount")
                if unit not in _INTERVAL_UNITS:
                    raise self.error(f"unsupported INTERVAL unit {unit}")
                kind, factor = _INTERVAL_UNITS[unit]
                suffix = {"months": "mo", "days": "d", "micros": "us"}[kind]
                offset = pl.concat_str([(value.expr * factor).cast(pl.String), pl.lit(suffix)])
                return None, offset, unit
        if unit not in _INTERVAL_UNITS:
            raise self.error(f"unsupported INTERVAL unit {unit}")
        kind, factor = _INTERVAL_UNITS[unit]
        return Interval(**{kind: amount * factor}), None, unit

    def add_interval(self, base: Typed, node: exp.Interval, sign: int) -> Typed:
        literal, offset, _ = self.interval(node)
        if base.is_null:
            return null_of(pl.Datetime("us"))
        base = self.expect(base, ("timestamp", "date"), "the value an INTERVAL is added to")
        if literal is not None:
            return arithmetic.temporal("+" if sign > 0 else "-", base, base, literal,
                                       self.text(node))  # fmt: skip
        assert offset is not None
        dtype = base.dtype if base.family == "timestamp" else pl.Datetime("us")
        start = base.expr if base.family == "timestamp" else base.expr.cast(dtype)
        signed = offset if sign > 0 else pl.lit("-") + offset
        return Typed(start.dt.offset_by(signed.str.replace("^--", "")), dtype)

    def concat(self, node: exp.DPipe) -> Typed:
        parts = [self.translate(node.this), self.translate(node.expression)]
        if any(p.is_null for p in parts):
            return null_of(pl.String())
        strings = [cast(p, pl.String(), strict=True, guard=self.guard) for p in parts]
        return Typed(pl.concat_str([s.expr for s in strings]), pl.String())


def _prune_friendly(a: Typed, b: Typed) -> tuple[Typed, Typed]:
    """A DATE column against a constant TIMESTAMP at midnight compares as dates (same
    answer, and Polars can then skip Parquet row groups by the column's statistics)."""
    import datetime as dt

    for x, y in ((a, b), (b, a)):
        if (
            x.family == "date"
            and not x.constant
            and y.constant
            and isinstance(y.value, dt.datetime)
            and y.value.tzinfo is None
            and y.value.time() == dt.time(0)
        ):
            day = constant(y.value.date(), pl.Date())
            return (x, day) if x is a else (day, x)
    return a, b


# the node classes handled by the translator itself (functions live in the registry)
_HANDLERS: dict[type[exp.Expr], Callable[[Translator, exp.Expr], Typed]] = {}


Handler = Callable[["Translator", exp.Expr], Typed]


def handles(*types: type[exp.Expr]) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for t in types:
            _HANDLERS[t] = fn
        return fn

    return register


_COMPARISONS: dict[type[exp.Expr], str] = {
    exp.EQ: "=", exp.NEQ: "<>", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<=",
}  # fmt: skip


def _comparison(op: str) -> Handler:
    def compare(tr: Translator, node: exp.Expr) -> Typed:
        return tr.compare(op, node.this, node.expression, node)

    return compare


for _node_type, _op in _COMPARISONS.items():
    _HANDLERS[_node_type] = _comparison(_op)

_HANDLERS[exp.Column] = lambda tr, n: tr.column(n)  # type: ignore[arg-type]
_HANDLERS[exp.Literal] = lambda tr, n: tr.literal(n)  # type: ignore[arg-type]
_HANDLERS[exp.Boolean] = lambda tr, n: constant(bool(n.this), BOOL)
_HANDLERS[exp.Null] = lambda tr, n: Typed(pl.lit(None), pl.Null(), None)
_HANDLERS[exp.Paren] = lambda tr, n: tr.translate(n.this)
_HANDLERS[exp.And] = lambda tr, n: tr.logic(n)  # type: ignore[arg-type]
_HANDLERS[exp.Or] = lambda tr, n: tr.logic(n)  # type: ignore[arg-type]
_HANDLERS[exp.Add] = lambda tr, n: tr.add_sub(n)  # type: ignore[arg-type]
_HANDLERS[exp.Sub] = lambda tr, n: tr.add_sub(n)  # type: ignore[arg-type]
_HANDLERS[exp.Mul] = lambda tr, n: tr.arith("*", n)  # type: ignore[arg-type]
_HANDLERS[exp.Div] = lambda tr, n: tr.arith("/", n)  # type: ignore[arg-type]
_HANDLERS[exp.IntDiv] = lambda tr, n: tr.arith("//", n)  # type: ignore[arg-type]
_HANDLERS[exp.Mod] = lambda tr, n: tr.arith("%", n)  # type: ignore[arg-type]
_HANDLERS[exp.DPipe] = lambda tr, n: tr.concat(n)  # type: ignore[arg-type]


def _negative(tr: Translator, node: exp.Expr) -> Typed:
    inner = node.this
    if isinstance(inner, exp.Literal) and not inner.is_string and re.fullmatch(r"\d+", inner.name):
        value = -int(inner.name)  # -9223372036854775808 is a BIGINT literal
        return constant(value, literal_int_type(value), int_literal=True)
    return arithmetic.negate(tr.translate(inner), tr.guard)


_HANDLERS[exp.Neg] = _negative


@handles(exp.Not)
def _not(tr: Translator, node: exp.Expr) -> Typed:
    value = tr.boolean(tr.translate(node.this), "NOT operand")
    return Typed(~value.expr, BOOL)


@handles(exp.Interval)
def _interval(tr: Translator, node: exp.Expr) -> Typed:
    assert isinstance(node, exp.Interval)
    literal, _, _ = tr.interval(node)
    if literal is None or literal.months:
        raise tr.error(
            "an INTERVAL of months or years, or of a column amount, can only be added to or"
            " subtracted from a DATE or TIMESTAMP"
        )
    micros = literal.days * 86_400_000_000 + literal.micros
    import datetime as dt

    value = dt.timedelta(microseconds=micros)
    return Typed(pl.lit(value, dtype=pl.Duration("us")), pl.Duration("us"), value)


def family_of(t: Typed) -> str:
    return family(t.dtype)


# Functions and the remaining constructs register themselves on import.
import uzo_engine.expressions.constructs  # noqa: E402
import uzo_engine.expressions.functions  # noqa: E402, F401
