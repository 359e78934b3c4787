"""Run the same expressions through UZO and DuckDB, classify each one, find the culprit.

UZO is driven through its public engine API only
(:func:`uzo_engine.validation.validation_errors` and
:func:`uzo_engine.runtime.local.run_workflow`, both confined to the test file's
directory), so this keeps working while the expression compiler is rewritten. The
workflow is ``parquet_source`` (the test file) fanned out to many ``derive`` nodes (one
column per expression) or, for boolean expressions, ``filter`` nodes:

1. *validation*: every expression in its own node (one ``validation_errors`` call per chunk of
   nodes attributes each error to its expression): a refusal here is a ``validation`` error;
2. *run*: the valid expressions, many columns per ``derive`` node; a node that fails (or a
   workflow that raises, e.g. a Polars panic) is re-run in halves down to one expression per
   node, so each run-time error is the expression's own (``runtime``).

Classes (:data:`CLASSES`): ``match`` (same values), ``mismatch``, ``uzo_error`` (UZO refused or
failed, DuckDB answered), ``duckdb_error`` (DuckDB refused, UZO answered), ``both_error``
(agreement). Separately, ``type_mismatch``: both answered but the result type families differ
(``int dec float str bool date ts tstz list interval null``).

A disagreeing generated expression is narrowed down to its *culprit*: its sub-expressions are
evaluated too, and the culprit is the deepest one that disagrees the same way while all its own
sub-expressions agree. Results are grouped by the culprit's construct, its operand families and
the class (see :mod:`.report`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.differential.data import ROW_ID
from tests.differential.oracle import DuckDBOracle, Outcome
from tests.differential.values import (
    FLOAT_TOLERANCE,
    arrow_family,
    first_difference,
    show,
    to_python,
)
from uzo_connectors.base import ConnectorContext
from uzo_connectors.ssrf import EndpointPolicy
from uzo_engine.plan import StepContext
from uzo_engine.runtime.local import run_workflow
from uzo_engine.validation import validation_errors

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    import pyarrow as pa

    from tests.differential.grammar import Expr

CLASSES = ("match", "mismatch", "uzo_error", "duckdb_error", "both_error")
AGREEMENT = ("match", "both_error")


# ------------------------------------------------------------------ UZO


def _node(node_id: str, node_type: str, **config: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "default",
        "position": {"x": 0, "y": 0},
        "data": {"nodeType": node_type, "config": config},
    }


def _message(text: str, sql: str | None = None, column: str | None = None) -> str:
    """An error as one line, without the parts that repeat the expression."""
    text = str(text).strip()
    if sql is not None:
        text = text.replace(f"{column!r} = {sql}: ", "").replace(f"{sql!r}: ", "")
        text = text.replace(f" in expression {sql!r}", "").replace(f"{sql!r}", "<expr>")
    text = re.sub(r"node '[^']*'( \((derive|filter)\))?: ", "", text)
    text = " ".join(text.split())
    return (text if len(text) <= 400 else text[:397] + "...") or "error"


class UzoRunner:
    """Evaluates expressions with UZO workflows (``parquet_source`` -> ``derive``/``filter``)."""

    def __init__(
        self, path: Path, *, columns_per_node: int = 20, nodes_per_workflow: int = 150
    ) -> None:
        self.path = str(path)
        # the source reads the test file: its directory is the only local root
        self.connectors = ConnectorContext(EndpointPolicy(), local_roots=(str(path.parent),))
        self.columns_per_node = columns_per_node
        self.nodes_per_workflow = nodes_per_workflow
        self.workflows = 0

    def _workflow(self, nodes: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """``nodes``: node id -> {"type": ..., **config}; each reads the Parquet source."""
        items = [_node("src", "parquet_source", path=self.path)]
        edges = []
        for node_id, spec in nodes.items():
            config = {k: v for k, v in spec.items() if k != "type"}
            items.append(_node(node_id, spec["type"], **config))
            edges.append({"id": f"src->{node_id}", "source": "src", "target": node_id})
        return {"nodes": items, "edges": edges, "viewport": {"x": 0, "y": 0, "zoom": 1}}

    def _validate(self, nodes: dict[str, dict[str, Any]]) -> dict[str, str]:
        """node id -> the first validation error of that node."""
        errors: dict[str, str] = {}
        ids = list(nodes)
        for start in range(0, len(ids), self.nodes_per_workflow):
            chunk = {i: nodes[i] for i in ids[start : start + self.nodes_per_workflow]}
            self.workflows += 1
            try:
                issues = validation_errors(self._workflow(chunk), connectors=self.connectors)
            except Exception as e:  # the validator itself failed: blame each node alone
                if len(chunk) == 1:
                    errors.update(dict.fromkeys(chunk, f"validator raised {e!r}"))
                    continue
                for i in chunk:
                    errors.update(self._validate({i: chunk[i]}))
                continue
            unattributed = [str(issue) for issue in issues if issue.node_id not in chunk]
            if unattributed and len(chunk) > 1:
                for i in chunk:
                    errors.update(self._validate({i: chunk[i]}))
                continue
            for issue in issues:
                node_id = issue.node_id if issue.node_id in chunk else next(iter(chunk))
                errors.setdefault(node_id, f"{issue.code}: {issue.message}")
        return errors

    def _run(self, nodes: dict[str, dict[str, Any]]) -> dict[str, pa.Table | str]:
        """node id -> its output table, or its run-time error."""
        out: dict[str, pa.Table | str] = {}
        ids = list(nodes)
        for start in range(0, len(ids), self.nodes_per_workflow):
            chunk = {i: nodes[i] for i in ids[start : start + self.nodes_per_workflow]}
            out.update(self._run_chunk(chunk))
        return out

    def _run_chunk(self, chunk: dict[str, dict[str, Any]]) -> dict[str, pa.Table | str]:
        self.workflows += 1
        try:
            ctx = StepContext(f"differential-{self.workflows}", connectors=self.connectors)
            result = run_workflow(self._workflow(chunk), ctx=ctx)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # a Polars panic is a BaseException
            if len(chunk) > 1:
                out: dict[str, pa.Table | str] = {}
                for i in chunk:
                    out.update(self._run_chunk({i: chunk[i]}))
                return out
            return dict.fromkeys(chunk, f"raised {type(e).__name__}: {e}")
        out = {}
        for node_id in chunk:
            node_result = result.results.get(node_id)
            if node_result is not None and node_result.status == "succeeded":
                out[node_id] = result.table(node_id)
            else:
                status = node_result.status if node_result is not None else "not run"
                error = node_result.error if node_result is not None else None
                out[node_id] = str(error or result.error or status)
        return out

    def evaluate(self, sqls: Iterable[str]) -> dict[str, Outcome]:
        unique = list(dict.fromkeys(sqls))
        names = {sql: f"x{i}" for i, sql in enumerate(unique)}
        out: dict[str, Outcome] = {}
        singles = {
            f"v{i}": {"type": "derive", "columns": {names[s]: s}} for i, s in enumerate(unique)
        }
        invalid = self._validate(singles)
        valid = []
        for i, sql in enumerate(unique):
            if f"v{i}" in invalid:
                error = _message(invalid[f"v{i}"], sql, names[sql])
                out[sql] = Outcome(error=error, stage="validation")
            else:
                valid.append(sql)
        size = self.columns_per_node
        pending = [valid[n : n + size] for n in range(0, len(valid), size)]
        while pending:  # a failing node is re-run in halves, down to one expression
            nodes = {
                f"b{k}": {"type": "derive", "columns": {names[s]: s for s in batch}}
                for k, batch in enumerate(pending)
            }
            results = self._run(nodes)
            halves: list[list[str]] = []
            for k, batch in enumerate(pending):
                result = results[f"b{k}"]
                if not isinstance(result, str):
                    out.update({sql: self._outcome(result, names[sql]) for sql in batch})
                elif len(batch) == 1:
                    error = _message(result, batch[0], names[batch[0]])
                    out[batch[0]] = Outcome(error=error, stage="runtime")
                else:
                    halves += [batch[: len(batch) // 2], batch[len(batch) // 2 :]]
            pending = halves
        return out

    @staticmethod
    def _outcome(table: pa.Table, column: str) -> Outcome:
        table = table.sort_by(ROW_ID)
        array = table.column(column)
        return Outcome(to_python(array), str(array.type), arrow_family(array.type))

    def filter(self, sqls: Iterable[str]) -> dict[str, Outcome]:
        unique = list(dict.fromkeys(sqls))
        nodes = {f"f{i}": {"type": "filter", "condition": s} for i, s in enumerate(unique)}
        invalid = self._validate(nodes)
        out: dict[str, Outcome] = {}
        runnable = {}
        for i, sql in enumerate(unique):
            if f"f{i}" in invalid:
                out[sql] = Outcome(
                    error=_message(invalid[f"f{i}"], sql, "condition"), stage="validation"
                )
            else:
                runnable[f"f{i}"] = nodes[f"f{i}"]
        results = self._run(runnable)
        for i, sql in enumerate(unique):
            if sql in out:
                continue
            result = results[f"f{i}"]
            if isinstance(result, str):
                out[sql] = Outcome(error=_message(result, sql, "condition"), stage="runtime")
            else:
                kept = sorted(result.column(ROW_ID).to_pylist())
                out[sql] = Outcome(kept, "rows", "rows")
        return out


# ------------------------------------------------------------------ classification


@dataclass
class Check:
    """One expression compared in one mode (``derive`` values or ``filter`` kept rows)."""

    mode: str
    cls: str
    uzo: Outcome
    duck: Outcome
    row: int | None = None  # first differing row (derive) for a mismatch
    type_mismatch: bool = False

    @property
    def disagrees(self) -> bool:
        return self.cls not in AGREEMENT or self.type_mismatch

    @property
    def kind(self) -> str:
        """The class as reported: uzo errors split by stage; type-only differences."""
        if self.cls == "uzo_error":
            return f"uzo_error ({self.uzo.stage})"
        if self.cls in AGREEMENT and self.type_mismatch:
            return "type_mismatch"
        return self.cls

    def example(self) -> tuple[str, str]:
        """(UZO's side, DuckDB's side) of a derive check as short text: the value at the first
        differing row and the type, or the error."""
        return self._side(self.uzo), self._side(self.duck)

    def _side(self, outcome: Outcome) -> str:
        if not outcome.ok:
            return f"error: {show(outcome.error, 110)}"
        if self.row is not None and outcome.values is not None and self.row < len(outcome.values):
            return f"{show(outcome.values[self.row])} [{outcome.type}]"
        return f"[{outcome.type}]"


def same_family(uzo: Outcome, duck: Outcome) -> bool:
    """Whether the result types are of one family. Arrow has no 128-bit integer: both systems
    hand a HUGEINT over as decimal128(38, 0), so that counts as an integer."""
    if uzo.family == duck.family:
        return True
    return duck.type in ("HUGEINT", "UHUGEINT") and uzo.type == "decimal128(38, 0)"


def compare(mode: str, uzo: Outcome, duck: Outcome) -> Check:
    if not uzo.ok and not duck.ok:
        return Check(mode, "both_error", uzo, duck)
    if not uzo.ok:
        return Check(mode, "uzo_error", uzo, duck)
    if not duck.ok:
        return Check(mode, "duckdb_error", uzo, duck)
    if mode == "filter":  # kept row ids, in order
        return Check(mode, "match" if uzo.values == duck.values else "mismatch", uzo, duck)
    row = first_difference(uzo.values or [], duck.values or [])
    cls = "match" if row is None else "mismatch"
    return Check(mode, cls, uzo, duck, row, type_mismatch=not same_family(uzo, duck))


@dataclass
class Result:
    """One expression (generated or hand-written) and its checks."""

    sql: str
    construct: str
    source: str  # "generated" | "case"
    checks: list[Check] = field(default_factory=list)
    note: str = ""
    expr: Expr | None = field(default=None, repr=False)
    culprit: Culprit | None = None

    @property
    def verdict(self) -> Check:
        """The first disagreeing check, else the derive check."""
        for check in self.checks:
            if check.cls not in AGREEMENT:
                return check
        for check in self.checks:
            if check.type_mismatch:
                return check
        return self.checks[0]

    @property
    def disagrees(self) -> bool:
        return self.verdict.disagrees


@dataclass
class Culprit:
    sql: str
    construct: str
    operands: tuple[str, ...]  # DuckDB type families of the evaluated sub-expressions
    check: Check

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.construct, ", ".join(self.operands), self.check.kind)


def _same_way(parent: Check, child: Check) -> bool:
    """Whether a disagreeing child explains its parent's disagreement."""
    if parent.cls == "uzo_error":
        return child.cls == "uzo_error"
    if parent.cls == "duckdb_error":
        return child.cls == "duckdb_error"
    return child.cls == "mismatch" or (child.cls in AGREEMENT and child.type_mismatch)


