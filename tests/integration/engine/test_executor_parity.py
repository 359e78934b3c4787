"""Executor parity (issue 13, item 1): the in-process executor and the Ray-actor runtime
must report the same run for the same plan.

Every example workflow (the TPC-H ones at scale factor 0.01) and a set of synthetic
workflows covering run-time failures, failures inside fused steps, upstream_failed
and skipped branches, timeouts, retries and cancellation run on both paths; per node
the status, rows in/out, error text and attempts must be equal, per step output the
Arrow table, and for the run its status and error text.

Layout:

- *Adapter* (``run_in_process``, ``run_on_ray``): the only code that knows the two
  result types. Each returns a :class:`RunRecord`. When the executors share one result
  type, only this part changes.
- *Comparison* (:func:`differences`): field-by-field, one line per difference. Error
  texts are compared verbatim except for what legitimately differs between processes
  (pids, object ids, measured durations): the same failure worded twice is a gap.
- *Cases*: a document builder, compile options, an optional runner patch (a slow or
  flaky runner wrapped around the compiled one; a test node type registered in this
  process would not exist in the node actors), and the statuses the case must produce
  on both paths (so no case quietly turns into a run where nothing fails).

Cases the two paths disagree on today are ``xfail(strict=True)``: ``GAPS`` says what
differs. Once the unified executor closes a gap, its case XPASSes and fails the suite:
remove its entry from ``GAPS``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks import tpch_data as tpch
from tests.integration.engine.runners import Delayed, FailFirst
from tests.unit.uzo_engine.helpers import chain, edge, node, operator_ctx, values
from uzo_engine.compiler import CompileOptions, compile_workflow
from uzo_engine.plan import ExecutionPlan, StepContext
from uzo_engine.runtime.actors import Absent
from uzo_engine.runtime.local import LocalExecutor

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from uzo_engine.runtime.engine import Runtime

pytestmark = pytest.mark.integration

# ================================================================ adapter


@dataclass(frozen=True)
class NodeRecord:
    status: str
    rows_in: int
    rows_out: int
    error: str | None
    attempts: int


@dataclass
class RunRecord:
    """What one executor reported for one run, in a form both executors can be held to."""

    status: str
    error: str | None
    nodes: dict[str, NodeRecord]
    outputs: dict[tuple[str, str], pa.Table]  # (step id, port) -> table, produced ones only


_VOLATILE = (
    (re.compile(r"\bpid[ =:]*\d+"), "pid <n>"),
    (re.compile(r"\b[0-9a-f]{16,}\b"), "<id>"),  # Ray object/actor/task ids
    (re.compile(r"\b\d+(?:\.\d+)? ?ms\b"), "<duration>"),  # measured, never configured
)


def normalise(text: str | None) -> str | None:
    """Blank out what differs between processes; the wording itself is kept."""
    if text is None:
        return None
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def run_in_process(plan: ExecutionPlan, ctx: StepContext) -> RunRecord:
    result = LocalExecutor().run(plan, ctx)
    nodes = {
        n: NodeRecord(r.status, r.rows_in, r.rows_out, normalise(r.error), r.attempts)
        for n, r in result.results.items()
    }
    outputs = {k: v for k, v in result.outputs.items() if not isinstance(v, Absent)}
    return RunRecord(result.status, normalise(result.error), nodes, outputs)


def run_on_ray(plan: ExecutionPlan, ctx: StepContext, *, runtime: Runtime) -> RunRecord:
    """Run on the node actors, keeping every step's output (``ctx.cancelled`` is polled by
    the driver on both backends)."""
    result = runtime.run_sync(plan, ctx=ctx, keep_outputs=list(plan.steps))
    nodes = {
        n: NodeRecord(r.status, r.rows_in, r.rows_out, normalise(r.error), r.attempts)
        for n, r in result.results.items()
    }
    outputs: dict[tuple[str, str], pa.Table] = {}
    for key, ref in result.outputs.items():
        value = result.fetch(ref)
        if not isinstance(value, Absent):
            outputs[key] = value
    return RunRecord(result.status, normalise(result.error), nodes, outputs)


# ================================================================ comparison


def _canon(value: Any) -> str:
    """A sort key part that orders rows the same way on both sides."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.10g}"
    return repr(value)


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        # float sums may be added up in another order (threads): not a parity question
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b) and type(a) is type(b)


