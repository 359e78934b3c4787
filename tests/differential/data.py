"""The typed test table of the differential test: ~40 rows of nulls, extremes and edge values.

One Arrow table, written to Parquet, read by both systems (DuckDB ``read_parquet``, UZO's
``parquet_source``). Every column's edge values are listed in :data:`COLUMNS`, then the column
is filled up with seeded random values and shuffled (each column with its own seed, so the
extremes of two columns rarely share a row: ``i32 // zi`` is not always ``min // 0``). ``rid``
is the row id (0..N-1, never null) that both systems order by.

Each column has a *family* (the generator's type): ``int``, ``dec``, ``float``, ``str``,
``bool``, ``date``, ``ts`` (naive timestamp), ``tstz`` (time-zone-aware timestamp), ``list``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import shutil
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROWS = 40
ROW_ID = "rid"

UTC = dt.UTC
I8, I16, I32, I64 = 2**7, 2**15, 2**31, 2**63


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    family: str
    edges: tuple[Any, ...]  # edge values, all present in the column (None: a null)
    fill: Callable[[random.Random], Any]  # random filler for the remaining rows
    doc: str


def _ts(text: str, tz: dt.tzinfo | None = None) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    return value.replace(tzinfo=tz) if tz is not None else value


def _paris(text: str) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Europe/Paris"))


def _rand_date(r: random.Random) -> dt.date:
    return dt.date(1950, 1, 1) + dt.timedelta(days=r.randrange(0, 365 * 100))


def _rand_ts(r: random.Random) -> dt.datetime:
    base = dt.datetime(1950, 1, 1) + dt.timedelta(seconds=r.randrange(0, 100 * 365 * 86400))
    return base.replace(microsecond=r.choice([0, 0, 500000, r.randrange(10**6)]))


def _rand_word(r: random.Random) -> str:
    return "".join(r.choice("abcxyzABC _%é") for _ in range(r.randrange(1, 8)))


def _rand_dec(r: random.Random, digits: int, scale: int) -> Decimal:
    unscaled = r.randrange(-(10 ** min(digits, 6)), 10 ** min(digits, 6))
    return Decimal(unscaled).scaleb(-scale)


COLUMNS: tuple[Column, ...] = (
    Column(
        "i8",
        pa.int8(),
        "int",
        (-128, 127, 0, 1, -1, 2, -2, None, 100, -100),
        lambda r: r.randrange(-128, 128),
        "TINYINT: its min/max, 0, +-1, a null",
    ),
    Column(
        "i16",
        pa.int16(),
        "int",
        (-(I16), I16 - 1, 0, 1, -1, None, 255, -256),
        lambda r: r.randrange(-1000, 1000),
        "SMALLINT: its min/max, 0, +-1, a null",
    ),
    Column(
        "i32",
        pa.int32(),
        "int",
        (-(I32), I32 - 1, 0, 1, -1, None, 2, 3, -7, 7, 10, 1000000),
        lambda r: r.randrange(-(10**6), 10**6),
        "INTEGER: its min/max (x * 2 overflows), 0, +-1",
    ),
    Column(
        "i64",
        pa.int64(),
        "int",
        (-(I64), I64 - 1, 0, 1, -1, None, 2**53 + 1, -(2**31), 2**31),
        lambda r: r.randrange(-(10**12), 10**12),
        "BIGINT: its min/max (x + 1 overflows), 2^53+1 (not a double), 0, +-1",
    ),
    Column(
        "u8",
        pa.uint8(),
        "int",
        (0, 255, 1, None, 128, 127),
        lambda r: r.randrange(0, 256),
        "UTINYINT: 0, 255, 127/128, a null",
    ),
    Column(
        "u32",
        pa.uint32(),
        "int",
        (0, 2**32 - 1, 1, None, 2**31),
        lambda r: r.randrange(0, 2**32),
        "UINTEGER: 0, its max, 2^31 (past INTEGER)",
    ),
    Column(
        "u64",
        pa.uint64(),
        "int",
        (0, 2**64 - 1, 1, None, 2**63, 2**63 - 1),
        lambda r: r.randrange(0, 2**40),
        "UBIGINT: 0, its max, 2^63 (past BIGINT)",
    ),
    Column(
        "n",
        pa.int32(),
        "int",
        (-5, -3, -1, 0, 0, 1, 1, 2, 3, 5, 10, None),
        lambda r: r.randrange(-5, 11),
        "small INTEGER in -5..10: positions, lengths, amounts",
    ),
    Column(
        "zi",
        pa.int32(),
        "int",
        (0, 0, 0, 0, 1, -1, 2, -2, 3, None),
        lambda r: r.choice([0, 1, -1, 2, 3, 7, -4]),
        "INTEGER divisor, about a third zeros",
    ),
    Column(
        "f32",
        pa.float32(),
        "float",
        (
            0.0,
            -0.0,
            1.5,
            -2.5,
            0.1,
            2.5,
            float("inf"),
            float("-inf"),
            3.4028234663852886e38,
            1e-45,
            1.1754943508222875e-38,
            16777217.0,
            None,
        ),
        lambda r: round(r.uniform(-1000, 1000), 3),
        "REAL: +-0.0, +-inf, max, the smallest subnormal, 2^24+1 (rounds), no NaN",
    ),
    Column(
        "f64",
        pa.float64(),
        "float",
        (
            0.0,
            -0.0,
            0.1,
            0.5,
            1.5,
            2.5,
            -2.5,
            3.5,
            float("inf"),
            float("-inf"),
            1.7976931348623157e308,
            5e-324,
            2.2250738585072014e-308,
            1e16,
            9007199254740993.0,
            1e10,
            -1e-300,
            2147483647.5,
            980.5,
            None,
        ),
        lambda r: round(r.uniform(-1e6, 1e6), 4),
        "DOUBLE: +-0.0, halves (2.5, -2.5), +-inf, max/min/subnormal, 1e10 (past INTEGER)",
    ),
    Column(
        "fnan",
        pa.float64(),
        "float",
        (float("nan"), float("nan"), 0.0, 1.0, -1.0, 2.5, float("inf"), None),
        lambda r: round(r.uniform(-10, 10), 2),
        "DOUBLE with NaNs (DuckDB orders NaN above +inf and NaN = NaN); the only NaN column",
    ),
    Column(
        "zf",
        pa.float64(),
        "float",
        (0.0, 0.0, -0.0, 1.0, -1.0, 0.5, 2.0, None),
        lambda r: r.choice([0.0, 1.0, -1.0, 0.5, 3.0, 0.1]),
        "DOUBLE divisor with +-0.0",
    ),
    Column(
        "dec2",
        pa.decimal128(15, 2),
        "dec",
        tuple(
            Decimal(v) if v is not None else None
            for v in (
                "2.50",
                "-2.50",
                "9.99",
                "0.00",
                "-0.01",
                "0.01",
                "1.50",
                "0.50",
                "-0.50",
                "3.45",
                "9999999999999.99",
                "-9999999999999.99",
                "2147483647.50",
                None,
            )
        ),
        lambda r: _rand_dec(r, 13, 2),
        "DECIMAL(15,2): halves (2.50 -> 3), 9.99, +-max",
    ),
    Column(
        "dec10",
        pa.decimal128(38, 10),
        "dec",
        tuple(
            Decimal(v) if v is not None else None
            for v in (
                "1.0000000001",
                "-1.5000000000",
                "2.5000000000",
                "0.0000000000",
                "0.0000000001",
                "9999999999999999999999999999.9999999999",
                "-9999999999999999999999999999.9999999999",
                "123456789.1234567890",
                None,
            )
        ),
        lambda r: _rand_dec(r, 28, 10),
        "DECIMAL(38,10): the widest decimal, its +-max",
    ),
    Column(
        "dec4",
        pa.decimal128(9, 4),
        "dec",
        tuple(
            Decimal(v) if v is not None else None
            for v in (
                "2.5000",
                "-2.5000",
                "0.0001",
                "99999.9999",
                "-99999.9999",
                "0.0000",
                "1.2345",
                "0.5000",
                None,
            )
        ),
        lambda r: _rand_dec(r, 5, 4),
        "DECIMAL(9,4): a 32-bit decimal, its +-max",
    ),
    Column(
        "zdec",
        pa.decimal128(9, 2),
        "dec",
        tuple(
            Decimal(v) if v is not None else None
            for v in ("0.00", "0.00", "0.00", "1.00", "-1.00", "0.50", "2.50", None)
        ),
        lambda r: r.choice([Decimal("0.00"), Decimal("1.00"), Decimal("0.25"), Decimal("-3.00")]),
        "DECIMAL(9,2) divisor, about a third zeros",
    ),
    Column(
        "b",
        pa.bool_(),
        "bool",
        (True, False, None, None),
        lambda r: r.random() < 0.5,
        "BOOLEAN with nulls",
    ),
    Column(
        "s",
        pa.string(),
        "str",
        (
            "",
            " ",
            "  pad  ",
            "\tx\n",
            "abc",
            "ABC",
            "h\u00e9llo",
            "he\u0301llo",
            "\U0001f600 emoji",
            "\u00df",
            "100%",
            "a_b",
            "a%b",
            "x" * 300,
            None,
            "Hello World",
            "it's",
            "\u01c5",
            "\u0130stanbul",
            "a\\b",
            "\ufb01",
            "a,b,c",
            "aaa",
            "-12",
            "\u00a0nbsp\u00a0",
        ),
        _rand_word,
        "VARCHAR: empty, spaces, tab/newline, composed and combining accents, emoji, ß, "
        "'%', '_', a backslash, a 300-char string, İ (lower() grows), ligature, NBSP",
    ),
    Column(
        "s2",
        pa.string(),
        "str",
        ("a", "b", "", "A", "%", "_", "\u00e9", None, "l", "ab", " ", "x", "\u00df", "c"),
        lambda r: r.choice(["a", "b", "abc", "x", "l", ""]),
        "short VARCHAR: a second operand",
    ),
    Column(
        "snum",
        pa.string(),
        "str",
        (
            "1",
            "-1",
            " 2 ",
            "1.5",
            "2.50",
            "-2.5",
            "1e3",
            "abc",
            "",
            "2147483648",
            "9223372036854775808",
            "0x10",
            "+3",
            "1_000",
            "NaN",
            "inf",
            "-0",
            None,
            "127",
            "128",
            "3.",
            ".5",
            "true",
            "0",
        ),
        lambda r: str(r.randrange(-100, 100)),
        "numbers as text (casts): signs, spaces, 1e3, junk",
    ),
    Column(
        "sdate",
        pa.string(),
        "str",
        (
            "2024-02-29",
            "2024-2-3",
            "2023-02-29",
            "0001-01-01",
            "9999-12-31",
            " 2024-01-01",
            "2024-01-01 12:00:00",
            "20240101",
            "x",
            "",
            None,
            "2024/01/02",
            "1970-01-01",
            "2024-03-31T01:02:03",
            "2024-01-01T00:00:00Z",
        ),
        lambda r: _rand_date(r).isoformat(),
        "dates as text (casts): unpadded, invalid, T/Z forms",
    ),
    Column(
        "d",
        pa.date32(),
        "date",
        (
            dt.date(1, 1, 1),
            dt.date(9999, 12, 31),
            dt.date(2024, 2, 29),
            dt.date(2000, 2, 29),
            dt.date(1900, 3, 1),
            dt.date(2024, 3, 3),
            dt.date(2024, 3, 4),
            dt.date(1970, 1, 1),
            dt.date(1969, 12, 31),
            dt.date(2024, 12, 31),
            dt.date(2023, 1, 1),
            dt.date(2020, 12, 31),
            dt.date(2021, 1, 3),
            None,
        ),
        _rand_date,
        "DATE: 0001-01-01, 9999-12-31, leap days, Sundays (2024-03-03, 2023-01-01), ISO week 53",
    ),
    Column(
        "d2",
        pa.date32(),
        "date",
        (
            dt.date(2024, 1, 31),
            dt.date(2024, 3, 31),
            dt.date(1970, 1, 1),
            dt.date(2024, 2, 29),
            dt.date(2023, 12, 31),
            None,
        ),
        _rand_date,
        "DATE: a second operand (month ends for interval arithmetic)",
    ),
    Column(
        "ts",
        pa.timestamp("us"),
        "ts",
        (
            _ts("0001-01-01 00:00:00"),
            _ts("9999-12-31 23:59:59.999999"),
            _ts("2024-02-29 12:34:56.789012"),
            _ts("1970-01-01 00:00:00"),
            _ts("1969-12-31 23:59:59.999999"),
            _ts("2024-03-31 02:30:00"),
            _ts("2024-10-27 02:30:00"),
            _ts("2024-03-03 23:59:59.5"),
            _ts("2024-01-31 00:00:00"),
            None,
        ),
        _rand_ts,
        "naive TIMESTAMP(us): the extremes, leap day, a Paris DST gap/overlap wall time, Sunday",
    ),
    Column(
        "tstz",
        pa.timestamp("us", tz="UTC"),
        "tstz",
        (
            _ts("0001-01-01 00:00:00", UTC),
            _ts("9999-12-31 23:59:59.999999", UTC),
            _ts("2024-02-29 23:30:00", UTC),
            _ts("1970-01-01 00:00:00", UTC),
            _ts("2024-03-31 01:30:00", UTC),
            _ts("2024-03-03 12:00:00.000001", UTC),
            None,
        ),
        lambda r: _rand_ts(r).replace(tzinfo=UTC),
        "TIMESTAMP(us, UTC): extremes, leap day",
    ),
    Column(
        "tsparis",
        pa.timestamp("us", tz="Europe/Paris"),
        "tstz",
        (
            _paris("2024-03-31 01:59:59"),
            _paris("2024-03-31 03:00:00"),
            _paris("2024-10-27 02:30:00"),
            _paris("2024-02-29 23:30:00"),
            _paris("1970-01-01 00:00:00"),
            _paris("2024-12-31 23:59:59"),
            None,
        ),
        lambda r: _rand_ts(r).replace(tzinfo=UTC),
        "TIMESTAMP(us, Europe/Paris): around both DST changes, a local date != the UTC date",
    ),
    Column(
        "li",
        pa.list_(pa.int64()),
        "list",
        ([1, 2, 3], [], None, [None], [1, None, 3], [-1], [2**31 - 1, -(2**31)], [0, 0, 0], [5]),
        lambda r: [r.randrange(-5, 6) for _ in range(r.randrange(0, 5))],
        "LIST of BIGINT: empty, null, null elements",
    ),
)

FAMILIES = ("int", "dec", "float", "str", "bool", "date", "ts", "tstz", "list")
COLUMNS_BY_FAMILY: dict[str, tuple[str, ...]] = {
    f: tuple(c.name for c in COLUMNS if c.family == f) for f in FAMILIES
}
FAMILY_OF: dict[str, str] = {c.name: c.family for c in COLUMNS}


def _column_values(column: Column, index: int) -> list[Any]:
    rng = random.Random(f"uzo-differential-{index}-{column.name}")
    values = list(column.edges)
    assert len(values) <= ROWS, column.name
    values += [column.fill(rng) for _ in range(ROWS - len(values))]
    rng.shuffle(values)
    return values


def build_table() -> pa.Table:
    arrays: dict[str, pa.Array] = {ROW_ID: pa.array(range(ROWS), pa.int64())}
    for index, column in enumerate(COLUMNS):
        arrays[column.name] = pa.array(_column_values(column, index), column.type)
    return pa.table(arrays)


def write_parquet(directory: Path) -> Path:
    path = directory / "differential.parquet"
    pq.write_table(build_table(), path)
    return path


@contextlib.contextmanager
def parquet_file() -> Iterator[Path]:
    """The table as a Parquet file in a temporary directory, removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="uzo-differential-"))
    try:
        yield write_parquet(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def describe() -> str:
    """One line per column: name, Arrow type, what it holds."""
    return "\n".join(f"{c.name:8} {c.type!s:28} {c.doc}" for c in COLUMNS)
