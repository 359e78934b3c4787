"""``uzo run``'s progress: counters kept per event, drawn at a bounded rate.

The :class:`ProgressReporter` is the run's event sink. An event costs O(1): the node's
latest event is kept, the counters per status move, the node enters or leaves the set of
running nodes, a finished node goes into a short ring of recent ones. An event never
draws anything:

- on a terminal, a rich ``Live`` asks for :meth:`ProgressReporter.live_view` at its
  refresh rate; a plan of at most :data:`LIVE_TABLE_STEPS` steps shows its whole step
  table there, a larger one a summary of bounded size (counts per status and the
  running, failed and most recently finished nodes, each capped, with "… N more");
- piped (or on a dumb terminal) there is no live view: a plain line of counts at most
  every ``line_interval`` seconds, so that the log of a long run shows it moving.

At the end :meth:`ProgressReporter.final_table` is printed once. A plan of at most
:data:`TABLE_ROWS` steps gets every step, as it always did; a larger one gets every
step that did not succeed first, then the slowest, :data:`TABLE_ROWS` rows in all (in
plan order), and a note of what was left out: ``--all-steps`` lists every step (linear,
printed once) and ``--json`` gives every node.

Rich is imported when something is drawn (``uzo -h`` must stay fast).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import Counter, deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from rich.console import Console, RenderableType
    from rich.live import Live
    from rich.table import Table

    from uzo_engine.events import NodeEvent, RunEvent
    from uzo_engine.plan import ExecutionPlan, NodeResult

STATUS_STYLE = {
    "queued": "dim",
    "running": "cyan",
    "succeeded": "green",
    "failed": "bold red",
    "skipped": "yellow",
    "cancelled": "magenta",
    "upstream_failed": "red",
}
DONE = frozenset({"succeeded", "failed", "skipped", "cancelled", "upstream_failed"})
# the order counts are shown in: what needs attention after what is moving
_COUNT_ORDER = ("succeeded", "running", "queued", "failed", "upstream_failed", "cancelled")

LIVE_REFRESH_PER_SECOND = 4  # how often the live view is drawn, however many events arrive
LIVE_TABLE_STEPS = 20  # a plan this small shows its whole step table live
SUMMARY_ROWS = 5  # rows per section (running, failed, recent) of the live summary
TABLE_ROWS = 50  # final table rows of a larger plan (--all-steps: all; its help says 50)
LINE_INTERVAL_S = 10.0  # piped: at most one progress line this often


class ProgressReporter:
    """The event sink of ``uzo run``: O(1) work per event, bounded work per drawing.

    Events arrive on the engine's event-writer thread while the live view is drawn on
    rich's refresh thread; a lock keeps the two apart. ``lines``, when given, receives
    a plain progress line at most every ``line_interval`` seconds (the piped output).
    """

    def __init__(
        self,
        plan: ExecutionPlan,
        *,
        lines: Callable[[str], object] | None = None,
        line_interval: float = LINE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.steps: list[tuple[str, ...]] = [
            plan.steps[s].node_ids for stage in plan.stages for s in stage.step_ids
        ]
        self.order = [n for nodes in self.steps for n in nodes]
        self._known = frozenset(self.order)
        self.latest: dict[str, NodeEvent] = {}
        self.counts: Counter[str] = Counter({"queued": len(self.order)})
        self.running: dict[str, None] = {}  # insertion-ordered set
        self.recent: deque[str] = deque(maxlen=SUMMARY_ROWS)
        self.failed: list[str] = []  # the first SUMMARY_ROWS failures; counts hold the rest
        self.events = 0
        self.renders = 0  # live views built (what the tests bound)
        self.lines_written = 0
        self._lines = lines
        self._line_interval = line_interval
        self._clock = clock
        self.started = clock()
        self._last_line = self.started
        self._lock = threading.Lock()

    # -- the sink -----------------------------------------------------------------------

    def node_event(self, event: NodeEvent) -> None:
        with self._lock:
            self._apply(event)
        self._maybe_line()

    def run_event(self, event: RunEvent) -> None:
        del event

    def deliver(self, events: Iterable[NodeEvent | RunEvent]) -> None:
        """A batch from the event writer: one lock and one clock reading for all of it."""
        from uzo_engine.events import NodeEvent

        with self._lock:
            for event in events:
                if isinstance(event, NodeEvent):
                    self._apply(event)
        self._maybe_line()

    def _apply(self, event: NodeEvent) -> None:
        node = event.node_id
        previous = self.latest.get(node)
        self.latest[node] = event
        self.events += 1
        if node not in self._known:  # not a node of this plan: kept, not counted
            return
        before = previous.status if previous is not None else "queued"
        now = event.status
        if before == now:
            return
        self.counts[before] -= 1
        self.counts[now] += 1
        if now == "running":
            self.running[node] = None
        else:
            self.running.pop(node, None)
        if now in DONE:
            self.recent.append(node)
        if now == "failed" and len(self.failed) < SUMMARY_ROWS:
            self.failed.append(node)

    def _maybe_line(self) -> None:
        if self._lines is None:
            return
        now = self._clock()
        if now - self._last_line < self._line_interval:
            return
        self._last_line = now
        with self._lock:
            text = self.summary_line()
        self.lines_written += 1
        self._lines(text)

    # -- what is shown ------------------------------------------------------------------

    def status(self, node_id: str) -> str:
        event = self.latest.get(node_id)
        return event.status if event else "queued"

    @property
    def done(self) -> int:
        return sum(self.counts[s] for s in DONE)

    def summary_line(self) -> str:
        """``1,234/10,000 nodes done in 12.3 s: 1,230 succeeded, 4 running, ...`` (plain)."""
        counts = ", ".join(f"{self.counts[s]:,} {s}" for s in self._shown_statuses())
        elapsed = self._clock() - self.started
        return f"{self.done:,}/{len(self.order):,} nodes done in {elapsed:.1f} s: {counts}"

    def _shown_statuses(self) -> list[str]:
        shown = [s for s in _COUNT_ORDER if self.counts[s] > 0]
        return shown + sorted(s for s, n in self.counts.items() if n > 0 and s not in shown)

    def live_view(self) -> RenderableType:
        """What the live display shows now: bounded by the caps, not by the plan's size."""
        with self._lock:
            self.renders += 1
            if len(self.steps) <= LIVE_TABLE_STEPS:
                return self._step_table(range(len(self.steps)))
            return self._summary()

    def _summary(self) -> Table:
        from rich.markup import escape

        table = _new_table()
        parts = [_styled(s, f"{self.counts[s]:,} {s}") for s in self._shown_statuses()]
        elapsed = self._clock() - self.started
        table.title = (
            f"{self.done:,}/{len(self.order):,} nodes done in {elapsed:.1f} s\n" + " · ".join(parts)
        )
        shown: set[str] = set()

        def section(nodes: Sequence[str], total: int, what: str) -> None:
            for node in nodes:
                shown.add(node)
                event = self.latest.get(node)
                status = event.status if event else "queued"
                results = [event.result] if event is not None and event.result else []
                table.add_row(escape(node), _styled(status), *_figures(results))
            if total > len(nodes):
                table.add_row(f"[dim]… {total - len(nodes):,} more {what}[/]", "", "", "")

        running = list(_first(self.running, SUMMARY_ROWS))
        section(running, self.counts["running"], "running")
        section(self.failed, self.counts["failed"], "failed")
        recent = [n for n in reversed(self.recent) if n not in shown]
        section(recent, len(recent), "finished")
        return table

    def final_table(self, all_steps: bool = False) -> tuple[Table, str | None]:
        """The table of steps printed at the end, and a note of the rows left out (if any).

        Linear in the plan: each step's status is worked out once.
        """
        with self._lock:
            if all_steps or len(self.steps) <= TABLE_ROWS:
                return self._step_table(range(len(self.steps))), None
            statuses = [_step_status([self.status(n) for n in nodes]) for nodes in self.steps]
            notable = [i for i, s in enumerate(statuses) if s not in ("succeeded", "skipped")]
            chosen = notable[:TABLE_ROWS]
            if len(chosen) < TABLE_ROWS:
                rest = (i for i, s in enumerate(statuses) if s in ("succeeded", "skipped"))
                chosen += heapq.nlargest(TABLE_ROWS - len(chosen), rest, key=self._step_ms)
            chosen.sort()
            left = Counter(statuses)
            left.subtract(statuses[i] for i in chosen)
            left_text = ", ".join(f"{n:,} {s}" for s, n in left.most_common() if n > 0)
            note = (
                f"{len(chosen):,} of {len(self.steps):,} steps shown (those that did not "
                f"succeed first, then the slowest); not shown: {left_text}. "
                "--all-steps lists every step, --json every node."
            )
            return self._step_table(chosen), note

    def live(self, console: Console) -> Live:
        """The live display of this run on ``console`` (a terminal), to use as a context.

        Transient: when it stops, :meth:`print_final` prints what stays on screen.
        """
        from rich.live import Live

        return Live(
            console=console,
            get_renderable=self.live_view,
            refresh_per_second=LIVE_REFRESH_PER_SECOND,
            transient=True,
        )

    def print_final(self, console: Console, all_steps: bool = False) -> None:
        """Print :meth:`final_table` and its note, once, at the end of the run."""
        table, note = self.final_table(all_steps)
        console.print(table)
        if note:
            console.print(note, style="dim", markup=False, highlight=False)

    def _step_ms(self, index: int) -> float:
        return sum(r.duration_ms for r in self._results(self.steps[index]))

    def _results(self, nodes: Sequence[str]) -> list[NodeResult]:
        return [ev.result for n in nodes if (ev := self.latest.get(n)) and ev.result]

    def _step_table(self, indices: Iterable[int]) -> Table:
        from rich.markup import escape

        table = _new_table()
        for i in indices:  # nodes fused into one step: one row, the step's time
            nodes = self.steps[i]
            status = _step_status([self.status(n) for n in nodes])
            table.add_row(
                escape(" → ".join(nodes)), _styled(status), *_figures(self._results(nodes))
            )
        table.title = f"{self.done}/{len(self.order)} nodes done"
        return table


def _new_table() -> Table:
    from rich.table import Table

    table = Table(show_lines=False)
    for col, justify in (
        ("node", "left"),
        ("status", "left"),
        ("rows out", "right"),
        ("time", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    return table


def _first(items: Iterable[str], n: int) -> Iterable[str]:
    for i, item in enumerate(items):
        if i == n:
            return
        yield item


def _styled(status: str, text: str | None = None) -> str:
    return f"[{STATUS_STYLE.get(status, 'none')}]{status if text is None else text}[/]"


def _step_status(statuses: list[str]) -> str:
    """A step's row: its worst node status (a fused step fails as one)."""
    for status in ("failed", "upstream_failed", "cancelled", "running", "queued", "skipped"):
        if status in statuses:
            return status
    return statuses[-1]


def _figures(results: list[NodeResult]) -> tuple[str, str]:
    if not results:
        return "", ""
    last = results[-1]
    rows = "" if last.rows_out < 0 else f"{last.rows_out:,}"
    seconds = sum(r.duration_ms for r in results) / 1000
    return rows, f"{seconds:.3f} s" if seconds else ""