def _same_sorted(a: pa.Table, b: pa.Table) -> bool:
    try:
        keys = [(c, "ascending") for c in a.column_names]
        return bool(a.sort_by(keys).equals(b.sort_by(keys)))
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return False  # a column Arrow cannot sort by (list, struct): compare row by row


def table_difference(a: pa.Table, b: pa.Table, *, ordered: bool) -> str | None:
    """Why two tables differ (None if they do not); rows compared as a multiset
    unless the producing node defines an order."""
    schema_a = [(f.name, str(f.type)) for f in a.schema]
    schema_b = [(f.name, str(f.type)) for f in b.schema]
    if schema_a != schema_b:
        return f"schema {schema_a} != {schema_b}"
    if a.equals(b) if ordered else _same_sorted(a, b):  # fast path: Arrow, not Python rows
        return None
    rows_a = [tuple(r.values()) for r in a.to_pylist()]
    rows_b = [tuple(r.values()) for r in b.to_pylist()]
    if len(rows_a) != len(rows_b):
        return f"{len(rows_a)} rows != {len(rows_b)} rows"
    if not ordered:
        rows_a.sort(key=lambda r: tuple(map(_canon, r)))
        rows_b.sort(key=lambda r: tuple(map(_canon, r)))
    for i, (ra, rb) in enumerate(zip(rows_a, rows_b, strict=True)):
        if not all(_same_value(x, y) for x, y in zip(ra, rb, strict=True)):
            return f"row {i}{'' if ordered else ' (sorted)'}: {ra!r} != {rb!r}"
    return None


def differences(
    local: RunRecord, ray: RunRecord, ordered_steps: frozenset[str] = frozenset()
) -> list[str]:
    """Every field the two records disagree on, one line each: ``what: local | ray``."""
    out: list[str] = []
    if local.status != ray.status:
        out.append(f"run status: {local.status!r} | {ray.status!r}")
    if local.error != ray.error:
        out.append(f"run error: {local.error!r} | {ray.error!r}")
    for n in sorted(local.nodes.keys() | ray.nodes.keys()):
        a, b = local.nodes.get(n), ray.nodes.get(n)
        if a is None or b is None:
            out.append(
                f"node {n}: {'missing' if a is None else 'present'} | "
                f"{'missing' if b is None else 'present'}"
            )
            continue
        for f in dataclasses.fields(NodeRecord):
            va, vb = getattr(a, f.name), getattr(b, f.name)
            if va != vb:
                out.append(f"node {n} {f.name}: {va!r} | {vb!r}")
    for key in sorted(local.outputs.keys() | ray.outputs.keys()):
        ta, tb = local.outputs.get(key), ray.outputs.get(key)
        if ta is None or tb is None:
            out.append(
                f"output {key}: {'absent' if ta is None else 'table'} | "
                f"{'absent' if tb is None else 'table'}"
            )
            continue
        why = table_difference(ta, tb, ordered=key[0] in ordered_steps)
        if why is not None:
            out.append(f"output {key}: {why}")
    return out


# ================================================================ cases


@dataclass(frozen=True)
class Env:
    """Where one executor's run of a case writes (sinks, markers) and reads TPC-H data."""

    workdir: Path
    tpch_dir: Path | None = None


Doc = dict[str, Any]
Patch = Callable[[ExecutionPlan, Env], ExecutionPlan]


@dataclass(frozen=True)
class Case:
    id: str
    doc: Callable[[Env], Doc]
    fuse: bool = False  # False: every node materialised (its own step, its own output)
    patch: Patch | None = None
    cancel_on: str | None = None  # cancel the run once this file appears in the workdir
    run_status: str = "succeeded"
    expect: Mapping[str, str] = field(default_factory=dict)  # node -> status on both paths
    files: tuple[str, ...] = ()  # files the run writes into the workdir, compared too
    tpch: bool = False


def compile_case(case: Case, doc: Doc, env: Env) -> ExecutionPlan:
    ids = frozenset(n["id"] for n in doc["nodes"])
    options = CompileOptions() if case.fuse else CompileOptions(materialize=ids)
    plan = compile_workflow(doc, name=case.id, options=options)
    return case.patch(plan, env) if case.patch is not None else plan


_KEEPS_ORDER = frozenset({"filter", "select", "derive", "cast", "fill_null", "limit"})


