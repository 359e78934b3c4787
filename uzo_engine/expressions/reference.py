"""The expression dialect reference, generated from the registry the compiler uses.

``docs/expressions.md`` is :func:`render`'s output (a test keeps it current, and
``uzo schema --expressions`` prints it): the functions come from
:data:`~uzo_engine.expressions.registry.REGISTRY`, so a function cannot be
documented without being implemented, or implemented without being documented.
:data:`DIFFERENCES` lists each deliberate difference from DuckDB; the
differential test (``tests/differential``) accepts a disagreement with DuckDB
only when it names one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import uzo_engine.expressions.compiler  # noqa: F401 - registers every function
from uzo_engine.expressions.bounds import MAX_DEPTH, MAX_LENGTH, MAX_OPERANDS
from uzo_engine.expressions.registry import REGISTRY


@dataclass(frozen=True)
class Difference:
    key: str
    title: str
    text: str


DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        "untyped-null",
        "An untyped NULL fits anywhere",
        "A bare `NULL` takes the type its context asks for, so `date_part('month', NULL)`,"
        " `hour(NULL)` or `NULL + INTERVAL 1 DAY` are NULL; DuckDB refuses some of these as"
        " ambiguous overloads. Expressions made only of NULLs may be declared with a"
        " different type than DuckDB's (their values, NULL, are the same).",
    ),
    Difference(
        "decimal-width",
        "Decimals are declared 38 digits wide",
        "A DECIMAL result has DuckDB's scale but a declared precision of 38 (DuckDB tracks a"
        " narrower width, e.g. DECIMAL(18,4) for DECIMAL(15,2) * DECIMAL(15,2)). So a product"
        " that overflows DuckDB's narrower width is computed, and where two decimals meet"
        " beyond 38 digits (CASE, GREATEST, COALESCE) UZO keeps the larger scale and fails"
        " on a value that does not fit, where DuckDB drops scale and rounds.",
    ),
    Difference(
        "hugeint-decimal",
        "HUGEINT is a DECIMAL(38,0)",
        "HUGEINT values (integer sums, CAST(x AS HUGEINT)) are held as DECIMAL(38,0), the Arrow"
        " type DuckDB exports them as, so operators treat them as decimals (`//` divides as"
        " DOUBLE).",
    ),
    Difference(
        "unicode-case",
        "Full Unicode case mapping",
        "`upper` and `lower` use full Unicode case mapping ('ß' becomes 'SS', 'ﬁ' 'FI', 'İ'"
        " 'i̇'); DuckDB maps one character to one character.",
    ),
    Difference(
        "no-infinity",
        "No infinite dates",
        "Dates and timestamps are finite: 'infinity' does not convert (TRY_CAST gives NULL).",
    ),
    Difference(
        "interval-values",
        "INTERVAL values are added to dates, not kept",
        "An INTERVAL literal is supported where it is added to or subtracted from a DATE or"
        " TIMESTAMP, and `timestamp - timestamp` is a fixed duration. An INTERVAL of months"
        " or years as a value of its own (selected, or chosen by CASE/IF/COALESCE) is refused:"
        " add it to the date inside the branch instead.",
    ),
    Difference(
        "temporal-number-casts",
        "No casts between dates and numbers",
        "CAST between DATE/TIMESTAMP and numbers or booleans is refused (DuckDB allows some):"
        " use epoch(), epoch_ms(), date_part(), make_date() or to_timestamp(). A NULL of"
        " any type still converts to any type, and a TRY_CAST between such types is NULL"
        " without evaluating its argument.",
    ),
    Difference(
        "typed-literal-cast",
        "A typed literal before ::",
        "`DATE '2024-01-01'::VARCHAR` is read as `DATE ('2024-01-01'::VARCHAR)` (the parser"
        " binds `::` to the string first), a DATE; write CAST(DATE '2024-01-01' AS VARCHAR)."
        " Likewise `NULL[1]` is read as a type and refused.",
    ),
    Difference(
        "explicit-varchar",
        "Functions do not turn their arguments into text",
        "A string function given a non-string argument (`replace(ts, ...)`, `trim(false)`),"
        " or a DATE compared with a VARCHAR column, needs an explicit CAST; DuckDB converts"
        " some of these implicitly and refuses others. `concat`, `concat_ws` and `||` do"
        " convert their arguments, as in DuckDB.",
    ),
    Difference(
        "constant-folding",
        "Constants are converted before they are folded",
        "A string literal meeting a typed operand is converted while the expression is"
        " compiled, even where DuckDB's optimiser removes it first (`x BETWEEN 'ABC' AND"
        " NULL` on a timestamp is refused: 'ABC' is not a timestamp; so is `'abc'::INTEGER`"
        " in a branch that is never chosen).",
    ),
    Difference(
        "boolean-conditions",
        "Conditions must be BOOLEAN when compiled",
        "A CASE/IF condition or an AND/OR/NOT operand must be a BOOLEAN, a number or a NULL;"
        " a date, timestamp, string column or list there is refused while the workflow is"
        " validated. DuckDB casts it to BOOLEAN as it runs, so it fails only for rows that"
        " reach it.",
    ),
    Difference(
        "both-sides-evaluated",
        "AND and OR evaluate both sides",
        "Both operands of AND and OR are computed for every row, so an error in one (a"
        " division by zero, a failed CAST) fails the expression even where the other operand"
        " decides the answer; DuckDB may skip it. Guard it with CASE or IF, which evaluate a"
        " branch only where it is chosen.",
    ),
    Difference(
        "list-text",
        "Lists as text",
        "A list converted to VARCHAR is written `[a, b]` without quoting its elements (DuckDB"
        " quotes strings holding spaces or punctuation), and a list given to `concat_ws` is"
        " written out rather than skipped when empty.",
    ),
    Difference(
        "lenient-syntax",
        "A few spellings DuckDB's parser refuses",
        "The parser (sqlglot) accepts `INTERVAL -1 DAY`, and substring offsets beyond 2^32;"
        " `lpad`/`rpad` with an empty fill return the string cut to the length where DuckDB"
        " reports insufficient padding.",
    ),
    Difference(
        "extreme-values",
        "The edges of the calendar",
        "At the very ends of the supported range (the last microsecond of 9999, years before"
        " 1, which UZO counts as year 0, -1, ... where DuckDB counts 1 BC) date parts,"
        " `date_trunc` and `strftime` of such values, `julian` and `epoch_ms` may differ from"
        " DuckDB by one unit (DuckDB's TIMESTAMP WITH TIME ZONE counts 1 BC as year 1); NaN"
        " is written 'nan', never '-nan'.",
    ),
)

OPERATORS: tuple[tuple[str, str], ...] = (
    ("= <> != < <= > >=", "Comparison. Operands meet in a common type (see Types);"
     " a string literal is converted to the other operand's type (`d >= '2024-01-01'`)."),
    ("AND OR NOT", "Three-valued logic: FALSE AND NULL is FALSE, TRUE OR NULL is TRUE."),
    ("+ - *", "Integers: the wider type, an overflow is an error. Decimals: + - keep the"
     " larger scale, * adds the scales. Dates: date ± INTEGER days (a BIGINT needs a"
     " CAST, as in DuckDB), date - date (BIGINT days), date ± INTERVAL (TIMESTAMP),"
     " timestamp - timestamp (INTERVAL)."),
    ("/", "DOUBLE (FLOAT when a FLOAT meets integers or decimals); x / 0 is ±inf or NaN."),
    ("//", "Integers: truncating division. Decimals and floats: DuckDB's plain division."
     " Division by zero is an error."),
    ("%", "Remainder with the sign of the dividend (fmod for floats); by zero an error."),
    ("||", "Concatenation (values converted to text); NULL if either side is NULL."),
    ("IS [NOT] NULL, IS [NOT] TRUE/FALSE", "Never NULL."),
    ("IS [NOT] DISTINCT FROM", "Equality that treats NULLs as equal values."),
    ("[NOT] IN (...)", "Constants or expressions; a NULL in the list makes a non-match NULL."
     " `IN (subquery)` is refused: use a join node (how: semi / anti)."),
    ("[NOT] BETWEEN a AND b", "`x >= a AND x <= b`, so `0 BETWEEN 1 AND NULL` is FALSE."),
    ("[NOT] LIKE / ILIKE [ESCAPE c]", "`%` any characters, `_` one; the pattern may be a column"
     " (matched row by row)."),
    ("CASE, IF(c, a, b), COALESCE, NULLIF, GREATEST, LEAST",
     "Branches are evaluated only where they are chosen, so a guarded division or cast does"
     " not fail; the result takes the common type of the branches. GREATEST/LEAST ignore"
     " NULLs; NaN is the greatest value."),
    ("CAST(x AS t), x::t, TRY_CAST", "DuckDB's conversions (see Casts); TRY_CAST gives NULL"
     " where CAST fails, and NULL for type pairs that never convert."),
    ("list[i], list[a:b], [a, b, c]", "1-based, negative from the end, NULL outside; strings"
     " can be indexed and sliced too."),
    ("INTERVAL n unit, INTERVAL 'n units'", "Added to or subtracted from dates and timestamps:"
     " year, quarter, month, week, day, hour, minute, second, millisecond, microsecond."),
)  # fmt: skip

_RULES = """\
## Types

