"""CAST and TRY_CAST with DuckDB's rules, and the implicit conversion of literals.

Measured against DuckDB 2.0 (the differential test keeps it so):

- to an integer: a decimal rounds half away from zero (2.50 -> 3), a float
  half to even (2.5 -> 2), a string is trimmed and may be a decimal or an
  exponent ('1.5' -> 2, '1e3' -> 1000); a value out of range is an error;
- to a decimal: rounded half away from zero to the scale, out of range is an error;
- to a boolean: 'true'/'t'/'yes'/'y'/'1' and 'false'/'f'/'no'/'n'/'0' (any case);
  numbers are true unless 0;
- to a date or timestamp: ISO dates with or without zero padding ('2024-2-3'),
  optional time (with 'T' or a space) and offset; TIMESTAMP WITH TIME ZONE
  values convert at UTC (UZO's session time zone);
- to VARCHAR: DuckDB's spelling of floats ('1e+20', '1.0'), decimals keep their
  scale, dates ISO, timestamps 'YYYY-MM-DD HH:MM:SS[.ffffff]', booleans 'true'.

A failed CAST is an error naming the value; TRY_CAST gives NULL instead. A
string *literal* meeting a typed operand (``d >= '2024-01-01'``, ``n = '1'``) is
converted while compiling, so a bad one is refused at validation.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import TYPE_CHECKING, Any

import polars as pl

from uzo_engine.expressions.rounding import decimal_rescale
from uzo_engine.expressions.runtime import fail_if
from uzo_engine.expressions.sqltypes import HUGEINT, family, int_bits, sql_name
from uzo_engine.expressions.typed import ExpressionError, Typed, constant, null_of

if TYPE_CHECKING:
    from collections.abc import Callable

_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_DATE = re.compile(r"^\s*(-?\d{1,6})[-/](\d{1,2})[-/](\d{1,2})")
_TIME = re.compile(
    r"^[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?\s*(?:(Z|[+-]\d{2}(?::?\d{2})?))?\s*$"
)


def _round_away(value: decimal.Decimal, scale: int = 0) -> decimal.Decimal:
    return value.quantize(decimal.Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_UP)


def _parse_int(text: str) -> int:
    stripped = text.strip().replace("_", "")
    if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", stripped):
        return int(stripped, 16)
    try:
        return int(stripped)
    except ValueError:
        return int(_round_away(decimal.Decimal(stripped)))


def _parse_date(text: str) -> tuple[dt.date, str]:
    m = _DATE.match(text)
    if m is None:
        raise ValueError(text)
    return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))), text[m.end() :]


def _parse_timestamp(text: str, zone: str | None) -> dt.datetime:
    day, rest = _parse_date(text)
    if not rest.strip():
        value = dt.datetime(day.year, day.month, day.day)
        return value.replace(tzinfo=dt.UTC) if zone else value
    m = _TIME.match(rest)
    if m is None:
        raise ValueError(text)
    micros = int((m.group(4) or "0").ljust(9, "0")[:6])
    value = dt.datetime(
        day.year, day.month, day.day, int(m.group(1)), int(m.group(2)), int(m.group(3) or 0),
        micros,
    )  # fmt: skip
    offset = m.group(5)
    if offset:
        if offset == "Z":
            delta = dt.timedelta(0)
        else:
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            delta = sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        value = (value - delta).replace(tzinfo=None)  # the instant, at UTC
    return value.replace(tzinfo=dt.UTC) if zone else value


def parse_constant(text: str, target: pl.DataType) -> Any:
    """A string literal as a value of ``target`` (DuckDB's parsing); ValueError if it is not."""
    fam = family(target)
    if fam == "string":
        return text
    if fam == "integer":
        value = _parse_int(text)
        if not int_bits(target)[0] and text.strip().startswith("-") and value == 0:
            int(text.strip().replace("_", ""))  # '-0' is 0, '-0.4' an error (as DuckDB)
        _check_range(value, target)
        return value
    if fam == "decimal":
        assert isinstance(target, pl.Decimal)
        number = _round_away(decimal.Decimal(text.strip()), target.scale or 0)
        if abs(number) >= 10 ** (target.precision - (target.scale or 0)):
            raise ValueError(text)
        return number
    if fam == "float":
        return float(text.strip())
    if fam == "bool":
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(text)
    if fam == "date":
        day, rest = _parse_date(text)
        if rest.strip() and _TIME.match(rest) is None:
            raise ValueError(text)
        return day
    if fam == "timestamp":
        assert isinstance(target, pl.Datetime)
        return _parse_timestamp(text, target.time_zone)
    if fam == "time":
        return dt.time.fromisoformat(text.strip())
    raise ValueError(text)


def _check_range(value: int, target: pl.DataType) -> None:
    signed, bits = int_bits(target)
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1)) if signed else (0, 2**bits)
    if not low <= value < high:
        raise ValueError(str(value))