def ordered_nodes(doc: Doc) -> frozenset[str]:
    """Nodes whose output order is defined: a sort, and the row-wise nodes and limits
    that read (only) an ordered node."""
    types = {n["id"]: n["data"]["nodeType"] for n in doc["nodes"]}
    sources: dict[str, list[str]] = {n: [] for n in types}
    for e in doc["edges"]:
        sources[e["target"]].append(e["source"])
    ordered: set[str] = set()
    changed = True
    while changed:
        changed = False
        for n, t in types.items():
            ups = sources[n]
            if n not in ordered and (
                t == "sort" or (t in _KEEPS_ORDER and len(ups) == 1 and ups[0] in ordered)
            ):
                ordered.add(n)
                changed = True
    return frozenset(ordered)


def ordered_steps(plan: ExecutionPlan, doc: Doc) -> frozenset[str]:
    ordered = ordered_nodes(doc)
    return frozenset(s.step_id for s in plan.steps.values() if s.node_ids[-1] in ordered)


def with_runner(step_id: str, wrap: Callable[[Any, Env], Any]) -> Patch:
    """A patch that wraps the compiled runner of ``step_id``."""

    def patch(plan: ExecutionPlan, env: Env) -> ExecutionPlan:
        steps = dict(plan.steps)
        steps[step_id] = dataclasses.replace(
            steps[step_id], runner=wrap(steps[step_id].runner, env)
        )
        return dataclasses.replace(plan, steps=steps)

    return patch


# ---------------------------------------------------------------- example workflows


def example_doc(name: str) -> Callable[[Env], Doc]:
    def build(env: Env) -> Doc:
        doc: Doc = json.loads((tpch.EXAMPLES_DIR / f"{name}.json").read_text())
        for n in doc["nodes"]:  # sinks write into this run's directory
            config = n["data"]["config"]
            if n["data"]["nodeType"] == "parquet_sink":
                config["path"] = str(env.workdir / Path(config["path"]).name)
        return doc

    return build


def tpch_doc(query: str) -> Callable[[Env], Doc]:
    def build(env: Env) -> Doc:
        assert env.tpch_dir is not None
        return tpch.load_workflow(query, env.tpch_dir)

    return build


def sink_files(name: str) -> tuple[str, ...]:
    doc = json.loads((tpch.EXAMPLES_DIR / f"{name}.json").read_text())
    return tuple(
        Path(n["data"]["config"]["path"]).name
        for n in doc["nodes"]
        if n["data"]["nodeType"] == "parquet_sink"
    )


EXAMPLE_NAMES = sorted(
    p.stem for p in tpch.EXAMPLES_DIR.glob("*.json") if not p.name.startswith("tpch_")
)
EXAMPLE_EXPECT: dict[str, dict[str, str]] = {"quality_gate": {"alert": "skipped"}}

EXAMPLE_CASES = [
    Case(
        f"example-{name}-{'fused' if fuse else 'materialized'}",
        example_doc(name),
        fuse=fuse,
        expect=EXAMPLE_EXPECT.get(name, {}),
        files=sink_files(name),
    )
    for name in EXAMPLE_NAMES
    for fuse in (False, True)
] + [Case(f"example-tpch_{q}-materialized", tpch_doc(q), tpch=True) for q in tpch.QUERIES]

# ---------------------------------------------------------------- synthetic workflows

SRC = values("src", pa.table({"id": [1, 2, 3], "txt": ["1", "2", "x"]}))
BAD_CAST = {"columns": {"txt": "INTEGER"}}  # 'x' does not convert: fails at run time
NO_RETRY_WAIT = {"retry_backoff_seconds": 0}


def fixed(doc: Doc) -> Callable[[Env], Doc]:
    return lambda env: copy.deepcopy(doc)


def graph(nodes: list[Doc], edges: list[Doc]) -> Doc:
    return {"nodes": nodes, "edges": edges, "viewport": {"x": 0, "y": 0, "zoom": 1}}


PASS = {"condition": "id > 0"}

