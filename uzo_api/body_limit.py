"""A request body limit, enforced before anything parses the body.

A declared ``Content-Length`` above the limit is answered 413 at once, without
reading a byte; a body without one (chunked) is counted as it arrives and
refused as soon as it passes the limit. Either way the answer is
problem+json. The default limit is ``UZO_SERVER_MAX_BODY_BYTES`` (1 MiB); a
route that needs more (an import, say) gets its own entry in ``overrides``,
keyed by path prefix.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_SLUG = "payload-too-large"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit (handled as a 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=_detail(limit))


def _detail(limit: int) -> str:
    return f"the request body is larger than the {limit:,}-byte limit of this endpoint"


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, max_bytes: int, overrides: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # longest prefix first, so /api/x/import wins over /api/x
        self.overrides = sorted((overrides or {}).items(), key=lambda kv: -len(kv[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.overrides:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, limit)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server (h11/httptools) refuses a malformed one itself
    return None


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    request_id = scope.get("state", {}).get("request_id")
    body = {
        "type": f"/problems/{PROBLEM_SLUG}",
        "title": "Payload too large",
        "status": 413,
        "detail": _detail(limit),
        "instance": scope.get("path", ""),
    }
    if request_id:
        body["request_id"] = request_id
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