def convert_literal(t: Typed, target: pl.DataType) -> Typed:
    """A string literal converted to ``target`` while compiling (ExpressionError if it cannot)."""
    assert isinstance(t.value, str)
    try:
        value = parse_constant(t.value, target)
    except (ValueError, ArithmeticError, OverflowError):
        raise ExpressionError(
            f"could not convert string {t.value!r} to {sql_name(target)}"
        ) from None
    return constant(value, target)


# -- casts at run time -----------------------------------------------------------------


def _masked(expr: pl.Expr, guard: pl.Expr | None) -> pl.Expr:
    """Rows outside ``guard`` (a conditional branch not taken) as NULL, so they cannot fail."""
    return expr if guard is None else pl.when(guard).then(expr)


def _strict(
    source: pl.Expr, result: pl.Expr, dtype: pl.DataType, guard: pl.Expr | None, what: str
) -> pl.Expr:
    """``result``, failing when a non-NULL ``source`` (in scope) produced NULL."""
    bad = source.is_not_null() & result.is_null()
    if guard is not None:
        bad = bad & guard
    return fail_if(result, bad, dtype, what, sample=source)


def _string_to(e: pl.Expr, target: pl.DataType, strict: bool, guard: pl.Expr | None) -> pl.Expr:
    fam = family(target)
    trimmed = e.str.strip_chars()
    what = f"could not convert string to {sql_name(target)}"
    if fam == "integer" or target == HUGEINT:
        plain = trimmed.str.replace_all("_", "", literal=True)
        exact = plain.cast(pl.Int128, strict=False)
        hexadecimal = (
            plain.str.strip_prefix("0x")
            .str.strip_prefix("0X")
            .str.to_integer(base=16, strict=False)
        )
        hexadecimal = pl.when(plain.str.to_lowercase().str.starts_with("0x")).then(hexadecimal)
        approx = plain.cast(pl.Float64, strict=False)
        rounded = approx.abs().add(0.5).floor().mul(approx.sign())
        if target in (pl.UInt8(), pl.UInt16(), pl.UInt32(), pl.UInt64()):
            # DuckDB reads '-0' as 0 but refuses a negative sign before a fraction or exponent
            rounded = pl.when(plain.str.starts_with("-")).then(None).otherwise(rounded)
        wide = pl.coalesce(
            exact, hexadecimal.cast(pl.Int128), rounded.cast(pl.Int128, strict=False)
        )
    elif fam == "decimal":
        assert isinstance(target, pl.Decimal)
        scale = target.scale or 0
        fine = min(38, scale + 6)
        trimmed = trimmed.str.replace_all("_", "", literal=True)
        precise = trimmed.cast(pl.Decimal(38, fine), strict=False)
        approx = trimmed.cast(pl.Float64, strict=False).round(scale, mode="half_away_from_zero")
        wide = pl.coalesce(
            decimal_rescale(precise, fine, scale),
            approx.cast(pl.Decimal(38, scale), strict=False),
        )
    elif fam == "float":
        wide = trimmed.str.replace_all("_", "", literal=True).cast(pl.Float64, strict=False)
    elif fam == "bool":
        lowered = e.str.to_lowercase()
        wide = lowered.replace_strict(
            [*_TRUE, *_FALSE],
            [True] * len(_TRUE) + [False] * len(_FALSE),
            default=None,
            return_dtype=pl.Boolean,
        )
    elif fam == "date":
        head = trimmed.str.extract(r"^(-?\d{1,6}[-/]\d{1,2}[-/]\d{1,2})(?:[T ].*)?$", 1)
        wide = head.str.replace_all("/", "-", literal=True).str.to_date("%Y-%m-%d", strict=False)
    elif fam == "timestamp":
        assert isinstance(target, pl.Datetime)
        wide = _string_to_timestamp(trimmed, target)
    elif fam == "time":
        wide = trimmed.str.to_time(strict=False)
    else:
        raise ExpressionError(f"cannot cast VARCHAR to {sql_name(target)}")
    if strict:
        wide = _strict(e, wide, _wide_dtype(wide, target), guard, what)
    if fam in ("integer", "decimal"):
        return _range(wide, target, strict, guard)
    return wide


