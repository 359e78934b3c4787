"""Admission to the API: at most as many requests in flight as the database pool serves.

Why: a request's transaction is a FastAPI dependency that holds its pooled connection
between thread-pool hops (the dependency, the handler and the commit each run on a
worker thread). Without a bound, a burst lets more requests start than the pool has
connections: the thread pool fills with requests blocked waiting for a connection,
while the requests holding the connections wait for a free thread to commit and give
them back. The server then stalls (no CPU, every request timing out) until the pool
timeout breaks the knot, which is what the API benchmark showed at 100 requests/s.

So every ``/api`` request first takes a slot here, on the event loop, before any of its
work reaches a thread; there are as many slots as the pool has connections, so no
thread ever waits for a connection that a thread-starved request holds. Waiting
requests queue in arrival order (latency grows under overload; nothing stalls); one
that has waited ``wait_seconds`` without a slot is answered 503 problem+json with
``Retry-After`` instead. Health checks (outside ``/api``) are never queued here.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX = "/api/"
PROBLEM_SLUG = "unavailable"
#: worker threads kept free of admitted requests: anyio's default pool has 40, so a
#: request holding a connection always finds a thread to commit on, even when every
#: admitted request is blocked elsewhere (one that needs a second connection, say)
THREADS = 40
THREADS_SPARE = 8


def admission_slots(pool_capacity: int) -> int:
    """As many slots as the pool has connections, below the worker threads' count."""
    return max(1, min(pool_capacity, THREADS - THREADS_SPARE))


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, slots: int, wait_seconds: float) -> None:
        if slots < 1:
            raise ValueError("admission needs at least one slot")
        self.app = app
        self.slots = slots
        self.wait_seconds = wait_seconds
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def semaphore(self) -> asyncio.Semaphore:
        # one per event loop, made inside it (a test may serve one app from several loops)
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._semaphore, self._loop = asyncio.Semaphore(self.slots), loop
        return self._semaphore

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        semaphore = self.semaphore
        try:
            await asyncio.wait_for(semaphore.acquire(), timeout=self.wait_seconds)
        except TimeoutError:
            await _refuse(scope, send, self.wait_seconds)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            semaphore.release()


async def _refuse(scope: Scope, send: Send, waited: float) -> None:
    request_id = scope.get("state", {}).get("request_id")
    body = {
        "type": f"/problems/{PROBLEM_SLUG}",
        "title": "Service unavailable",
        "status": 503,
        "detail": f"the server is at capacity: no request slot came free within {waited:g} s",
        "instance": scope.get("path", ""),
    }
    if request_id:
        body["request_id"] = request_id
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(payload)).encode()),
                (b"retry-after", str(max(1, math.ceil(waited))).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