def find_culprit(result: Result, derived: dict[str, Check]) -> Culprit:
    """The deepest sub-expression that disagrees like its parent while its own parts agree."""
    check = result.verdict
    expr = result.expr
    if expr is None or check.mode != "derive":
        return Culprit(result.sql, result.construct, _operands(expr, derived), check)
    while True:
        culprit_child = None
        for child in expr.children:
            child_check = derived.get(child.sql)
            if child_check is not None and child_check.disagrees and _same_way(check, child_check):
                culprit_child = child
                check = child_check
                break
        if culprit_child is None:
            return Culprit(expr.sql, expr.construct, _operands(expr, derived), check)
        expr = culprit_child


def _operands(expr: Expr | None, derived: dict[str, Check]) -> tuple[str, ...]:
    if expr is None:
        return ()
    families = []
    for child in expr.children:
        check = derived.get(child.sql)
        if check is None or not check.duck.ok:
            families.append("?")
        else:
            families.append(check.duck.family or "?")
    return tuple(families)


# ------------------------------------------------------------------ the whole run


@dataclass
class Run:
    results: list[Result]
    seconds: float
    tolerance: float
    stats: dict[str, int]


def run_differential(
    path: Path,
    generated: Sequence[Expr] = (),
    cases: Sequence[tuple[str, str, str]] = (),
) -> Run:
    """Evaluate generated expressions and hand-written ``(construct, sql, note)`` cases."""
    started = time.perf_counter()
    duck = DuckDBOracle(path)
    uzo = UzoRunner(path)
    try:
        results = [Result(e.sql, e.construct, "generated", expr=e) for e in generated]
        results += [Result(sql, name, "case", note=note) for name, sql, note in cases]
        sqls = [r.sql for r in results]
        duck_values = duck.evaluate(sqls)
        uzo_values = uzo.evaluate(sqls)
        derived = {s: compare("derive", uzo_values[s], duck_values[s]) for s in dict.fromkeys(sqls)}
        boolean = [
            r.sql
            for r in results
            if (duck_values[r.sql].family == "bool")
            or (not duck_values[r.sql].ok and r.expr is not None and r.expr.family == "bool")
        ]
        duck_kept = duck.filter(boolean)
        uzo_kept = uzo.filter(boolean)
        for r in results:
            r.checks.append(derived[r.sql])
            if r.sql in duck_kept:
                r.checks.append(compare("filter", uzo_kept[r.sql], duck_kept[r.sql]))
        # narrow the disagreements down: evaluate the sub-expressions of disagreeing ones
        parts = [
            sub.sql
            for r in results
            if r.disagrees and r.expr is not None
            for sub in r.expr.walk()[1:]
            if sub.standalone and sub.sql not in derived
        ]
        parts = list(dict.fromkeys(parts))
        if parts:
            duck_parts = duck.evaluate(parts)
            uzo_parts = uzo.evaluate(parts)
            for s in parts:
                derived[s] = compare("derive", uzo_parts[s], duck_parts[s])
        for r in results:
            if r.disagrees:
                r.culprit = find_culprit(r, derived)
        stats = {
            "duckdb_queries": duck.queries,
            "uzo_workflows": uzo.workflows,
            "sub_expressions": len(parts),
        }
    finally:
        duck.close()
    return Run(results, time.perf_counter() - started, FLOAT_TOLERANCE, stats)