def _wide_dtype(_: pl.Expr, target: pl.DataType) -> pl.DataType:
    fam = family(target)
    if fam == "integer" or target == HUGEINT:
        return pl.Int128()
    if fam == "decimal":
        assert isinstance(target, pl.Decimal)
        return pl.Decimal(38, target.scale or 0)
    if fam == "float":
        return pl.Float64()
    if fam == "timestamp":
        assert isinstance(target, pl.Datetime)
        return pl.Datetime("us", target.time_zone)
    return target


def _string_to_timestamp(trimmed: pl.Expr, target: pl.Datetime) -> pl.Expr:
    zone = target.time_zone
    dashed = trimmed.str.replace(r"^(-?\d{1,6})/(\d{1,2})/(\d{1,2})", "${1}-${2}-${3}")
    normal = dashed.str.replace(r"^(-?\d{1,6}-\d{1,2}-\d{1,2})T", "${1} ")
    candidates = []
    for fmt in ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        candidates.append(normal.str.to_datetime(fmt, time_unit="us", strict=False))
    naive = pl.coalesce(candidates)
    with_offset = normal.str.to_datetime(
        "%Y-%m-%d %H:%M:%S%.f%#z", time_unit="us", time_zone="UTC", strict=False
    )
    if zone:
        return pl.coalesce(
            with_offset.dt.convert_time_zone(zone),
            naive.dt.replace_time_zone("UTC").dt.convert_time_zone(zone),
        )
    return pl.coalesce(with_offset.dt.replace_time_zone(None), naive)


def _range(e: pl.Expr, target: pl.DataType, strict: bool, guard: pl.Expr | None) -> pl.Expr:
    """A wider integer or decimal cast to ``target``: out of range fails (or is NULL)."""
    if not strict:
        return e.cast(target, strict=False)
    return _masked(e, guard).cast(target, strict=True)


def _to_integer(t: Typed, target: pl.DataType, strict: bool, guard: pl.Expr | None) -> pl.Expr:
    fam = t.family
    e = t.expr
    if fam == "decimal":
        assert isinstance(t.dtype, pl.Decimal)
        e = decimal_rescale(e, t.dtype.scale or 0, 0)
        if not strict:
            return e.cast(target, strict=False)
        return _masked(e, guard).cast(target, strict=True)
    if fam == "float":
        rounded = e.round(0)  # half to even, as DuckDB
        if not strict:
            return pl.when(rounded.is_finite()).then(rounded).cast(target, strict=False)
        finite = _strict(e, pl.when(e.is_finite() | e.is_null()).then(e), t.dtype, guard,
                         f"cannot cast {sql_name(t.dtype)} to {sql_name(target)}")  # fmt: skip
        return _masked(finite.round(0), guard).cast(target, strict=True)
    if fam == "bool":
        return e.cast(target)
    return _range(e, target, strict, guard)


