"""Fair sharing of workers between runs: idle slots are dealt to runs in turn.

A *slot* is one call a worker can take (a CPU-lane actor has one, an I/O-lane actor
several). Each run queues its ready steps; whenever a slot frees up it goes to the
next run in round-robin order that has a step waiting, so a run with many ready
steps cannot starve a run with one, and a long step of one run never sits in front
of another run's steps (nothing is queued on a busy worker: a step is handed a
worker only when that worker is free).

A lane may *burst* a run's steps (``burst``): a freed worker is then handed to up
to ``burst(run)`` of that run's waiting steps at once, which its worker runs one after
another from its own queue. For steps that take less than a round trip between the
driver and a worker (tiny steps of a wide fan-out), this keeps the worker busy instead
of idle between calls; the worker is free again once every holder gave it back. The
backend bursts only runs whose steps have been fast, so another run waits at most a
few such steps longer.

Everything here runs on the runtime's one event loop (no locks).
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

W = TypeVar("W")


class FairSlots(Generic[W]):
    """Idle slots of one lane, and the runs waiting for one."""

    def __init__(self, burst: Callable[[str], int] | None = None) -> None:
        self._idle: collections.deque[W] = collections.deque()
        # run key -> its waiting steps; dict order is the round-robin order
        self._waiting: dict[str, collections.deque[asyncio.Future[W]]] = {}
        self._burst = burst
        self._holders: dict[int, int] = {}  # id(worker) -> steps holding it (bursts only)

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def add(self, worker: W, slots: int = 1) -> None:
        """Offer ``slots`` calls of ``worker`` (a new worker, or one freed)."""
        for _ in range(slots):
            self.release(worker)

    def discard(self, worker: W) -> int:
        """Take every idle slot of ``worker`` out (it is being replaced); returns how many."""
        self._holders.pop(id(worker), None)
        kept = collections.deque(w for w in self._idle if w is not worker)
        removed = len(self._idle) - len(kept)
        self._idle = kept
        return removed

    async def acquire(self, run_key: str) -> W:
        if self._idle and not self._waiting:
            worker = self._idle.popleft()
            if self._burst is not None:
                self._holders[id(worker)] = 1
            return worker
        future: asyncio.Future[W] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(run_key, collections.deque()).append(future)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(future.result())  # granted as we were cancelled: pass it on
            else:
                self._forget(run_key, future)
            raise

    def release(self, worker: W) -> None:
        """Give a free slot to the next run in turn (or keep it idle)."""
        if self._burst is not None:
            left = self._holders.pop(id(worker), 1) - 1
            if left > 0:  # other steps of a burst still hold it
                self._holders[id(worker)] = left
                return
        while self._waiting:
            run_key = next(iter(self._waiting))
            queue = self._waiting.pop(run_key)
            want = 1 if self._burst is None else max(1, self._burst(run_key))
            granted = 0
            while queue and granted < want:
                future = queue.popleft()
                if not future.done():
                    future.set_result(worker)
                    granted += 1
            if queue:
                self._waiting[run_key] = queue  # to the back of the round
            if granted:
                if self._burst is not None:
                    self._holders[id(worker)] = granted
                return
        self._idle.append(worker)

    def _forget(self, run_key: str, future: asyncio.Future[W]) -> None:
        queue = self._waiting.get(run_key)
        if queue is None:
            return
        try:
            queue.remove(future)
        except ValueError:
            return
        if not queue:
            del self._waiting[run_key]
