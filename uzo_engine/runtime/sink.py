"""Asynchronous event delivery: a run hands its events to a queue and goes on.

One writer thread per process drains the queue in batches into each run's sink, so
a slow sink (a database, a WebSocket fan-out) delays only the events, never a step.
A run waits for its own events to be delivered when it ends, at most
``flush_timeout`` seconds (the default), so a caller reading its sink afterwards
sees them all; a sink that raises loses that event and logs one warning per run.
A sink may offer ``deliver(events)`` to take a whole batch at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from uzo_engine.events import EventSink, NodeEvent, RunEvent

log = logging.getLogger(__name__)

_BATCH = 500


class _Writer:
    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[tuple[QueuedSink, Any] | Callable[[], object]] = (
            queue.SimpleQueue()
        )
        self.thread = threading.Thread(target=self._loop, name="uzo-events", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            batch = [self.queue.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self._deliver(batch)

    @staticmethod
    def _deliver(batch: list[tuple[QueuedSink, Any] | Callable[[], object]]) -> None:
        runs: dict[int, tuple[QueuedSink, list[Any]]] = {}
        markers = []
        for item in batch:
            if not isinstance(item, tuple):
                markers.append(item)
                continue
            sink, event = item
            runs.setdefault(id(sink), (sink, []))[1].append(event)
        for sink, events in runs.values():
            sink.deliver_now(events)
        for marker in markers:
            with contextlib.suppress(RuntimeError):  # the waiting loop is gone
                marker()


_writer: _Writer | None = None
_writer_lock = threading.Lock()


def _get_writer() -> _Writer:
    global _writer
    with _writer_lock:
        if _writer is None or not _writer.thread.is_alive():
            _writer = _Writer()
        return _writer


class QueuedSink:
    """Wraps a run's sink: events are queued here and delivered by the writer thread."""

    def __init__(self, inner: EventSink, *, flush_timeout: float = 10.0) -> None:
        self.inner = inner
        self.flush_timeout = flush_timeout
        self._warned = False
        self._writer = _get_writer()

    def node_event(self, event: NodeEvent) -> None:
        self._writer.queue.put((self, event))

    def run_event(self, event: RunEvent) -> None:
        self._writer.queue.put((self, event))

    def deliver_now(self, events: list[Any]) -> None:
        """Called on the writer thread."""
        from uzo_engine.events import NodeEvent

        batch = getattr(self.inner, "deliver", None)
        try:
            if callable(batch):
                batch(events)
                return
            for event in events:
                if isinstance(event, NodeEvent):
                    self.inner.node_event(event)
                else:
                    self.inner.run_event(event)
        except Exception:
            if not self._warned:
                self._warned = True
                log.warning("an event sink failed; its events are lost", exc_info=True)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event queued so far is delivered; False if not in time."""
        marker = threading.Event()
        self._writer.queue.put(marker.set)
        return marker.wait(self.flush_timeout if timeout is None else timeout)

    async def aflush(self, timeout: float | None = None) -> bool:
        """:meth:`flush` for an event loop (the loop is not blocked while it waits)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def settle() -> None:
            if not done.done():
                done.set_result(True)

        def mark() -> None:
            loop.call_soon_threadsafe(settle)

        self._writer.queue.put(mark)
        try:
            await asyncio.wait_for(done, self.flush_timeout if timeout is None else timeout)
        except TimeoutError:
            return False
        return True