Values have DuckDB's types, named as DuckDB names them: TINYINT, SMALLINT, INTEGER,
BIGINT, HUGEINT (a DECIMAL(38,0) in UZO, the Arrow type DuckDB exports it as), the
unsigned integers, FLOAT, DOUBLE, DECIMAL(p,s), VARCHAR, BOOLEAN, DATE, TIME,
TIMESTAMP, TIMESTAMP WITH TIME ZONE and lists (`INTEGER[]`).

- Literals: `12` is an INTEGER (BIGINT, HUGEINT when larger) and takes the other
  operand's integer type when it fits (`tinyint_col + 1` is TINYINT); `0.06` is an
  exact DECIMAL(3,2); `1e3` is a DOUBLE; `DATE '2024-01-31'`, `TIMESTAMP '...'`,
  `TIMESTAMPTZ '...'` are typed literals.
- Operands meet in a common type: integers in the wider one (a signed and an unsigned
  type in a signed type that holds both), integers and decimals as a decimal with the
  larger scale, anything with a DOUBLE as DOUBLE, FLOAT with integers or decimals as
  FLOAT, DATE with TIMESTAMP as TIMESTAMP, BOOLEAN with integers as the integer type
  (TRUE is 1). Other mixes need a CAST; the error says so while the workflow is
  validated, before anything runs.
