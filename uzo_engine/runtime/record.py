"""The Prefect mirror: every run written to Prefect as a flow run, off the critical path.

UZO's own records are the source of truth for runs; Prefect shows them to
operators (ADR 0005). One :class:`Recorder` per process writes them from an
event loop thread of its own, in batches, through Prefect's REST API
(:mod:`.prefect_api`); no flow engine and no task runner run per run:

- the driver calls :meth:`Recorder.start`, :meth:`FlowRecord.step` (once per
  finished step) and :meth:`FlowRecord.conclude`; each only appends to a queue;
- every ``interval`` (0.2 s) the writer sends what has queued up: a flow run per
  run named by its execution id (created directly in its final state when the
  run ended within ``delay`` of its start, else RUNNING and finished later), a
  task run per step with the step's start and end, many per request;
- once a second, one request asks Prefect which running flow runs someone set
  to CANCELLING or CANCELLED, and each of those runs is cancelled through
  ``cancel_run(execution_id)``: the same path UZO's API cancels by;
- when Prefect does not answer, runs go on untouched: the writer retries with
  backoff and catches up; an outage longer than ``give_up_seconds`` drops the
  runs it holds (a *mirror gap*: one warning per outage, and their
  :class:`FlowRunState` says so);
- names, parameters and messages carry ids, statuses, counts and times only
  (Prefect's UI has no tenancy); error texts go to Prefect only when
  ``forward_errors`` is on.

:meth:`FlowRecord.wait` returns once the flow run has its final state (Prefect's
server then turns the task-run events into task runs within seconds).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from uzo_engine.runtime import prefect_api
from uzo_engine.runtime.loop import LoopThread
from uzo_engine.runtime.prefect_api import PrefectUnavailable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from prefect.client.orchestration import PrefectClient

log = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 1.0
# Prefect's SQLite serializes writes: concurrent requests only wait on its lock (and, past
# its busy timeout, fail with 503). Measured with 30 runs back to back: 8 at a time, 48 s
# until all were written, and 503s; 1 at a time, 7 s.
CONCURRENT_REQUESTS = 1
MAX_BACKLOG_RUNS = 10_000  # runs held for Prefect; beyond, the oldest is dropped (a gap)
WRITES_PER_TICK = 50  # flow-run requests per round: the cancel poll still comes every ~1 s
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 5.0
# a busy Prefect answers 503 for a moment (its SQLite locked by its own services): only an
# outage that lasts this long is worth a warning
WARN_AFTER_SECONDS = 10.0


@dataclass(frozen=True)
class FlowRunState:
    flow_run_id: str | None
    state: str | None  # COMPLETED, FAILED, CANCELLED; None: no final state in Prefect
    message: str | None
    error: str | None = None  # why the run is not (fully) recorded in Prefect


@dataclass
class MirrorStats:
    """What the writer did so far (read from any thread; for benchmarks and tests)."""

    cpu_seconds: float = 0.0  # CPU time of the writer thread
    requests: int = 0
    flow_runs: int = 0
    task_runs: int = 0
    dropped: int = 0  # runs given up on (mirror gaps)


@dataclass(frozen=True)
class _Step:
    task_run_id: str
    step_id: str
    node_ids: tuple[str, ...]
    status: str
    started_at: float
    ended_at: float
    message: str | None


@dataclass(frozen=True)
class _Outcome:
    status: str
    message: str
    ended_at: float


_START = object()


@dataclass
class _Progress:
    """Writer-side state of one record (touched on the writer's thread only)."""

    unsent: list[_Step] = field(default_factory=list)
    outcome: _Outcome | None = None
    final: tuple[str, str, str] | None = None  # the final state, once written
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    failed_nodes: list[str] = field(default_factory=list)
    nodes: int = 0
    cancel_asked: bool = False
    note: str | None = None  # something not recorded (e.g. task runs refused)


class FlowRecord:
    """The mirror of one run. The driver feeds it from any thread; every call only queues."""

    def __init__(self, recorder: Recorder, execution_id: str) -> None:
        self.execution_id = execution_id
        self.key = uuid.uuid4().hex
        self.started_at = time.time()
        self.started_mono = time.monotonic()
        self.flow_run_id: str | None = None  # set by the writer once Prefect created it
        self.future: concurrent.futures.Future[FlowRunState] = concurrent.futures.Future()
        self._recorder = recorder
        self.progress = _Progress()

    def step(
        self,
        step_id: str,
        node_ids: Sequence[str],
        status: str,
        started_at: float | None,
        ended_at: float | None,
        message: str | None,
    ) -> None:
        """A finished step (times in epoch seconds; unknown ones become the time of the call)."""
        end = ended_at if ended_at is not None else time.time()
        start = started_at if started_at is not None else end
        item = _Step(str(uuid.uuid4()), step_id, tuple(node_ids), status, start, end, message)
        self._recorder.post(self, item)

    def conclude(self, status: str, message: str) -> None:
        """The run ended: succeeded, failed or cancelled."""
        self._recorder.post(self, _Outcome(status, message, time.time()))

    def wait(self, timeout: float | None = 60.0) -> FlowRunState:
        """Block until the flow run has its final state in Prefect (or ``timeout`` seconds)."""
        try:
            return self.future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            return FlowRunState(self.flow_run_id, None, None, f"not recorded after {timeout}s")

    @property
    def done(self) -> bool:
        return self.future.done()


class Recorder:
    """Writes this process's runs to the Prefect API at ``api_url`` (one per process)."""

    def __init__(
        self,
        api_url: str,
        *,
        cancel_run: Callable[[str], object],
        nice: int = 0,
        delay: float = 1.0,
        interval: float = 0.2,
        give_up_seconds: float = 600.0,
        startup_grace_seconds: float = 90.0,
        forward_errors: bool = False,
        hint: str = "",
    ) -> None:
        self.api_url = api_url
        self.cancel_run = cancel_run
        self.delay = delay
        self.interval = interval
        self.give_up_seconds = give_up_seconds
        self.startup_grace_seconds = startup_grace_seconds
        self.forward_errors = forward_errors
        self.hint = hint
        self.stats = MirrorStats()
        self._inbox: collections.deque[tuple[FlowRecord, object]] = collections.deque()
        self._live: dict[str, FlowRecord] = {}  # key -> record not yet resolved (any thread)
        self._lock = threading.Lock()
        self._nudge = asyncio.Event()
        self._stopping = False
        # writer-side state (the writer's thread only)
        self._records: dict[str, FlowRecord] = {}
        self._flow_id: str | None = None
        self._created = time.monotonic()
        self._connected = False
        self._ok_this_tick = 0
        self._retry_at = 0.0
        self._next_poll = 0.0
        self._down_since: float | None = None
        self._failures = 0
        self._warned = False
        self._gap_warned = False
        self._dropped_in_outage = 0
        self._shed_warned = False
        self._quiet: set[str] = set()  # non-retryable errors already logged
        self._thread = LoopThread("uzo-prefect-mirror", nice=nice)
        self._serving = self._thread.submit(self._serve())

    # -- the driver's side (any thread) --------------------------------------------------------

    def start(self, execution_id: str) -> FlowRecord:
        """Begin the mirror of a run; returns at once (never waits for Prefect)."""
        record = FlowRecord(self, execution_id)
        with self._lock:
            self._live[record.key] = record
        self.post(record, _START)
        return record

    def post(self, record: FlowRecord, item: object) -> None:
        self._inbox.append((record, item))  # deque.append is atomic: no lock, no wake-up

    def flow_run_id(self, execution_id: str) -> str | None:
        """The flow run of a run still being mirrored (None until Prefect created it)."""
        with self._lock:
            ids = [r.flow_run_id for r in self._live.values() if r.execution_id == execution_id]
        return next((i for i in reversed(ids) if i), None)

    def flush(self, timeout: float = 30.0) -> int:
        """Write what is queued now and wait until every run started so far is recorded;
        returns how many were not in time (e.g. still running, or Prefect is down)."""
        with self._lock:
            futures = [r.future for r in self._live.values()]
        self._thread.loop.call_soon_threadsafe(self._nudge.set)
        _, not_done = concurrent.futures.wait(futures, timeout=timeout)
        return len(not_done)

    def close(self, timeout: float = 30.0) -> None:
        """Flush (up to ``timeout``), then stop the writer; runs not recorded say so."""
        self.flush(timeout)
        self._stopping = True
        self._thread.loop.call_soon_threadsafe(self._nudge.set)
        with contextlib.suppress(Exception):
            self._serving.result(timeout=10)
        self._thread.stop()
        with self._lock:
            left = list(self._live.values())
            self._live.clear()
        for record in left:
            if not record.future.done():
                state = FlowRunState(record.flow_run_id, None, None, "not recorded: closed first")
                record.future.set_result(state)

    # -- the writer (its own thread) -----------------------------------------------------------

    async def _serve(self) -> None:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

        # our own retries (with backoff, outage accounting) replace the client's
        updates = {PREFECT_API_URL: self.api_url, PREFECT_CLIENT_MAX_RETRIES: 0}
        try:
            with temporary_settings(updates=updates):
                async with get_client(httpx_settings={"timeout": 10.0}) as client:
                    while not self._stopping:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._nudge.wait(), self.interval)
                        self._nudge.clear()
                        try:
                            await self._tick(client)
                        except Exception:  # a bug here must not stop the mirror
                            log.exception("Prefect mirror: unexpected error")
                        self.stats.cpu_seconds = time.thread_time()
        except Exception as exc:  # no Prefect client at all: say so to every waiter
            log.exception("Prefect mirror stopped")
            for record in list(self._records.values()):
                self._resolve(record, FlowRunState(None, None, None, f"mirror stopped: {exc!r}"))

    async def _tick(self, client: PrefectClient) -> None:
        self._drain()
        now = time.monotonic()
        if not self._records or now < self._retry_at:
            return
        self._ok_this_tick = 0
        try:
            await self._write(client, now)
            await self._poll_cancellations(client, now)
        except PrefectUnavailable as exc:
            self._unavailable(exc)
            return
        if self._ok_this_tick:
            self._available()

    def _drain(self) -> None:
        while self._inbox:
            record, item = self._inbox.popleft()
            if record.future.done():  # given up on (a mirror gap): nothing more to write
                continue
            progress = record.progress
            if item is _START:
                self._records[record.key] = record
                if len(self._records) > MAX_BACKLOG_RUNS:
                    self._shed()
            elif isinstance(item, _Step):
                progress.unsent.append(item)
                progress.statuses[item.status] += 1
                progress.nodes += len(item.node_ids)
                if item.status == "failed":
                    progress.failed_nodes.extend(item.node_ids)
            elif isinstance(item, _Outcome):
                progress.outcome = item

    async def _call(self, request: Awaitable[Any]) -> Any:
        try:
            result = await request
        except Exception as exc:
            raise prefect_api.classify(exc) from exc
        self.stats.requests += 1
        self._ok_this_tick += 1
        self._connected = True
        return result

    async def _each(
        self, records: Iterable[FlowRecord], write: Callable[[FlowRecord], Awaitable[None]]
    ) -> None:
        """``write`` each record, a few requests at a time; a refusal drops only its record,
        an outage is raised once every request has returned."""
        gate = asyncio.Semaphore(CONCURRENT_REQUESTS)

        async def one(record: FlowRecord) -> None:
            async with gate:
                await write(record)

        todo = list(records)
        results = await asyncio.gather(*(one(r) for r in todo), return_exceptions=True)
        outage: PrefectUnavailable | None = None
        for record, result in zip(todo, results, strict=True):
            if isinstance(result, PrefectUnavailable):
                outage = result
            elif isinstance(result, BaseException):
                self._refused(record, result)
        if outage is not None:
            raise outage

    async def _write(self, client: PrefectClient, now: float) -> None:
        if self._flow_id is None:
            self._flow_id = await self._call(prefect_api.ensure_flow(client))
        records = list(self._records.values())
        due = [
            r
            for r in records
            if r.flow_run_id is None
            and (r.progress.outcome is not None or now - r.started_mono >= self.delay)
        ]
        if len(due) > WRITES_PER_TICK:
            due = due[:WRITES_PER_TICK]
            self._nudge.set()  # more to do: the next round comes at once
        await self._each(due, lambda r: self._create(client, r))
        await self._send_steps(client, [r for r in records if r.flow_run_id and r.progress.unsent])
        finals = [
            r
            for r in records
            if r.flow_run_id
            and r.progress.outcome is not None
            and r.progress.final is None
            and not r.progress.unsent
        ]
        if len(finals) > WRITES_PER_TICK:
            finals = finals[:WRITES_PER_TICK]
            self._nudge.set()
        await self._each(finals, lambda r: self._finish(client, r))
        for r in records:
            if r.progress.final is not None and not r.progress.unsent:
                type_, _, message = r.progress.final
                self._resolve(r, FlowRunState(r.flow_run_id, type_, message, r.progress.note))

    async def _create(self, client: PrefectClient, record: FlowRecord) -> None:
        assert self._flow_id is not None
        final = self._final_state(record) if record.progress.outcome is not None else None
        state = final or ("RUNNING", "Running", None)
        key = f"uzo-{record.key}"
        record.flow_run_id = await self._call(
            prefect_api.create_flow_run(client, self._flow_id, record.execution_id, key, state)
        )
        self.stats.flow_runs += 1
        record.progress.final = final

    async def _finish(self, client: PrefectClient, record: FlowRecord) -> None:
        assert record.flow_run_id is not None
        final = self._final_state(record)
        await self._call(prefect_api.set_flow_run_state(client, record.flow_run_id, final))
        record.progress.final = final

    async def _send_steps(self, client: PrefectClient, records: Sequence[FlowRecord]) -> None:
        if not records:
            return
        events = []
        for record in records:
            assert record.flow_run_id is not None
            for s in record.progress.unsent:
                message = self._step_message(s)
                events.append(
                    prefect_api.task_run_event(
                        record.flow_run_id,
                        s.task_run_id,
                        s.step_id,
                        s.node_ids,
                        s.status,
                        s.started_at,
                        s.ended_at,
                        message,
                    )
                )
        try:
            await self._call(prefect_api.emit_events(client, events))
        except PrefectUnavailable:
            raise
        except Exception as exc:  # refused (e.g. a Prefect whose event schema changed)
            self._log_refusal(exc)
            for record in records:
                record.progress.note = f"task runs not recorded: {type(exc).__name__}"
        else:
            self.stats.task_runs += len(events)
        for record in records:
            record.progress.unsent.clear()

    def _step_message(self, step: _Step) -> str:
        nodes = ", ".join(step.node_ids[:20]) + (" …" if len(step.node_ids) > 20 else "")
        text = f"{step.status}: node(s) {nodes}; {step.ended_at - step.started_at:.3f} s"
        if self.forward_errors and step.message:
            text += f"; {step.message}"
        return text

    def _final_state(self, record: FlowRecord) -> tuple[str, str, str]:
        progress = record.progress
        outcome = progress.outcome
        assert outcome is not None
        type_, name = prefect_api.RUN_STATES.get(outcome.status, ("FAILED", "Failed"))
        counts = ", ".join(f"{n} {s}" for s, n in sorted(progress.statuses.items()))
        steps = sum(progress.statuses.values())
        parts = [outcome.status]
        if progress.failed_nodes:
            failed = progress.failed_nodes
            more = f" (+{len(failed) - 20} more)" if len(failed) > 20 else ""
            parts.append(f"node(s) failed: {', '.join(failed[:20])}{more}")
        parts.append(f"{steps} step(s) ({counts or 'none'}), {progress.nodes} node(s)")
        parts.append(f"{outcome.ended_at - record.started_at:.3f} s in UZO")
        message = "; ".join(parts)
        if self.forward_errors and outcome.message:
            message += f"; {outcome.message}"
        return type_, name, message

    async def _poll_cancellations(self, client: PrefectClient, now: float) -> None:
        """One request for every running flow run: those set to CANCELLING (or CANCELLED)
        in Prefect cancel their run through ``cancel_run``."""
        if now < self._next_poll:
            return
        self._next_poll = now + CANCEL_POLL_SECONDS
        running = {
            r.flow_run_id: r
            for r in self._records.values()
            if r.flow_run_id and r.progress.outcome is None and not r.progress.cancel_asked
        }
        if not running:
            return
        asked = await self._call(prefect_api.cancel_requested(client, running))
        loop = asyncio.get_running_loop()
        for flow_run_id in asked & running.keys():
            record = running[flow_run_id]
            record.progress.cancel_asked = True
            log.info(
                "flow run %s was cancelled in Prefect: cancelling run %s",
                flow_run_id,
                record.execution_id,
            )
            loop.run_in_executor(None, self._cancel, record.execution_id)

    def _cancel(self, execution_id: str) -> None:
        try:
            self.cancel_run(execution_id)
        except Exception:
            log.exception("cancelling run %s (asked in Prefect) failed", execution_id)

    # -- outcomes ------------------------------------------------------------------------------

    def _resolve(self, record: FlowRecord, state: FlowRunState) -> None:
        self._records.pop(record.key, None)
        with self._lock:
            self._live.pop(record.key, None)
        if not record.future.done():
            record.future.set_result(state)

    def _refused(self, record: FlowRecord, exc: BaseException) -> None:
        """Prefect refused a write that retrying will not fix: that run is not recorded."""
        self._log_refusal(exc)
        error = f"Prefect refused the flow run: {type(exc).__name__}: {exc}"
        self._resolve(record, FlowRunState(record.flow_run_id, None, None, error[:500]))

    def _log_refusal(self, exc: BaseException) -> None:
        kind = type(exc).__name__ + str(getattr(getattr(exc, "response", None), "status_code", ""))
        if kind in self._quiet:
            log.debug("Prefect refused a mirror write: %r", exc)
            return
        self._quiet.add(kind)
        log.warning("Prefect refused a mirror write (logged once per kind): %r", exc)

    def _unavailable(self, exc: PrefectUnavailable) -> None:
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            self._failures = 0
            self._warned = self._gap_warned = False
            self._dropped_in_outage = 0
        self._failures += 1
        backoff = BACKOFF_FIRST_SECONDS * 2 ** min(self._failures - 1, 10)
        self._retry_at = now + min(BACKOFF_MAX_SECONDS, backoff)
        down = now - self._down_since
        starting = not self._connected and now - self._created < self.startup_grace_seconds
        if starting or self._warned or down < min(WARN_AFTER_SECONDS, self.give_up_seconds):
            log.debug("Prefect API %s not answering: %s", self.api_url, exc)
        else:
            self._warned = True
            log.warning(
                "Prefect API %s not answering for %.0f s (%s): runs go on; their flow runs "
                "are written once it answers, or dropped after %.0f s%s",
                self.api_url,
                down,
                exc,
                self.give_up_seconds,
                f" ({self.hint})" if self.hint else "",
            )
        if down >= self.give_up_seconds:
            self._drop_all(down)

    def _drop_all(self, down: float) -> None:
        error = (
            f"mirror gap: the Prefect API {self.api_url} did not answer for {down:.0f} s; "
            "this run is not (fully) recorded in Prefect"
        )
        dropped = list(self._records.values())
        for record in dropped:
            self._resolve(record, FlowRunState(record.flow_run_id, None, None, error))
        self.stats.dropped += len(dropped)
        self._dropped_in_outage += len(dropped)
        if dropped and not self._gap_warned:
            self._gap_warned = True
            log.warning(
                "mirror gap: %d run(s) not recorded in Prefect, whose API %s has not answered "
                "for %.0f s (more may follow while it stays down)",
                len(dropped),
                self.api_url,
                down,
            )

    def _shed(self) -> None:
        """More runs wait than Prefect has taken: drop the oldest (memory stays bounded)."""
        oldest = next(iter(self._records.values()))
        error = f"mirror gap: more than {MAX_BACKLOG_RUNS} runs were waiting for Prefect"
        self._resolve(oldest, FlowRunState(oldest.flow_run_id, None, None, error))
        self.stats.dropped += 1
        if not self._shed_warned:
            self._shed_warned = True
            log.warning(
                "mirror gap: more than %d runs wait for the Prefect API %s, which takes them "
                "slower than they come; the oldest are dropped (logged once)",
                MAX_BACKLOG_RUNS,
                self.api_url,
            )

    def _available(self) -> None:
        if self._down_since is not None:
            down = time.monotonic() - self._down_since
            gap = (
                f"; {self._dropped_in_outage} run(s) were not recorded (mirror gap)"
                if self._dropped_in_outage
                else "; the mirror caught up"
            )
            level = logging.INFO if self._warned else logging.DEBUG
            log.log(level, "Prefect API %s answers again after %.0f s%s", self.api_url, down, gap)
        self._down_since = None
        self._failures = 0
        self._retry_at = 0.0
