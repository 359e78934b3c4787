"""UZO's SQL expressions against DuckDB on the same data (see tests/differential/__init__.py).

Every disagreement must be explained in :data:`tests.differential.documented.DOCUMENTED`;
``python -m tests.differential`` prints the full grouped listing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from tests.differential.cases import CASES
from tests.differential.data import ROWS, build_table, parquet_file
from tests.differential.grammar import CONSTRUCTS, corpus
from tests.differential.harness import run_differential
from tests.differential.report import figures, listing, undocumented
from tests.differential.values import Day, Instant, Span, same_value

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.differential.harness import Run

SEED = 1  # also the default of `python -m tests.differential`
COUNT = 3000
SLOW_COUNT = 20000
SLOW_SEED = 2


@pytest.fixture(scope="module")
def parquet() -> Iterator[Path]:
    with parquet_file() as path:
        yield path


@pytest.fixture(autouse=True)
def _quiet_sqlglot() -> Iterator[None]:
    """sqlglot logs a warning for every EXTRACT from a TIMESTAMPTZ it parses."""
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def _check(
    run: Run,
    title: str,
    record_property: Callable[[str, object], None],
    summary: Callable[[str], None],
) -> None:
    text = f"{title}\n{figures(run)}"
    summary(text)
    record_property("differential", text)
    missing = undocumented(run)
    if missing:
        count = sum(len(g.results) for g in missing)
        pytest.fail(
            f"{count} disagreements with DuckDB in {len(missing)} groups are not explained in "
            f"tests/differential/documented.py:\n{text}\n\n{listing(missing)}",
            pytrace=False,
        )


def test_hand_written_cases_agree_with_duckdb(
    parquet: Path,
    record_property: Callable[[str, object], None],
    differential_summary: Callable[[str], None],
) -> None:
    run = run_differential(parquet, cases=CASES)
    _check(run, f"hand-written cases ({len(CASES)})", record_property, differential_summary)


def test_generated_expressions_agree_with_duckdb(
    parquet: Path,
    record_property: Callable[[str, object], None],
    differential_summary: Callable[[str], None],
) -> None:
    run = run_differential(parquet, corpus(COUNT, SEED))
    title = f"generated corpus (seed {SEED}, {COUNT} expressions)"
    _check(run, title, record_property, differential_summary)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # about 3 minutes
def test_large_generated_corpus_agrees_with_duckdb(
    parquet: Path,
    record_property: Callable[[str, object], None],
    differential_summary: Callable[[str], None],
) -> None:
    run = run_differential(parquet, corpus(SLOW_COUNT, SLOW_SEED))
    title = f"large generated corpus (seed {SLOW_SEED}, {SLOW_COUNT} expressions)"
    _check(run, title, record_property, differential_summary)


# ------------------------------------------------------------------ the machinery itself


def test_the_corpus_is_deterministic_and_uses_every_construct() -> None:
    first = corpus(COUNT, SEED)
    assert [e.sql for e in first] == [e.sql for e in corpus(COUNT, SEED)]
    assert len({e.sql for e in first}) == COUNT
    assert {e.construct for e in first} >= {c.name for c in CONSTRUCTS}
    assert [e.sql for e in corpus(50, SEED + 1)] != [e.sql for e in first[:50]]


def test_the_table_is_deterministic_with_edge_values() -> None:
    table = build_table()
    assert str(table.to_pylist()) == str(build_table().to_pylist())
    assert table.num_rows == ROWS
    assert table.column("rid").to_pylist() == list(range(ROWS))
    assert -(2**31) in table.column("i32").to_pylist()
    assert None in table.column("i32").to_pylist()


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (None, None, True),
        (None, 0, False),
        (float("nan"), float("nan"), True),
        (-0.0, 0.0, True),
        (0.1 + 0.2, 0.3, True),  # within the relative tolerance
        (1.0, 1.0001, False),
        (float("inf"), float("inf"), True),
        (float("inf"), 1e308, False),
        (True, 1, False),
        (2, 2.0, True),
        (__import__("decimal").Decimal("2.50"), __import__("decimal").Decimal("2.5"), True),
        (__import__("decimal").Decimal("2.5"), 3, False),
        ("a", "a", True),
        ("a", "a ", False),
        ([1, None], [1, None], True),
        ([1, 2], [1], False),
        (Day(0), Instant(0, aware=False), True),  # a DATE and a TIMESTAMP at its midnight
        (Day(0), Instant(0, aware=True), False),
        (Instant(5, aware=True), Instant(5, aware=False), False),
        (Span(0, 1, 0), Span(0, 0, 86_400_000_000), True),
        (Span(1, 0, 0), Span(0, 30, 0), False),
    ],
)
def test_value_equality(a: object, b: object, same: bool) -> None:
    assert same_value(a, b) is same
    assert same_value(b, a) is same