SYNTHETIC_CASES = [
    Case(
        "cast-fails-at-run-time",
        fixed(chain(SRC, node("c", "cast", **BAD_CAST), node("after", "filter", **PASS))),
        run_status="failed",
        expect={"src": "succeeded", "c": "failed", "after": "upstream_failed"},
    ),
    Case(
        "integer-division-by-zero",
        fixed(chain(SRC, node("d", "derive", columns={"r": "id // 0"}))),
        run_status="failed",
        expect={"d": "failed"},
    ),
    Case(
        "sql-error-at-run-time",
        fixed(
            chain(
                SRC,
                node("q", "sql", query="SELECT id, CAST(txt AS INTEGER) AS n FROM src"),
                node("after", "filter", **PASS),
            )
        ),
        run_status="failed",
        expect={"q": "failed", "after": "upstream_failed"},
    ),
    Case(
        "failure-inside-a-fused-chain",
        fixed(
            chain(
                SRC,
                node("f", "filter", **PASS),
                node("c", "cast", **BAD_CAST),
                node("d", "derive", columns={"y": "id + 1"}),
                node("g", "filter", condition="id > 1"),
            )
        ),
        fuse=True,
        run_status="failed",
        # the nodes feeding the culprit are fused bystanders, the ones after it
        # upstream_failed (uzo_engine.plan.failed_step_results)
        expect={"src": "failed", "f": "failed", "c": "failed", "d": "upstream_failed"},
    ),
    Case(
        "failure-inside-a-fused-join-tree",
        fixed(
            graph(
                [
                    values("a", pa.table({"id": [1, 2, 3]})),
                    node("fa", "filter", **PASS),
                    SRC,
                    node("c", "cast", **BAD_CAST),
                    node("j", "join", on=["id"]),
                    node("after", "filter", **PASS),
                ],
                [
                    edge("a", "fa"),
                    edge("src", "c"),
                    edge("fa", "j", target_handle="left"),
                    edge("c", "j", target_handle="right"),
                    edge("j", "after"),
                ],
            )
        ),
        fuse=True,
        run_status="failed",
        # fa: the sibling branch, "no output: fused with failing node c"
        expect={"c": "failed", "fa": "failed", "j": "upstream_failed"},
    ),
    Case(
        "upstream-failed-branch-and-an-independent-branch",
        fixed(
            graph(
                [
                    SRC,
                    node("c", "cast", **BAD_CAST),
                    node("after", "filter", **PASS),
                    node("side", "filter", condition="id > 1"),
                    node("side2", "derive", columns={"y": "id * 10"}),
                ],
                [edge("src", "c"), edge("c", "after"), edge("src", "side"), edge("side", "side2")],
            )
        ),
        run_status="failed",
        expect={"after": "upstream_failed", "side": "succeeded", "side2": "succeeded"},
    ),
    Case(
        "two-independent-failures",
        fixed(
            graph(
                [
                    SRC,
                    node("c", "cast", **BAD_CAST),
                    node("d", "derive", columns={"r": "id // 0"}),
                ],
                [edge("src", "c"), edge("src", "d")],
            )
        ),
        run_status="failed",
        expect={"c": "failed", "d": "failed"},
    ),
    Case(
        "branch-skips-downstream",
        fixed(
            graph(
                [
                    SRC,
                    node("big", "branch", condition="row_count > 100"),
                    node("alert", "derive", columns={"y": "id + 1"}),
                    node("alert2", "filter", **PASS),
                    node("live", "filter", condition="id > 1"),
                    node("both", "union"),
                ],
                [
                    edge("src", "big"),
                    edge("big", "alert"),
                    edge("alert", "alert2"),
                    edge("src", "live"),
                    edge("alert", "both"),
                    edge("live", "both"),
                ],
            )
        ),
        expect={
            "big": "succeeded",
            "alert": "skipped",
            "alert2": "skipped",
            "live": "succeeded",
            "both": "skipped",
        },
    ),
    Case(
        "timeout",
        fixed(
            chain(
                SRC,
                node("slow", "filter", settings={"timeout_seconds": 0.5}, **PASS),
                node("after", "filter", **PASS),
            )
        ),
        patch=with_runner("slow", lambda runner, env: Delayed(runner, seconds=5.0)),
        run_status="failed",
        expect={"slow": "failed", "after": "upstream_failed"},
    ),
    Case(
        "retries-exhausted",
        fixed(
            chain(
                SRC,
                node("c", "cast", settings={"retries": 2, **NO_RETRY_WAIT}, **BAD_CAST),
                node("after", "filter", **PASS),
            )
        ),
        run_status="failed",
        expect={"c": "failed", "after": "upstream_failed"},
    ),
    Case(
        "retry-then-success",
        fixed(
            chain(
                SRC,
                node("flaky", "filter", settings={"retries": 1, **NO_RETRY_WAIT}, **PASS),
                node("after", "filter", **PASS),
            )
        ),
        patch=with_runner(
            "flaky", lambda runner, env: FailFirst(str(env.workdir / "failed-once"), runner)
        ),
        expect={"flaky": "succeeded", "after": "succeeded"},
    ),
    Case(
        "cancelled-while-a-fused-step-runs",
        fixed(chain(SRC, node("slow", "filter", **PASS), node("after", "filter", **PASS))),
        patch=with_runner(
            "slow",
            lambda runner, env: Delayed(runner, seconds=3.0, started=str(env.workdir / "started")),
        ),
        cancel_on="started",
        run_status="cancelled",
        expect={"src": "succeeded", "after": "cancelled"},
    ),
    Case(
        "cancelled-while-an-eager-step-runs",
        fixed(
            chain(
                SRC, node("slow", "sql", query="SELECT * FROM src"), node("after", "filter", **PASS)
            )
        ),
        patch=with_runner(
            "slow",
            lambda runner, env: Delayed(runner, seconds=3.0, started=str(env.workdir / "started")),
        ),
        cancel_on="started",
        run_status="cancelled",
        expect={"src": "succeeded", "after": "cancelled"},
    ),
]

