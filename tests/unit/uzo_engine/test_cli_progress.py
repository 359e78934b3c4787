"""``uzo run``'s progress reporter: bounded work per event, right counts, plain when piped.

Bounds are on counts (live views built, rows in them, lines written), never on time.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import typer.main
from rich.console import Console
from typer.testing import CliRunner

from uzo_api.cli import app
from uzo_engine.cli.progress import (
    LIVE_REFRESH_PER_SECOND,
    LIVE_TABLE_STEPS,
    SUMMARY_ROWS,
    TABLE_ROWS,
    ProgressReporter,
)
from uzo_engine.events import NodeEvent, RunEvent
from uzo_engine.plan import (
    ExecutionPlan,
    NodeResult,
    PlanStep,
    Stage,
    StepContext,
    StepInput,
    StepOutput,
)
from uzo_engine.runtime.local import LocalExecutor

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from rich.table import Table

# the live summary: running, failed and recent sections, plus one "… N more" row for two
MAX_SUMMARY_ROWS = 3 * SUMMARY_ROWS + 2


@dataclass(frozen=True)
class Passes:
    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        table = next(iter(inputs.values())) if inputs else pa.table({"x": [1]})
        return StepOutput({"out": table}, [])


@dataclass(frozen=True)
class Fails:
    def run(self, inputs: Mapping[str, pa.Table], ctx: StepContext) -> StepOutput:
        raise ValueError("no good")


def fan_plan(n: int, failing: frozenset[str] = frozenset()) -> ExecutionPlan:
    """One source, n-2 independent nodes, one node reading them all; one node per step."""
    middle = [f"m{i}" for i in range(n - 2)]
    edges = [("src", []), *[(m, ["src"]) for m in middle], ("sink", middle)]
    steps = {
        sid: PlanStep(
            step_id=sid,
            node_ids=(sid,),
            inputs=tuple(StepInput(f"in{i}", up, "out") for i, up in enumerate(ups)),
            outputs=("out",),
            runner=Fails() if sid in failing else Passes(),
        )
        for sid, ups in edges
    }
    ids = [sid for sid, _ in edges]
    stages = tuple(Stage(i, tuple(ids[k : k + 1000])) for i, k in enumerate(range(0, n, 1000)))
    return ExecutionPlan(f"fan-{n}", steps, stages, {sid: sid for sid in ids})


def event(node: str, status: Any, ms: float = 1.0) -> NodeEvent:
    result = None
    if status != "running":
        result = NodeResult(
            node, status, rows_out=1, duration_ms=ms, error="boom" * (status == "failed")
        )
    return NodeEvent("x", node, status, result)


def rendered(renderable: Any) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def test_events_never_draw_and_the_summary_stays_small_for_10000_nodes() -> None:
    plan = fan_plan(10_000)
    reporter = ProgressReporter(plan)
    for node in reporter.order:  # every node running at once: the worst case for the view
        reporter.node_event(event(node, "running"))
    assert reporter.renders == 0  # an event only updates counters
    view: Table = reporter.live_view()  # type: ignore[assignment]
    assert reporter.renders == 1
    assert view.row_count <= MAX_SUMMARY_ROWS
    assert f"… {10_000 - SUMMARY_ROWS:,} more running" in rendered(view)

    done = [
        event(n, "failed" if i % 100 == 0 else "succeeded") for i, n in enumerate(reporter.order)
    ]
    reporter.deliver([*done, RunEvent("x", "failed")])  # a batch from the event writer
    assert reporter.renders == 1
    view = reporter.live_view()  # type: ignore[assignment]
    assert view.row_count <= MAX_SUMMARY_ROWS
    text = rendered(view)
    assert "10,000/10,000 nodes done" in text
    assert "9,900 succeeded · 100 failed" in text
    assert f"… {100 - SUMMARY_ROWS:,} more failed" in text
    assert "src " in text  # the first failure is named


def test_the_live_display_draws_at_its_rate_with_the_real_events() -> None:
    plan = fan_plan(2_000)
    reporter = ProgressReporter(plan)
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, height=40)
    with reporter.live(console):
        result = LocalExecutor(reporter).run(plan, StepContext(execution_id=uuid.uuid4().hex))
    assert result.status == "succeeded"
    assert reporter.events >= 2 * 2_000  # running and succeeded per node
    elapsed = reporter._clock() - reporter.started
    # drawn by the refresh thread (and once when the display stops), not per event
    assert reporter.renders <= LIVE_REFRESH_PER_SECOND * elapsed + 3
    assert reporter.renders * 20 < reporter.events
    # what reached the terminal is a few screens per drawing, not the plan per event
    assert len(buffer.getvalue()) < (reporter.renders + 1) * 120 * (MAX_SUMMARY_ROWS + 10)
    assert "\x1b[" in buffer.getvalue()  # it really was the terminal path


def test_counts_and_failures_from_a_real_run() -> None:
    plan = fan_plan(200, failing=frozenset({"m3", "m7"}))
    reporter = ProgressReporter(plan)
    result = LocalExecutor(reporter).run(plan, StepContext(execution_id=uuid.uuid4().hex))
    assert result.status == "failed"
    expected: dict[str, int] = {}
    for r in result.results.values():
        expected[r.status] = expected.get(r.status, 0) + 1
    assert {s: n for s, n in reporter.counts.items() if n} == expected
    assert expected == {"succeeded": 197, "failed": 2, "upstream_failed": 1}
    assert reporter.done == 200
    assert reporter.failed == ["m3", "m7"] or reporter.failed == ["m7", "m3"]
    line = reporter.summary_line()
    assert line.startswith("200/200 nodes done in ")
    assert line.endswith(": 197 succeeded, 2 failed, 1 upstream_failed")
    assert {"m3", "m7"} <= set(rendered(reporter.live_view()).split())

    # the final table of a large plan: what did not succeed first, then the slowest
    table, note = reporter.final_table()
    assert table.row_count == TABLE_ROWS
    text = rendered(table)
    assert {"m3", "m7", "sink"} <= set(text.split())
    assert note is not None
    assert "50 of 200 steps shown" in note
    assert "not shown: 150 succeeded" in note
    assert "--all-steps" in note
    everything, none = reporter.final_table(all_steps=True)
    assert (everything.row_count, none) == (200, None)


def test_the_final_table_picks_the_slowest_and_stays_whole_for_small_plans() -> None:
    plan = fan_plan(10_000)
    reporter = ProgressReporter(plan)
    reporter.deliver(
        event(n, "succeeded", ms=5000.0 if n in ("m10", "m9000") else 1.0) for n in reporter.order
    )
    table, note = reporter.final_table()
    assert table.row_count == TABLE_ROWS
    assert {"m10", "m9000"} <= set(rendered(table).split())
    assert note is not None
    assert "not shown: 9,950 succeeded" in note
    assert reporter.final_table(all_steps=True)[0].row_count == 10_000  # linear, once

    small = ProgressReporter(fan_plan(LIVE_TABLE_STEPS))
    small.node_event(event("src", "succeeded"))
    for view in (small.live_view(), small.final_table()[0]):  # the whole step table
        assert view.row_count == LIVE_TABLE_STEPS  # type: ignore[union-attr]
        assert f"1/{LIVE_TABLE_STEPS} nodes done" in rendered(view)
    assert small.final_table()[1] is None


def test_piped_progress_lines_are_plain_and_bounded_by_their_interval() -> None:
    plan = fan_plan(1_000)
    now = [0]
    lines: list[str] = []
    reporter = ProgressReporter(plan, lines=lines.append, line_interval=100, clock=lambda: now[0])
    for node in reporter.order:
        now[0] += 1  # 1,000 events over 1,000 s: one line every 100 s
        reporter.node_event(event(node, "succeeded"))
    assert reporter.renders == 0  # nothing is drawn piped
    assert len(lines) == reporter.lines_written == 10
    assert lines[0] == "100/1,000 nodes done in 100.0 s: 100 succeeded, 900 queued"
    assert lines[-1] == "1,000/1,000 nodes done in 1000.0 s: 1,000 succeeded"
    assert all("\x1b" not in line and "[" not in line for line in lines)


def _workflow(tmp_path: Path, n_filters: int) -> str:
    def node(node_id: str, node_type: str, config: dict[str, Any]) -> dict[str, Any]:
        data = {"nodeType": node_type, "config": config}
        return {"id": node_id, "type": "default", "position": {"x": 0, "y": 0}, "data": data}

    nodes = [node("src", "values", {"rows": [{"id": 1, "amount": 10.5}]})]
    nodes += [node(f"f{i}", "filter", {"condition": f"amount > {i}"}) for i in range(n_filters)]
    edges = [{"id": f"e{i}", "source": "src", "target": f"f{i}"} for i in range(n_filters)]
    path = tmp_path / "fan.json"
    path.write_text(
        json.dumps({"nodes": nodes, "edges": edges, "viewport": {"x": 0, "y": 0, "zoom": 1}})
    )
    return str(path)


def test_uzo_run_piped_prints_one_plain_capped_table(tmp_path: Path) -> None:
    path = _workflow(tmp_path, TABLE_ROWS + 20)
    result = CliRunner().invoke(app, ["run", "--local", path])  # stdout is not a terminal
    assert result.exit_code == 0, result.stdout
    out = result.stdout
    assert "\x1b" not in out  # no colours, no cursor moves
    assert out.count("nodes done") == 1  # the table once, no redraws
    assert f"{TABLE_ROWS + 21}/{TABLE_ROWS + 21} nodes done" in out
    assert f"{TABLE_ROWS} of {TABLE_ROWS + 21} steps shown" in out
    assert "succeeded in " in out
    every = CliRunner().invoke(app, ["run", "--local", "--all-steps", path])
    assert every.exit_code == 0, every.stdout
    assert "steps shown" not in every.stdout
    assert all(f" f{i} " in every.stdout for i in range(TABLE_ROWS + 20))
    run = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    (flag,) = (p for p in run.params if "--all-steps" in p.opts)
    assert f"over {TABLE_ROWS} steps" in flag.help
