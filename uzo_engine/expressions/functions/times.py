"""Date and time functions with DuckDB's parts, units and result types.

Date parts are BIGINT (``epoch`` is DOUBLE seconds); ``dayofweek``/``dow`` count
from Sunday = 0, ``isodow`` from Monday = 1; ``week`` is the ISO week;
``millisecond`` and ``microsecond`` include the seconds (as DuckDB). A
TIMESTAMP WITH TIME ZONE is read in UTC (UZO's session time zone).
``date_trunc`` returns a TIMESTAMP, ``date_diff`` counts the boundaries crossed.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import polars as pl
from sqlglot import exp

from uzo_engine.expressions.casts import cast
from uzo_engine.expressions.compiler import Translator, unit_name
from uzo_engine.expressions.registry import function
from uzo_engine.expressions.typed import Typed, null_of

if TYPE_CHECKING:
    from collections.abc import Callable

BIGINT = pl.Int64()
DOUBLE = pl.Float64()
TIMESTAMP = pl.Datetime("us")


def _temporal(tr: Translator, value: Typed, what: str) -> Typed:
    t = tr.expect(value, ("timestamp", "date"), what)
    if isinstance(t.dtype, pl.Datetime) and t.dtype.time_zone:
        return Typed(t.expr.dt.convert_time_zone("UTC"), pl.Datetime(t.dtype.time_unit, "UTC"))
    return t


def _as_timestamp(t: Typed) -> pl.Expr:
    return t.expr.cast(TIMESTAMP) if t.family == "date" else t.expr


def _epoch_seconds(t: Typed) -> pl.Expr:
    return _as_timestamp(t).dt.epoch("us").cast(DOUBLE) / 1_000_000


def _time_part(get: Callable[[pl.Expr], pl.Expr]) -> Callable[[pl.Expr, Typed], pl.Expr]:
    """A time-of-day part: 0 for a DATE (midnight), NULL for a NULL."""

    def part(e: pl.Expr, t: Typed) -> pl.Expr:
        if t.family == "timestamp":
            return get(e)
        return pl.when(e.is_not_null()).then(pl.lit(0, dtype=BIGINT))

    return part


def _i(e: pl.Expr) -> pl.Expr:
    return e.cast(BIGINT)


_PARTS: dict[str, Callable[[pl.Expr, Typed], pl.Expr]] = {
    "YEAR": lambda e, t: e.dt.year(),
    "MONTH": lambda e, t: e.dt.month(),
    "DAY": lambda e, t: e.dt.day(),
    "HOUR": _time_part(lambda e: e.dt.hour()),
    "MINUTE": _time_part(lambda e: e.dt.minute()),
    "SECOND": _time_part(lambda e: e.dt.second()),
    "MILLISECOND": _time_part(lambda e: _i(e.dt.second()) * 1000 + _i(e.dt.millisecond())),
    "MICROSECOND": _time_part(
        lambda e: _i(e.dt.second()) * 1_000_000 + _i(e.dt.microsecond())
    ),
    "QUARTER": lambda e, t: e.dt.quarter(),
    "DOW": lambda e, t: e.dt.weekday() % 7,
    "DAYOFWEEK": lambda e, t: e.dt.weekday() % 7,
    "ISODOW": lambda e, t: e.dt.weekday(),
    "DOY": lambda e, t: e.dt.ordinal_day(),
    "DAYOFYEAR": lambda e, t: e.dt.ordinal_day(),
    "WEEK": lambda e, t: e.dt.week(),
    "WEEKOFYEAR": lambda e, t: e.dt.week(),
    "ISOYEAR": lambda e, t: e.dt.iso_year(),
    "YEARWEEK": lambda e, t: _i(e.dt.iso_year()) * 100 + _i(e.dt.week()),
    "DECADE": lambda e, t: _i(e.dt.year()).floordiv(10),
    "CENTURY": lambda e, t: pl.when(e.dt.year() > 0)
    .then((_i(e.dt.year()) - 1).floordiv(100) + 1)
    .otherwise(-((-_i(e.dt.year())).floordiv(100) + 1)),
    "MILLENNIUM": lambda e, t: pl.when(e.dt.year() > 0)
    .then((_i(e.dt.year()) - 1).floordiv(1000) + 1)
    .otherwise(-((-_i(e.dt.year())).floordiv(1000) + 1)),
    "ERA": lambda e, t: pl.when(e.dt.year() > 0).then(1).when(e.is_not_null()).then(0),
}  # fmt: skip
_PART_ALIASES = {"DAYOFMONTH": "DAY", "WEEKDAY": "DOW", "ISOWEEK": "WEEK", "YEARS": "YEAR"}


def date_part(tr: Translator, part: str, value: Typed) -> Typed:
    name = unit_name(part)
    name = _PART_ALIASES.get(name, name)
    if value.is_null:
        return null_of(DOUBLE if name in ("EPOCH", "JULIAN") else BIGINT)
    t = _temporal(tr, value, f"date part {part.lower()}'s argument")
    if name == "EPOCH":
        return Typed(_epoch_seconds(t), DOUBLE)
    if name == "JULIAN":  # the Julian day number, with the fraction of the day
        day = _as_timestamp(t).dt.date().cast(pl.Int32).cast(DOUBLE) + 2_440_588
        fraction = (_epoch_seconds(t) % 86_400) / 86_400
        return Typed(day + fraction, DOUBLE)
    getter = _PARTS.get(name)
    if getter is None:
        known = ", ".join(sorted(p.lower() for p in (*_PARTS, "EPOCH")))
        raise tr.error(f"unsupported date part {part!r} (known: {known})")
    return Typed(getter(t.expr, t).cast(BIGINT), BIGINT)


@function(
    "extract", signature="extract(part FROM value)", returns="BIGINT (epoch: DOUBLE)",
    category="date", nodes=(exp.Extract,),
    doc="A part of a date or timestamp: year, quarter, month, week, day, doy, dow, isodow,"
    " hour, minute, second, millisecond, microsecond, epoch, isoyear, decade, century.",
)  # fmt: skip
def _extract(tr: Translator, node: exp.Expr) -> Typed:
    part = tr.literal_text(node.this, "a date part")
    return _part_by_name(tr, part, node.expression, tr.arg(node, "expression"))


def _part_by_name(tr: Translator, part: str, value_node: exp.Expr, value: Typed) -> Typed:
    result = date_part(tr, part, value)
    if value.null_constant and not value.is_null and value_node.find(exp.Column) is None:
        return null_of(DOUBLE)  # DuckDB folds EXTRACT(part FROM <a NULL constant>) to a DOUBLE
    return result


@function(
    "date_part", signature="date_part(part, value)", returns="BIGINT (epoch: DOUBLE)",
    category="date", aliases=("datepart",), doc="Same as `extract(part FROM value)`.",
)  # fmt: skip
def _date_part(tr: Translator, node: exp.Expr) -> Typed:
    args = node.expressions
    if len(args) != 2:
        raise tr.error("date_part(part, value) takes two arguments")
    part = tr.literal_text(args[0], "a date part")
    return _part_by_name(tr, part, args[1], tr.translate(args[1]))


def _part_function(name: str, node_type: type[exp.Expr] | None, part: str, doc: str,
                   aliases: tuple[str, ...] = ()) -> None:  # fmt: skip
    returns = "DOUBLE" if part == "EPOCH" else "BIGINT"

    @function(
        name, signature=f"{name}(value)", returns=returns, category="date", doc=doc,
        nodes=(node_type,) if node_type else (), aliases=aliases,
    )  # fmt: skip
    def impl(tr: Translator, node: exp.Expr) -> Typed:
        value = tr.arg(node) if node_type is not None else tr.args(node)[0]
        return date_part(tr, part, value)


_part_function("year", exp.Year, "YEAR", "The year.")
_part_function("quarter", exp.Quarter, "QUARTER", "The quarter, 1-4.")
_part_function("month", exp.Month, "MONTH", "The month, 1-12.")
_part_function("day", exp.Day, "DAY", "The day of the month.", ("dayofmonth",))
_part_function("hour", exp.Hour, "HOUR", "The hour.")
_part_function("minute", exp.Minute, "MINUTE", "The minute.")
_part_function("second", exp.Second, "SECOND", "The second (whole).")
_part_function("dayofweek", exp.DayOfWeek, "DOW", "Day of the week, Sunday = 0.", ("dow",))
_part_function("isodow", exp.DayOfWeekIso, "ISODOW", "ISO day of the week, Monday = 1.")
_part_function("dayofyear", exp.DayOfYear, "DOY", "Day of the year, 1-366.", ("doy",))
_part_function("week", exp.Week, "WEEK", "ISO week number.")
_part_function("weekofyear", exp.WeekOfYear, "WEEK", "ISO week number.")
_part_function("epoch", exp.TimeToUnix, "EPOCH", "Seconds since 1970-01-01 UTC, as DOUBLE.")
_part_function("millisecond", None, "MILLISECOND", "Seconds and milliseconds, in ms.")
_part_function("microsecond", None, "MICROSECOND", "Seconds and microseconds, in µs.")
_part_function("isoyear", None, "ISOYEAR", "The ISO year.")


_TRUNC = {
    "MILLENNIUM": "1000y", "CENTURY": "100y", "DECADE": "10y", "YEAR": "1y", "QUARTER": "1q",
    "MONTH": "1mo", "WEEK": "1w", "DAY": "1d", "HOUR": "1h", "MINUTE": "1m", "SECOND": "1s",
    "MILLISECOND": "1ms", "MICROSECOND": "1us",
}  # fmt: skip


@function(
    "date_trunc", signature="date_trunc(part, value)", returns="TIMESTAMP", category="date",
    nodes=(exp.TimestampTrunc, exp.DateTrunc), aliases=("datetrunc",),
    doc="The value truncated to the part (year ... microsecond); a TIMESTAMP, as DuckDB.",
)  # fmt: skip
def _date_trunc(tr: Translator, node: exp.Expr) -> Typed:
    unit = unit_name(tr.literal_text(node.args.get("unit"), "a date_trunc part"))
    value = tr.arg(node)
    if value.is_null:
        return null_of(TIMESTAMP)
    t = tr.expect(value, ("timestamp", "date"), "date_trunc's value")
    if unit not in _TRUNC:
        raise tr.error(f"unsupported date_trunc part {unit.lower()}")
    dtype = t.dtype if t.family == "timestamp" else TIMESTAMP
    start = _as_timestamp(t)
    years = {"MILLENNIUM": 1000, "CENTURY": 100, "DECADE": 10}.get(unit)
    if years is not None:  # counted from year 0, not from 1970 as Polars' truncate counts
        year = _i(start.dt.year()).floordiv(years) * years
        first = pl.datetime(year, 1, 1, time_unit="us", time_zone=getattr(dtype, "time_zone", None))
        return Typed(first, dtype)
    return Typed(start.dt.truncate(_TRUNC[unit]), dtype)


def _months(e: pl.Expr) -> pl.Expr:
    return e.dt.year().cast(BIGINT) * 12 + e.dt.month().cast(BIGINT)


_MICROS = {"HOUR": 3_600_000_000, "MINUTE": 60_000_000, "SECOND": 1_000_000,
           "MILLISECOND": 1_000, "MICROSECOND": 1}  # fmt: skip


@function(
    "date_diff", signature="date_diff(part, start, end)", returns="BIGINT", category="date",
    nodes=(exp.DateDiff,), aliases=("datediff",),
    doc="The number of `part` boundaries between start and end (year, quarter, month,"
    " week (whole weeks), day, hour, minute, second, millisecond, microsecond).",
)  # fmt: skip
def _date_diff(tr: Translator, node: exp.Expr) -> Typed:
    unit = unit_name(tr.literal_text(node.args.get("unit"), "a date_diff part"))
    end, start = tr.arg(node, "this"), tr.arg(node, "expression")
    if start.is_null or end.is_null:
        return null_of(BIGINT)
    a = _temporal(tr, start, "date_diff's start")
    b = _temporal(tr, end, "date_diff's end")
    x, y = _as_timestamp(a), _as_timestamp(b)
    if unit == "YEAR":
        diff = y.dt.year().cast(BIGINT) - x.dt.year().cast(BIGINT)
    elif unit == "QUARTER":
        diff = (_months(y) - 1) // 3 - (_months(x) - 1) // 3
    elif unit == "MONTH":
        diff = _months(y) - _months(x)
    elif unit in ("DAY", "WEEK"):
        days = (y.dt.date() - x.dt.date()).dt.total_days().cast(BIGINT)
        diff = days if unit == "DAY" else days.cast(DOUBLE).truediv(7).cast(BIGINT)
    elif unit in _MICROS:
        size = _MICROS[unit]
        diff = y.dt.epoch("us") // size - x.dt.epoch("us") // size
    else:
        raise tr.error(f"unsupported date_diff part {unit.lower()}")
    return Typed(diff.cast(BIGINT), BIGINT)


def _chrono_format(text: str) -> str:
    """DuckDB's strftime codes in chrono's spelling (``%f`` is microseconds in DuckDB)."""
    return text.replace("%f", "%6f").replace("%g", "%3f").replace("%n", "%9f")


@function(
    "strftime", signature="strftime(value, format)", returns="VARCHAR", category="date",
    nodes=(exp.TimeToStr,), doc="The value formatted (%Y %m %d %H %M %S %f %j %a %b ...).",
)  # fmt: skip
def _strftime(tr: Translator, node: exp.Expr) -> Typed:
    t = _temporal(tr, tr.arg(node), "strftime's value")
    fmt = tr.literal_text(node.args.get("format"), "strftime's format")
    return Typed(_as_timestamp(t).dt.strftime(_chrono_format(fmt)), pl.String())


@function(
    "strptime", signature="strptime(string, format)", returns="TIMESTAMP", category="date",
    nodes=(exp.StrToTime,),
    doc="The string read with the format (an error if it does not match); try_strptime"
    " gives NULL instead.",
)  # fmt: skip
def _strptime(tr: Translator, node: exp.Expr) -> Typed:
    s = tr.expect(tr.arg(node), ("string",), "strptime's string")
    fmt = _chrono_format(tr.literal_text(node.args.get("format"), "strptime's format"))
    parsed = s.expr.str.to_datetime(fmt, time_unit="us", strict=False)
    if node.args.get("safe"):
        return Typed(parsed, TIMESTAMP)
    from uzo_engine.expressions.casts import _strict

    return Typed(_strict(s.expr, parsed, TIMESTAMP, tr.guard,
                         f"could not parse string with format {fmt!r}"), TIMESTAMP)  # fmt: skip


@function(
    "try_strptime", signature="try_strptime(string, format)", returns="TIMESTAMP",
    category="date", doc="`strptime`, NULL where the string does not match the format.",
)  # fmt: skip
def _try_strptime(tr: Translator, node: exp.Expr) -> Typed:
    args = node.expressions
    if len(args) != 2:
        raise tr.error("try_strptime(string, format) takes two arguments")
    s = tr.expect(tr.translate(args[0]), ("string",), "try_strptime's string")
    fmt = _chrono_format(tr.literal_text(args[1], "try_strptime's format"))
    return Typed(s.expr.str.to_datetime(fmt, time_unit="us", strict=False), TIMESTAMP)


@function(
    "last_day", signature="last_day(value)", returns="DATE", category="date",
    nodes=(exp.LastDay,), doc="The last day of the value's month.",
)  # fmt: skip
def _last_day(tr: Translator, node: exp.Expr) -> Typed:
    t = _temporal(tr, tr.arg(node), "last_day's value")
    return Typed(t.expr.dt.month_end().dt.date() if t.family == "timestamp"
                 else t.expr.dt.month_end(), pl.Date())  # fmt: skip


_MAX_YEAR = 262_000  # Polars builds dates within about ±262,143 years


@function(
    "make_date", signature="make_date(year, month, day)", returns="DATE", category="date",
    nodes=(exp.DateFromParts,), doc="The date of those parts (an error if it does not exist).",
)  # fmt: skip
def _make_date(tr: Translator, node: exp.Expr) -> Typed:
    parts = [tr.expect(tr.arg(node, k), ("integer",), f"make_date's {k}")
             for k in ("year", "month", "day")]  # fmt: skip
    if any(p.is_null for p in parts):
        return null_of(pl.Date())
    y, m, d = (p.expr for p in parts)
    # parts are clipped to what Polars can build (it raises for month 13 even in a row
    # a CASE never chooses), then checked
    in_range = m.is_between(1, 12) & y.is_between(-_MAX_YEAR, _MAX_YEAR) & d.is_between(1, 31)
    first = pl.date(y.clip(-_MAX_YEAR, _MAX_YEAR), m.clip(1, 12), 1)
    day = first.dt.offset_by(pl.concat_str([(d.clip(1, 31) - 1).cast(pl.String), pl.lit("d")]))
    ok = in_range & (day.dt.month() == m)
    from uzo_engine.expressions.casts import _strict

    result = pl.when(ok).then(day)
    return Typed(_strict(d, result, pl.Date(), tr.guard, "make_date: no such date"), pl.Date())


@function(
    "now", signature="now()", returns="TIMESTAMP WITH TIME ZONE", category="date",
    nodes=(exp.CurrentTimestamp,), aliases=("current_timestamp", "get_current_timestamp"),
    volatile=True, doc="When the plan is built (the same for every row of a run).",
)  # fmt: skip
def _now(tr: Translator, node: exp.Expr) -> Typed:
    value = dt.datetime.now(dt.UTC)
    dtype = pl.Datetime("us", "UTC")
    return Typed(pl.lit(value, dtype=dtype), dtype)


@function(
    "current_date", signature="current_date", returns="DATE", category="date",
    nodes=(exp.CurrentDate,), aliases=("today",), volatile=True,
    doc="Today's date in UTC, when the plan is built.",
)  # fmt: skip
def _today(tr: Translator, node: exp.Expr) -> Typed:
    return Typed(pl.lit(dt.datetime.now(dt.UTC).date()), pl.Date())


@function(
    "to_timestamp", signature="to_timestamp(seconds)", returns="TIMESTAMP WITH TIME ZONE",
    category="date", nodes=(exp.UnixToTime,), doc="The instant `seconds` after 1970-01-01 UTC.",
)  # fmt: skip
def _to_timestamp(tr: Translator, node: exp.Expr) -> Typed:
    value = tr.arg(node)
    scale_node = node.args.get("scale")
    scale = int(str(tr.literal_value(scale_node, "the scale"))) if scale_node is not None else 0
    if value.family in ("date", "timestamp") and scale == 3:  # epoch_ms(value): milliseconds
        t = _temporal(tr, value, "epoch_ms's value")
        micros = _as_timestamp(t).dt.epoch("us")
        return Typed((micros.cast(DOUBLE) / 1000).round(0).cast(BIGINT), BIGINT)
    if scale == 3:  # epoch_ms(n): DuckDB takes integers up to BIGINT, not fractions
        seconds = tr.expect(value, ("integer",), "epoch_ms's milliseconds")
        if seconds.dtype == pl.UInt64():
            raise tr.error("epoch_ms's milliseconds must be at most a BIGINT, not UBIGINT")
    else:
        seconds = tr.expect(value, ("integer", "decimal", "float"), "to_timestamp's seconds")
    if scale:
        micros = (seconds.expr.cast(DOUBLE) * 10 ** (6 - scale)).round(0).cast(BIGINT)
        dtype = TIMESTAMP  # epoch_ms(n): a TIMESTAMP, as DuckDB
        return Typed(pl.from_epoch(micros, time_unit="us"), dtype)
    micros = (seconds.expr.cast(DOUBLE) * 1_000_000).round(0).cast(BIGINT)
    dtype = pl.Datetime("us", "UTC")
    return Typed(pl.from_epoch(micros, time_unit="us").dt.replace_time_zone("UTC"), dtype)


@function(
    "timezone", signature="value AT TIME ZONE zone", returns="TIMESTAMP or TIMESTAMPTZ",
    category="date", nodes=(exp.AtTimeZone,), aliases=("timezone",),
    doc="A TIMESTAMP read as local time in `zone` gives a TIMESTAMP WITH TIME ZONE; a"
    " TIMESTAMP WITH TIME ZONE gives the local TIMESTAMP in `zone`.",
)  # fmt: skip
def _at_time_zone(tr: Translator, node: exp.Expr) -> Typed:
    if isinstance(node, exp.Anonymous):  # timezone(zone, value)
        if len(node.expressions) != 2:
            raise tr.error("timezone(zone, value) takes two arguments")
        zone_node, value_node = node.expressions
    else:
        zone_node, value_node = node.args.get("zone"), node.this
    value = tr.expect(tr.translate(value_node), ("timestamp", "date"), "the zoned value")
    zone = tr.literal_text(zone_node, "the time zone")
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(zone)
    except Exception:
        raise tr.error(f"unknown time zone {zone!r}") from None
    if value.family == "date":
        value = cast(value, TIMESTAMP, strict=True, guard=None)
    assert isinstance(value.dtype, pl.Datetime)
    if value.dtype.time_zone:
        local = value.expr.dt.convert_time_zone(zone).dt.replace_time_zone(None)
        return Typed(local, pl.Datetime(value.dtype.time_unit))
    # a local time that occurs twice (clocks going back) is read as the later instant
    local = value.expr
    aware = local.dt.replace_time_zone(zone, ambiguous="latest", non_existent="null")
    # a local time the clocks skip (02:30 when they go forward) is read with the offset
    # before the gap, as DuckDB reads it
    skipped = (local - pl.duration(hours=1)).dt.replace_time_zone(
        zone, ambiguous="latest", non_existent="null"
    ) + pl.duration(hours=1)
    aware = pl.coalesce(aware, pl.when(local.is_not_null()).then(skipped))
    aware = aware.dt.convert_time_zone("UTC")
    return Typed(aware, pl.Datetime(value.dtype.time_unit, "UTC"))


@function(
    "dayname", signature="dayname(value)", returns="VARCHAR", category="date",
    nodes=(exp.Dayname,), doc="English name of the weekday.",
)  # fmt: skip
def _dayname(tr: Translator, node: exp.Expr) -> Typed:
    t = _temporal(tr, tr.arg(node), "dayname's value")
    return Typed(t.expr.dt.strftime("%A"), pl.String())


@function(
    "monthname", signature="monthname(value)", returns="VARCHAR", category="date",
    nodes=(exp.Monthname,), doc="English name of the month.",
)  # fmt: skip
def _monthname(tr: Translator, node: exp.Expr) -> Typed:
    t = _temporal(tr, tr.arg(node), "monthname's value")
    return Typed(t.expr.dt.strftime("%B"), pl.String())


@function(
    "date_add", signature="date_add(value, interval)", returns="TIMESTAMP", category="date",
    nodes=(exp.DateAdd,), doc="`value + interval`.",
)  # fmt: skip
def _date_add(tr: Translator, node: exp.Expr) -> Typed:
    interval = node.expression
    if not isinstance(interval, exp.Interval):
        raise tr.error("date_add's second argument must be an INTERVAL")
    return tr.add_interval(tr.arg(node), interval, 1)
