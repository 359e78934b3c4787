"""The disagreements with DuckDB that are explained: each by a documented difference.

A rule names a difference of :data:`uzo_engine.expressions.reference.DIFFERENCES` (so it
appears in ``docs/expressions.md``), the classes of disagreement it covers (``mismatch``,
``uzo_error (validation)``, ``uzo_error (runtime)``, ``duckdb_error``, ``type_mismatch``)
and a regular expression the disagreeing sub-expression (the culprit) must match, and
for UZO's refusals optionally one its error message must match. A group
is explained only when every one of its expressions is; the differential test fails on
every other disagreement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from uzo_engine.expressions.reference import DIFFERENCES

if TYPE_CHECKING:
    from tests.differential.harness import Result

MISMATCH = "mismatch"
REFUSED = "uzo_error (validation)"
FAILED = "uzo_error (runtime)"
LENIENT = "duckdb_error"
TYPE = "type_mismatch"
_NULL = r"\bNULL\b"
_TEMPORAL = r"DATE|TIMESTAMP(?: WITH TIME ZONE)?"
_NUMBER_OR_BOOL = r"BOOLEAN|U?(?:TINY|SMALL|BIG|HUGE)?INT(?:EGER)?|DECIMAL\(\d+,\d+\)|DOUBLE|FLOAT"


@dataclass(frozen=True)
class Rule:
    difference: str
    kinds: tuple[str, ...]
    sql: str  # searched in the culprit's SQL
    construct: str = ""  # searched in the culprit's construct name (empty: any)
    error: str = ""  # searched in UZO's error message (empty: any)

    def covers(self, result: Result) -> bool:
        culprit = result.culprit
        if culprit is None or culprit.check.kind not in self.kinds:
            return False
        if self.construct and not re.search(self.construct, culprit.construct):
            return False
        if self.error and not re.search(self.error, culprit.check.uzo.error or ""):
            return False
        return re.search(self.sql, culprit.sql, re.IGNORECASE) is not None


RULES: tuple[Rule, ...] = (
    # a bare NULL takes the type its context asks for
    Rule("untyped-null", (LENIENT, TYPE), rf"{_NULL}|\[\]"),
    Rule("hugeint-decimal", (TYPE,), r"HUGEINT"),
    # INTERVAL values of their own (months, CASE/COALESCE of intervals)
    Rule("interval-values", (REFUSED,), r"INTERVAL|tstz - tstz|ts - ts"),
    # casts between dates and numbers or booleans (here: of values that are all NULL)
    Rule(
        "temporal-number-casts",
        (REFUSED,),
        r"CAST\(|::",
        r"cast|::|cmp|arith|temporal \+",
    ),
    Rule("temporal-number-casts", (LENIENT,), r"TRY_CAST\(", r"try_cast"),
    # ... wherever the refused cast sits (a CASE branch, a COALESCE argument)
    Rule(
        "temporal-number-casts",
        (REFUSED,),
        r"CAST\(|::",
        error=rf"cannot cast (?:{_TEMPORAL}) to (?:{_NUMBER_OR_BOOL})"
        rf"|cannot cast (?:{_NUMBER_OR_BOOL}) to (?:{_TEMPORAL})",
    ),
    Rule("interval-values", (REFUSED,), r"", error=r"\bINTERVAL\b"),
    # a string literal is converted while compiling, even in a branch never taken
    Rule("constant-folding", (REFUSED,), r"'", error=r"could not convert string"),
    Rule("decimal-width", (LENIENT, MISMATCH, FAILED), r"dec|\d\.\d", r"arith \*|case|greatest"),
    Rule("unicode-case", (MISMATCH,), r"upper|lower"),
    Rule("no-infinity", (MISMATCH,), r"snum AS (DATE|TIMESTAMP)"),
    Rule(
        "typed-literal-cast", (MISMATCH, TYPE, REFUSED), r"(DATE|TIMESTAMP|TIMESTAMPTZ) '[^']*'::"
    ),
    Rule("typed-literal-cast", (REFUSED,), r"NULL\["),
    Rule("explicit-varchar", (REFUSED, LENIENT), r"replace\(|DISTINCT FROM|concat|string_split"),
    Rule("explicit-varchar", (MISMATCH,), r"CAST\(\[.*\] AS VARCHAR\)", r"instr|strpos|position"),
    Rule("constant-folding", (REFUSED, FAILED, LENIENT), r"BETWEEN|'1e3'|TRY_CAST\(CAST"),
    Rule("lenient-syntax", (LENIENT,), r"INTERVAL -\d|substr\(|[lr]pad\("),
    Rule("extreme-values", (MISMATCH, TYPE), r"julian|millennium|century|decade|timezone\("),
    # values at year 1 or 9999 pushed past the calendar's ends, decimals of 38 digits
    Rule("extreme-values", (MISMATCH,), r"INTERVAL|d - \d|- \d+\)|dec10|\bnan\b|%"),
    Rule("both-sides-evaluated", (FAILED,), r"\b(AND|OR)\b"),
    Rule("boolean-conditions", (REFUSED,), r"", error=r"must be BOOLEAN, not"),
    Rule("list-text", (MISMATCH,), r"AS VARCHAR|concat_ws|::VARCHAR", r"list|concat_ws"),
)

_KNOWN = {d.key for d in DIFFERENCES}
assert {r.difference for r in RULES} <= _KNOWN, {r.difference for r in RULES} - _KNOWN
_TITLES = {d.key: d.title for d in DIFFERENCES}


def explanation(result: Result) -> str | None:
    """The documented difference that explains this disagreement, if one does."""
    for rule in RULES:
        if rule.covers(result):
            return f"{_TITLES[rule.difference]} ({rule.difference})"
    return None