def _to_float(t: Typed, target: pl.DataType, strict: bool, guard: pl.Expr | None) -> pl.Expr:
    """To FLOAT: a finite DOUBLE beyond FLOAT's range is an error (TRY_CAST: NULL)."""
    e = t.expr.cast(target)
    if not (isinstance(target, pl.Float32) and t.family in ("float", "decimal")):
        return e
    source = t.expr.cast(pl.Float64)
    checked = pl.when(source.is_finite() & e.is_infinite()).then(None).otherwise(e)
    if not strict:
        return checked
    return _strict(source, checked, target, guard, "value out of range for FLOAT")


def _to_decimal(t: Typed, target: pl.Decimal, strict: bool, guard: pl.Expr | None) -> pl.Expr:
    scale = target.scale or 0
    e = t.expr
    if t.family == "float" and scale == 0 and target.precision == 38:  # HUGEINT: an integer
        e = e.round(0).cast(pl.Decimal(38, 0), strict=False)  # half to even, as for integers
        if strict:
            e = _strict(t.expr, e, pl.Decimal(38, 0), guard, "cannot cast to HUGEINT")
        return _range(e, target, strict, guard)
    if t.family == "float":
        e = e.round(scale, mode="half_away_from_zero").cast(pl.Decimal(38, scale), strict=False)
        if strict:
            e = _strict(t.expr, e, pl.Decimal(38, scale), guard,
                        f"cannot cast {sql_name(t.dtype)} to {sql_name(target)}")  # fmt: skip
    elif t.family == "decimal":
        assert isinstance(t.dtype, pl.Decimal)
        if (t.dtype.scale or 0) > scale:
            e = decimal_rescale(e, t.dtype.scale or 0, scale)
    elif t.family == "bool":
        e = e.cast(pl.Int8)
    return _range(e.cast(pl.Decimal(38, scale)), target, strict, guard)


def _float_text(e: pl.Expr, single: bool = False) -> pl.Expr:
    """DuckDB's spelling of a float: the shortest text that reads back the same value (of a
    FLOAT for a FLOAT), 'e+20' exponents, '1.0'."""
    import numpy as np

    def spell(value: float | None) -> str | None:
        if value is None:
            return None
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        if single:  # the shortest digits of the FLOAT, spelled as a double would be
            value = float(np.format_float_positional(np.float32(value), unique=True, trim="-"))
        text = repr(value)
        if "e" in text:
            mantissa, exponent = text.split("e")
            sign = "-" if exponent.startswith("-") else "+"
            return f"{mantissa}e{sign}{exponent.lstrip('+-').rjust(2, '0')}"
        return text

    return e.map_elements(spell, return_dtype=pl.String)


def _to_string(t: Typed) -> pl.Expr:
    fam = t.family
    e = t.expr
    if fam == "float":
        return _float_text(e.cast(pl.Float64), single=isinstance(t.dtype, pl.Float32))
    if fam == "bool":
        return pl.when(e).then(pl.lit("true")).when(~e).then(pl.lit("false"))
    if fam == "timestamp":
        zone = isinstance(t.dtype, pl.Datetime) and t.dtype.time_zone
        utc = e.dt.convert_time_zone("UTC") if zone else e
        base = utc.dt.strftime("%Y-%m-%d %H:%M:%S")
        micros = utc.dt.microsecond()
        frac = pl.when(micros > 0).then(
            pl.lit(".") + micros.cast(pl.String).str.pad_start(6, "0").str.strip_chars_end("0")
        )
        text = pl.concat_str([base, frac.fill_null("")])
        return text + "+00" if zone else text
    if fam == "date":
        return e.dt.strftime("%Y-%m-%d")
    return e.cast(pl.String)