# Parity gaps of today's code (texts as "in-process | ray"), by case id; see the module
# docstring. Remove a case's entry once the unified executor closes its gaps.
NODE_ERROR = (
    "a failed node's error: Ray prefixes the exception class (\"node 'c' (cast): ...\" | "
    "\"NodeExecutionError: node 'c' (cast): ...\"), also inside fused bystanders' "
    '"fused with failing node c: ..."'
)
RUN_ERROR = (
    'the run error: the first failure\'s text | "N node(s) failed: <node>: <error>; ..." '
    '(+ "(k node(s) fused with them produced no output)")'
)
NOT_RUN = (
    "a node whose step did not run (upstream failed, skipped, cancelled): error None, "
    'attempts 1 | "upstream node X failed|skipped|cancelled", attempts 0'
)
TIMEOUT = (
    "timeout wording: \"node 'slow': TimeoutError: timed out after 0.5 s\" | "
    '"_TimedOut: step slow timed out after 0.5s"'
)
CANCEL_FUSED = (
    "cancelling while a lazy (fused-runner) step runs: the in-process executor records the "
    "runner's RuntimeError('cancelled') as a failure (slow failed \"node 'slow': "
    'RuntimeError: cancelled", after upstream_failed, run failed) | slow cancelled '
    '"cancelled while running", after cancelled, run cancelled "run cancelled"'
)
CANCEL_EAGER = (
    "cancelling while an eager step runs: in-process lets it finish (slow succeeded with its "
    'rows and output, run error None) | slow cancelled "cancelled while running", no '
    'output, run error "run cancelled"'
)
FAILURE = f"{NODE_ERROR}; {RUN_ERROR}"
GAPS: dict[str, str] = {}


def _params() -> list[Any]:
    out = []
    for case in EXAMPLE_CASES + SYNTHETIC_CASES:
        marks: list[Any] = [pytest.mark.slow] if case.tpch else []
        if case.id in GAPS:
            marks.append(pytest.mark.xfail(strict=True, reason=f"parity gap: {GAPS[case.id]}"))
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


# ================================================================ the test


