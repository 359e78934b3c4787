"""Calls that wait on a tenant's endpoint (connector test, discover) in their own pool.

A connector test talks to a server the tenant chose, which may never answer.
Run in FastAPI's shared thread pool, 40 of them starved health checks and
login. Here they get their own threads, at most ``max_total`` at once and
``per_tenant`` per subscription (a busy server answers 429 with Retry-After
at once rather than queueing), and each caller waits at most ``timeout``
seconds. A call that times out keeps its slot until its thread really ends
(drivers have their own connect and read timeouts), so a hanging endpoint
can only ever use up its own tenant's slots.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from uzo_api.errors import TooManyRequests

if TYPE_CHECKING:
    import uuid
    from collections.abc import Callable

T = TypeVar("T")


class RemoteCallTimeout(Exception):
    """The call did not finish within the limit (it may still be running)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer within {seconds:g} s")
        self.seconds = seconds


class RemoteCalls:
    def __init__(self, *, max_total: int, per_tenant: int, timeout: float) -> None:
        self.max_total = max_total
        self.per_tenant = per_tenant
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=max_total, thread_name_prefix="uzo-remote")
        self._lock = threading.Lock()
        self._running: Counter[uuid.UUID] = Counter()
        self._total = 0

    def running(self, tenant: uuid.UUID | None = None) -> int:
        with self._lock:
            return self._total if tenant is None else self._running[tenant]

    def _acquire(self, tenant: uuid.UUID) -> None:
        with self._lock:
            if self._running[tenant] >= self.per_tenant:
                raise TooManyRequests(
                    f"{self.per_tenant} connector checks of your subscription are still "
                    "running; retry when one has finished",
                    headers={"Retry-After": str(max(1, int(self.timeout // 4)))},
                )
            if self._total >= self.max_total:
                raise TooManyRequests(
                    "the server is running as many connector checks as it allows; retry shortly",
                    headers={"Retry-After": "5"},
                )
            self._running[tenant] += 1
            self._total += 1

    def _release(self, tenant: uuid.UUID) -> None:
        with self._lock:
            self._running[tenant] -= 1
            if self._running[tenant] <= 0:
                del self._running[tenant]
            self._total -= 1

    async def run(self, tenant: uuid.UUID, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the pool; RemoteCallTimeout after ``timeout`` seconds."""
        self._acquire(tenant)
        try:
            # the request's context (request id in every log line) goes with the call
            future = self._executor.submit(contextvars.copy_context().run, fn, *args)
        except BaseException:
            self._release(tenant)
            raise
        future.add_done_callback(lambda _done: self._release(tenant))
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), self.timeout)
        except TimeoutError:
            raise RemoteCallTimeout(self.timeout) from None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
