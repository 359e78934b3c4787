"""The figures of a differential run and its disagreements grouped by root cause.

A group is (culprit construct, operand type families, class); see
:func:`tests.differential.harness.find_culprit`. Groups are listed by class (wrong answers
first), the biggest first, each with its shortest example: the culprit expression, the row
where the values differ (with the input values the expression reads) and both answers.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from tests.differential.data import COLUMNS, build_table
from tests.differential.documented import explanation
from tests.differential.values import show, to_python

if TYPE_CHECKING:
    from tests.differential.harness import Culprit, Result, Run

KINDS = (
    "mismatch",
    "uzo_error (runtime)",
    "duckdb_error",
    "type_mismatch",
    "uzo_error (validation)",
)
KIND_TITLES = {
    "mismatch": "wrong answers (different values)",
    "uzo_error (runtime)": "UZO fails at run time where DuckDB answers",
    "duckdb_error": "UZO answers where DuckDB refuses",
    "type_mismatch": "same values, different result type family",
    "uzo_error (validation)": "UZO refuses at validation where DuckDB answers",
}
ALL_KINDS = ("match", "both_error", *KINDS)


@dataclass
class Group:
    construct: str
    operands: str  # "" when the group spans operand types (refusals: see ``variants``)
    kind: str
    results: list[Result]

    @property
    def example(self) -> Result:
        return min(self.results, key=lambda r: (len(_culprit(r).sql), r.sql))

    @property
    def variants(self) -> list[tuple[str, int]]:
        """The operand families of the results and how many there are of each."""
        found = Counter(
            ", ".join(_culprit(r).operands) or ("hand-written" if r.source == "case" else "-")
            for r in self.results
        )
        return sorted(found.items(), key=lambda item: (-item[1], item[0]))

    @property
    def explanation(self) -> str | None:
        """The documented differences explaining every result of the group, else None."""
        found = [explanation(r) for r in self.results]
        if not found or any(f is None for f in found):
            return None
        return "; ".join(sorted({f for f in found if f is not None}))


def _culprit(result: Result) -> Culprit:
    assert result.culprit is not None
    return result.culprit


def counts(run: Run) -> dict[str, int]:
    kinds = Counter(r.verdict.kind for r in run.results)
    out = {"tried": len(run.results)}
    out["generated"] = sum(r.source == "generated" for r in run.results)
    out["cases"] = sum(r.source == "case" for r in run.results)
    out.update({k: kinds.get(k, 0) for k in ALL_KINDS})
    out["agree"] = out["match"] + out["both_error"]
    out["disagree"] = out["tried"] - out["agree"]
    out["filter_checks"] = sum(len(r.checks) > 1 for r in run.results)
    out["type_family_differs"] = sum(any(c.type_mismatch for c in r.checks) for r in run.results)
    return out


def groups(run: Run) -> list[Group]:
    """Wrong answers, run-time failures and type differences by (construct, operand families,
    class); refusals at validation by construct alone, their operand families listed."""
    by_key: dict[tuple[str, str, str], list[Result]] = defaultdict(list)
    for r in run.results:
        if r.culprit is not None:
            construct, operands, kind = r.culprit.key
            if kind == "uzo_error (validation)":
                operands = ""
            by_key[construct, operands, kind].append(r)
    out = [Group(c, o, k, rs) for (c, o, k), rs in by_key.items()]
    out.sort(key=lambda g: (KINDS.index(g.kind), -len(g.results), g.construct, g.operands))
    return out


def undocumented(run: Run) -> list[Group]:
    return [g for g in groups(run) if g.explanation is None]


# ------------------------------------------------------------------ text


def clean_error(text: str | None) -> str:
    text = text or ""
    text = re.sub(r"^invalid_config: config\.(columns|condition): ", "", text)
    text = re.sub(r"node '[^']*'( \((derive|filter)\))?: ", "", text)
    text = re.sub(r" in expression (['\"]).*$", "", text)
    text = re.sub(r"^(\w+Exception|\w+Error): (\w[\w ]* Error: )", r"\2", text)
    return text if len(text) <= 150 else text[:147] + "..."


def _printable(text: str) -> str:
    return text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


@cache
def _input_rows() -> dict[str, list[Any]]:
    table = build_table()
    return {c.name: to_python(table.column(c.name)) for c in COLUMNS}


def _inputs(sql: str, row: int) -> str:
    rows = _input_rows()
    code = re.sub(r"'(?:[^']|'')*'", "''", sql)  # column names in string literals do not count
    names = [c.name for c in COLUMNS if re.search(rf"(?<!\w){c.name}(?!\w)", code)]
    return ", ".join(f"{n}={show(rows[n][row], 40)}" for n in names if row < len(rows[n]))


def _answers(result: Result) -> str:
    check = _culprit(result).check
    if check.mode == "filter" and check.uzo.ok and check.duck.ok:
        uzo_only = sorted(set(check.uzo.values or ()) - set(check.duck.values or ()))
        duck_only = sorted(set(check.duck.values or ()) - set(check.uzo.values or ()))
        where = [f"only UZO keeps rid {show(uzo_only, 40)}"] if uzo_only else []
        where += [f"only DuckDB keeps rid {show(duck_only, 40)}"] if duck_only else []
        row = (uzo_only or duck_only or [None])[0]
        inputs = _inputs(_culprit(result).sql, row) if row is not None else ""
        return "filter: " + "; ".join(where) + (f" ({inputs})" if inputs else "")
    uzo, duck = check.example()
    if check.uzo.error:
        uzo = "error: " + clean_error(check.uzo.error)
    if check.duck.error:
        duck = "error: " + clean_error(check.duck.error)
    prefix = ""
    if check.row is not None:
        inputs = _inputs(_culprit(result).sql, check.row)
        prefix = f"rid {check.row}" + (f" ({inputs})" if inputs else "") + ": "
    return f"{prefix}UZO {uzo} | DuckDB {duck}"


def figures(run: Run) -> str:
    c = counts(run)
    stats = run.stats
    explained = sum(len(g.results) for g in groups(run) if g.explanation is not None)
    lines = [
        f"expressions tried        {c['tried']:6}  ({c['generated']} generated, "
        f"{c['cases']} hand-written; {c['filter_checks']} also run as filters)",
        f"  matched                {c['match']:6}  (same values and result type family)",
        f"  both errors            {c['both_error']:6}  (agreement)",
        f"  mismatched             {c['mismatch']:6}  (different values or kept rows)",
        f"  uzo errors: validation {c['uzo_error (validation)']:6}",
        f"  uzo errors: run time   {c['uzo_error (runtime)']:6}",
        f"  duckdb errors          {c['duckdb_error']:6}  (UZO answered what DuckDB refuses)",
        f"  type mismatches        {c['type_mismatch']:6}  (same values, different type family)",
        f"agreement                {c['agree'] / max(c['tried'], 1):6.1%}",
        f"documented differences   {explained:6}  (disagreements a documented difference explains)",
        f"unexplained              {c['disagree'] - explained:6}",
        f"type family differs      {c['type_family_differs']:6}  (any class, both answered)",
        f"float tolerance          relative {run.tolerance:g}",
        f"seconds                  {run.seconds:6.1f}  ({stats.get('duckdb_queries', 0)} DuckDB "
        f"queries, {stats.get('uzo_workflows', 0)} UZO workflows, "
        f"{stats.get('sub_expressions', 0)} sub-expressions to find culprits)",
    ]
    return "\n".join(lines)


def listing(group_list: list[Group]) -> str:
    lines: list[str] = []
    kind = None
    for g in group_list:
        if g.kind != kind:
            kind = g.kind
            total = sum(len(x.results) for x in group_list if x.kind == kind)
            n_groups = sum(1 for x in group_list if x.kind == kind)
            lines.append("")
            lines.append(f"== {kind}: {KIND_TITLES[kind]} ({total} expressions, {n_groups} groups)")
        example = g.example
        variants = [(v, n) for v, n in g.variants if v != "-"]
        if g.operands:
            operands = f" ({g.operands})"
        elif variants:
            operands = "  [" + "; ".join(f"{v} {n}" for v, n in g.variants) + "]"
        else:
            operands = ""
        note = f"  [documented: {g.explanation}]" if g.explanation else ""
        lines.append(f"{len(g.results):5}  {g.construct}{operands}{note}")
        lines.append(f"         {_printable(_culprit(example).sql)}")
        lines.append(f"         {_answers(example)}")
    return "\n".join(lines).lstrip("\n")


def error_pattern(text: str | None) -> str:
    """An error message with its literals, parenthesised parts and numbers blanked out."""
    pattern = clean_error(text)
    pattern = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", pattern)
    pattern = re.sub(r"\([^()]*\)", "(…)", pattern)
    pattern = re.sub(r"\d+", "N", pattern)
    return pattern if len(pattern) <= 110 else pattern[:107] + "..."


def error_messages(run: Run, limit: int = 25) -> str:
    """UZO's errors across constructs: one root cause often spans many groups."""
    culprits = [_culprit(r) for r in run.results if r.culprit is not None]
    by_pattern: dict[str, list[Culprit]] = defaultdict(list)
    for c in culprits:
        if c.check.cls == "uzo_error":
            by_pattern[f"{c.check.uzo.stage:10} {error_pattern(c.check.uzo.error)}"].append(c)
    ranked = sorted(by_pattern.items(), key=lambda item: (-len(item[1]), item[0]))
    lines = [
        f"{len(cs):5} {len({c.construct for c in cs}):4}  {pattern}"
        for pattern, cs in ranked[:limit]
    ]
    more = len(ranked) - limit
    if more > 0:
        lines.append(f"  ... {more} more messages")
    return "count constructs  stage      message\n" + "\n".join(lines)