- NULL: an untyped `NULL` takes the type its context needs; an operator or function
  of a NULL is NULL (except COALESCE, IS, IS DISTINCT FROM, concat, concat_ws).

## Casts

- to an integer: a decimal rounds half away from zero (2.50 is 3), a float half to even
  (2.5 is 2), a string is trimmed and may be a decimal, an exponent, hex or use `_`
  ('1.5' is 2, '1e3' 1000, '0x10' 16); a value out of range is an error naming it;
- to a decimal: rounded half away from zero to the scale; out of range is an error;
- to a boolean: 'true', 't', 'yes', 'y', '1' and 'false', 'f', 'no', 'n', '0' (any
  case); a number is true unless 0;
- to a date or timestamp: ISO dates with or without zero padding, '-' or '/'
  (`'2024-2-3'`), an optional time after 'T' or a space, an optional UTC offset;
- to VARCHAR: DuckDB's spelling (floats as the shortest text that reads back, '1e+20';
  decimals keep their scale; timestamps 'YYYY-MM-DD HH:MM:SS[.ffffff]', with '+00' when
  they carry a time zone; lists '[1, 2]').

## Time zones

The session time zone is UTC. A TIMESTAMP WITH TIME ZONE is an instant: its parts,
truncation and interval arithmetic are computed in UTC, whatever zone the column was
written in; a naive TIMESTAMP meeting one is read as UTC. `ts AT TIME ZONE 'Europe/Paris'`
turns a naive local time into an instant (the later one when the clocks go back) and an
instant into Paris local time.

