"""An asyncio event loop running in a daemon thread of its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Coroutine
    from typing import Any

T = TypeVar("T")


class LoopThread:
    """A loop that outlives each call: synchronous callers reuse it (and its executor
    threads) instead of paying a new loop per call (``asyncio.run``: ~5 ms)."""

    def __init__(self, name: str, nice: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self._nice = nice
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        if self._nice:  # Linux: per thread; threads started from here inherit it
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and wait for its result (not from the loop's thread)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run called from its own loop: await instead")
        return self.submit(coro).result()

    def stop(self, timeout: float = 5.0) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=timeout)