def render(run: Run, title: str = "UZO expressions vs DuckDB") -> str:
    group_list = groups(run)
    header = f"{title}\n{'=' * len(title)}\n{figures(run)}\n"
    if not group_list:
        return header + "\nno disagreement\n"
    return (
        f"{header}\ndisagreements grouped by culprit construct (operand families), "
        f"{len(group_list)} groups; counted by the culprit's class (it may differ from the "
        f"whole expression's):\n{listing(group_list)}\n\n"
        f"UZO errors by message (across constructs):\n{error_messages(run)}\n"
    )


# ------------------------------------------------------------------ JSON


def _outcome(outcome: Any, row: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": outcome.type, "family": outcome.family}
    if outcome.error is not None:
        out.update(error=outcome.error, stage=outcome.stage)
    elif row is not None and outcome.values is not None and row < len(outcome.values):
        out["value"] = repr(outcome.values[row])
    elif outcome.family == "rows":
        out["kept"] = outcome.values
    return out


def to_json(run: Run) -> dict[str, Any]:
    results = []
    for r in run.results:
        item: dict[str, Any] = {
            "sql": r.sql,
            "construct": r.construct,
            "source": r.source,
            "kind": r.verdict.kind,
        }
        if r.note:
            item["note"] = r.note
        if r.disagrees:
            item["checks"] = [
                {
                    "mode": c.mode,
                    "class": c.cls,
                    "type_mismatch": c.type_mismatch,
                    "row": c.row,
                    "uzo": _outcome(c.uzo, c.row),
                    "duckdb": _outcome(c.duck, c.row),
                }
                for c in r.checks
            ]
        if r.culprit is not None:
            item["culprit"] = {
                "sql": r.culprit.sql,
                "construct": r.culprit.construct,
                "operands": list(r.culprit.operands),
                "kind": r.culprit.check.kind,
            }
        results.append(item)
    return {
        "figures": counts(run),
        "seconds": run.seconds,
        "float_tolerance": run.tolerance,
        "stats": run.stats,
        "groups": [
            {
                "construct": g.construct,
                "operands": g.operands or dict(g.variants),
                "kind": g.kind,
                "count": len(g.results),
                "example": _culprit(g.example).sql,
                "answers": _answers(g.example),
                "documented": g.explanation,
            }
            for g in groups(run)
        ],
        "results": results,
    }