## Errors

An expression fails where DuckDB fails: an integer overflow, a CAST that does not convert,
a division by zero with `//` or `%`. The error names the node, the column and a sample
value (`'total' = qty * price: value 9223372036854775808 is out of range for BIGINT`).
Rows a CASE, IF or COALESCE does not choose never fail.

## Limits

An expression has at most {length:,} characters and nests at most {depth} levels deep:
each bracket, function call, CASE and operator adds a level, except that a run of one
operator (`a + b - c + ...`, `a * b / c`, `a AND b AND ...`, `a || b || ...`) is one
level however long; such a run has at most {operands:,} operands. Past a limit the
workflow does not validate, and the error names the node, the field and the limit
(`expression '((((...'... nests deeper than {depth} levels`). A `sql` node's query nests
at most {depth} brackets deep.
"""


def render() -> str:
    """The Markdown reference of the dialect (``docs/expressions.md``)."""
    lines = [
        "# UZO expressions",
        "",
        "Filter conditions, derived columns and routing conditions are SQL expressions in",
        "DuckDB's dialect, with DuckDB's semantics: a differential test compares every",
        "construct below with DuckDB over typed data with NULLs and edge values. This page is",
        "generated from the registry the compiler uses (`uzo schema --expressions`).",
        "",
        "A join node's `condition` is an expression over both of its inputs, with each column",
        "named by its side: `l.amount > r.threshold` compares the left input's `amount` with",
        'the right input\'s `threshold` (a quoted name: `l."unit price"`). It replaces the',
        "join keys, for how `inner`, `left`, `right` or `full`: an equality goes in the",
        "condition too (`l.id = r.id AND l.ts BETWEEN r.valid_from AND r.valid_to`). A pair",
        "of rows whose condition is NULL does not match; a left or full join keeps the left",
        "rows that match nothing (the right columns NULL), a right or full join the right",
        "rows. The right input's columns whose names the left one has get the join's",
        "`suffix` (`_right`). Each condition is checked against DuckDB's `JOIN ... ON`.",
        "",
        "## Operators",
        "",
        "| operator | meaning |",
        "|---|---|",
    ]
    lines += [f"| `{op}` | {text} |" for op, text in OPERATORS]
    rules = _RULES.format(length=MAX_LENGTH, depth=MAX_DEPTH, operands=MAX_OPERANDS)
    lines += ["", rules.rstrip(), "", "## Functions", ""]
    category = None
    for fn in REGISTRY:
        if fn.category != category:
            category = fn.category
            lines += ["", f"### {category.capitalize()}", "", "| function | returns | |",
                      "|---|---|---|"]  # fmt: skip
        names = f"`{fn.signature}`"
        if fn.aliases:
            names += " (also " + ", ".join(f"`{a}`" for a in fn.aliases) + ")"
        lines.append(f"| {names} | {fn.returns} | {fn.doc} |")
    lines += [
        "",
        "Any other function is refused while the workflow is validated, naming it (and the",
        "closest known names). Aggregates and window functions belong to the aggregate and",
        "window nodes.",
        "",
        "## Differences from DuckDB",
        "",
    ]
    for d in DIFFERENCES:
        lines += [f"- **{d.title}** (`{d.key}`). {d.text}"]
    return "\n".join(lines) + "\n"


def difference_keys() -> frozenset[str]:
    return frozenset(d.key for d in DIFFERENCES)
