"""Work done after the response, off the request path (e.g. the password-reset mail).

Whether an email address has an account must not show in how long
``/api/auth/forgot-password`` takes: the request only queues the work and
answers, the lookup and the mail happen here. The queue is bounded; when it
is full, new work is dropped with a warning (the caller answers the same
either way, and the per-address throttle keeps the queue short).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from collections.abc import Callable

log = structlog.get_logger("uzo.background")


class BackgroundWork:
    def __init__(self, workers: int = 2, max_pending: int = 1000) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="uzo-bg")
        self._max_pending = max_pending
        self._pending = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def submit(self, name: str, fn: Callable[..., Any], *args: Any) -> bool:
        """Queue ``fn(*args)``; False (and a warning) if the queue is full."""
        with self._lock:
            if self._pending >= self._max_pending:
                log.warning("background queue full; work dropped", work=name)
                return False
            self._pending += 1
        self._executor.submit(self._run, name, fn, args)
        return True

    def _run(self, name: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except Exception as exc:  # logged, never raised into a request
            log.error("background work failed", work=name, error=type(exc).__name__)
        finally:
            with self._lock:
                self._pending -= 1
                self._idle.notify_all()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued or running (tests, shutdown)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        self.drain(timeout)
        self._executor.shutdown(wait=False, cancel_futures=True)