@pytest.fixture(scope="session")
def tpch_sf001(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TPC-H SF 0.01 Parquet (about 2 s to generate, once per session)."""
    return tpch.ensure_data(tmp_path_factory.mktemp("tpch") / "sf0.01", scale=0.01)


@pytest.fixture
def cancel_on_marker() -> Iterator[Callable[[Path], threading.Event]]:
    """``watch(path)``: an event set once ``path`` exists (the watcher threads end with
    the test)."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def watch(path: Path) -> threading.Event:
        cancel = threading.Event()

        def run() -> None:
            while not stop.wait(0.02):
                if path.exists():
                    cancel.set()
                    return

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return cancel

    yield watch
    stop.set()
    for thread in threads:
        thread.join()


@pytest.mark.parametrize("case", _params())
def test_both_executors_report_the_same_run(
    case: Case,
    runtime: Runtime,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    cancel_on_marker: Callable[[Path], threading.Event],
) -> None:
    tpch_dir = request.getfixturevalue("tpch_sf001") if case.tpch else None
    executors: dict[str, Callable[[ExecutionPlan, StepContext], RunRecord]] = {
        "in-process": run_in_process,
        "ray": lambda plan, ctx: run_on_ray(plan, ctx, runtime=runtime),
    }
    records: dict[str, RunRecord] = {}
    files: dict[str, dict[str, pa.Table]] = {}
    ordered: frozenset[str] = frozenset()
    for name, execute in executors.items():
        env = Env(tmp_path / name, tpch_dir)
        env.workdir.mkdir()
        doc = case.doc(env)
        plan = compile_case(case, doc, env)
        ordered = ordered_steps(plan, doc)
        ctx = operator_ctx(f"parity-{name}-{uuid.uuid4().hex[:8]}")  # the files are ours
        if case.cancel_on is not None:
            ctx.cancelled = cancel_on_marker(env.workdir / case.cancel_on).is_set
        records[name] = execute(plan, ctx)
        files[name] = {f: pq.read_table(env.workdir / f) for f in case.files}

    local, ray = records["in-process"], records["ray"]
    problems = differences(local, ray, ordered)
    # the case covers what it claims, on both paths
    for name, record in records.items():
        got = {n: record.nodes[n].status if n in record.nodes else None for n in case.expect}
        if (record.status, got) != (case.run_status, dict(case.expect)):
            expected = (case.run_status, dict(case.expect))
            problems.append(f"{name} ran {(record.status, got)}, the case expects {expected}")
    for f in case.files:
        why = table_difference(files["in-process"][f], files["ray"][f], ordered=False)
        if why is not None:
            problems.append(f"file {f}: {why}")
    assert not problems, "in-process | ray differ:\n" + "\n".join(problems)


# ================================================================ the comparison itself


def test_differences_name_every_disagreeing_field() -> None:
    """The comparison is what the parity cases rest on: it must see each kind of gap."""
    table = pa.table({"k": [1, 2], "v": [0.5, 1.5]})
    base = RunRecord(
        "failed",
        "boom",
        {"a": NodeRecord("failed", 2, 0, "node 'a': boom", 3)},
        {("a", "out"): table},
    )
    assert differences(base, copy.deepcopy(base)) == []
    other = RunRecord(
        "cancelled",
        "run cancelled",
        {"a": NodeRecord("upstream_failed", 2, 1, "ValueError: node 'a': boom", 1)},
        {("a", "out"): table.take([1, 0]), ("b", "out"): table},
    )
    assert differences(base, other) == [
        "run status: 'failed' | 'cancelled'",
        "run error: 'boom' | 'run cancelled'",
        "node a status: 'failed' | 'upstream_failed'",
        "node a rows_out: 0 | 1",
        "node a error: \"node 'a': boom\" | \"ValueError: node 'a': boom\"",
        "node a attempts: 3 | 1",
        "output ('b', 'out'): absent | table",
    ]
    # row order counts only where the node defines it
    assert differences(base, dataclasses.replace(base, outputs=other.outputs), {"a"})[0] == (
        "output ('a', 'out'): row 0: (1, 0.5) != (2, 1.5)"
    )
    renamed = pa.table({"k": [1, 2], "w": [0.5, 1.5]})
    assert table_difference(table, renamed, ordered=False) is not None
    assert table_difference(table, pa.table({"k": [1, 2], "v": [0.5, 1.6]}), ordered=False)
    assert normalise("worker pid 4242 died after 12.5 ms") == "worker pid <n> died after <duration>"
    assert normalise("timed out after 0.5 s") == "timed out after 0.5 s"  # configured: kept


def test_ordered_nodes_follow_sorts_through_row_wise_nodes() -> None:
    doc = graph(
        [
            node("s", "values"),
            node("agg", "aggregate"),
            node("top", "sort"),
            node("lim", "limit"),
            node("sel", "select"),
            node("j", "join"),
        ],
        [
            edge("s", "agg"),
            edge("agg", "top"),
            edge("top", "lim"),
            edge("lim", "sel"),
            edge("sel", "j"),
            edge("s", "j"),
        ],
    )
    assert ordered_nodes(doc) == {"top", "lim", "sel"}