def _to_timestamp(t: Typed, target: pl.Datetime) -> pl.Expr:
    e = t.expr
    if t.family == "date":
        e = e.cast(pl.Datetime(target.time_unit))
        return (
            e.dt.replace_time_zone("UTC").dt.convert_time_zone(target.time_zone)
            if (target.time_zone)
            else e
        )
    assert isinstance(t.dtype, pl.Datetime)
    source_zone = t.dtype.time_zone
    if source_zone and not target.time_zone:
        e = e.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    elif target.time_zone and not source_zone:
        e = e.dt.replace_time_zone("UTC")
    if target.time_zone and source_zone != target.time_zone:
        e = e.dt.convert_time_zone(target.time_zone)
    return e.dt.cast_time_unit(target.time_unit)


_CASTABLE: dict[str, frozenset[str]] = {
    "integer": frozenset({"integer", "decimal", "float", "string", "bool"}),
    "decimal": frozenset({"integer", "decimal", "float", "string", "bool"}),
    "float": frozenset({"integer", "decimal", "float", "string", "bool"}),
    "bool": frozenset({"integer", "decimal", "float", "string", "bool"}),
    "string": frozenset(
        {"integer", "decimal", "float", "string", "bool", "date", "timestamp", "time"}
    ),
    "date": frozenset({"date", "timestamp", "string"}),
    "timestamp": frozenset({"date", "timestamp", "string", "time"}),
    "time": frozenset({"time", "string"}),
}


def _cast_list(t: Typed, target: pl.DataType, *, strict: bool) -> Typed:
    """A list to another element type (each element converted) or to VARCHAR ('[1, 2]')."""
    if isinstance(target, pl.List):
        return Typed(t.expr.cast(target, strict=strict), target)
    inner = t.expr.list.eval(pl.element().cast(pl.String).fill_null("NULL")).list.join(", ")
    return Typed(pl.concat_str([pl.lit("["), inner, pl.lit("]")]), target)


def cast(t: Typed, target: pl.DataType, *, strict: bool, guard: pl.Expr | None) -> Typed:
    """``CAST(t AS target)`` (``strict=False``: TRY_CAST)."""
    if t.dtype == target:
        return t
    if t.null_constant:  # a NULL converts to any type
        return null_of(target)
    source, dest = t.family, family(target)
    if source == "list" and dest in ("list", "string"):
        return _cast_list(t, target, strict=strict)
    if dest not in _CASTABLE.get(source, frozenset()):
        raise ExpressionError(f"cannot cast {sql_name(t.dtype)} to {sql_name(target)}")
    if t.constant and isinstance(t.value, str) and source == "string":
        try:
            return constant(parse_constant(t.value, target), target)
        except (ValueError, ArithmeticError, OverflowError):
            if strict:
                raise ExpressionError(
                    f"could not convert string {t.value!r} to {sql_name(target)}"
                ) from None
            return null_of(target)
    converters: dict[str, Callable[[], pl.Expr]] = {
        "integer": lambda: _to_integer(t, target, strict, guard),
        "decimal": lambda: _to_decimal(t, target, strict, guard),  # type: ignore[arg-type]
        "float": lambda: _to_float(t, target, strict, guard),
        "bool": lambda: t.expr != 0 if source != "string" else t.expr,
        "string": lambda: _to_string(t),
        "timestamp": lambda: _to_timestamp(t, target),  # type: ignore[arg-type]
        "date": lambda: (
            t.expr.dt.convert_time_zone("UTC").dt.date()
            if isinstance(t.dtype, pl.Datetime) and t.dtype.time_zone
            else t.expr.dt.date()
        ),
        "time": lambda: t.expr.dt.time(),
    }
    if source == "string" and dest != "string":
        expr = _string_to(t.expr, target, strict, guard)
    else:
        expr = converters[dest]()
    return Typed(expr.cast(target) if dest not in ("integer", "decimal") else expr, target)
