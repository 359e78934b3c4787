"""Structured (JSON) logging and the request id carried by every response and log line."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import structlog

from uzo_api.client_address import client_address
from uzo_api.server_log_writer import request_record

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from uzo_api.server_log_writer import LogBatchWriter

REQUEST_ID_HEADER = "x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SECRET_KEYS = ("password", "token", "secret", "authorization", "api_key", "credential")


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Never let a secret reach a log line, whatever a caller passes."""
    for key in list(event):
        if any(part in key.lower() for part in _SECRET_KEYS):
            event[key] = "[redacted]"
    return event


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    """Configure structlog and the stdlib root logger once per process."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for chatty in ("pgserver", "alembic.runtime.migration"):  # an INFO line per connection
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # request logging is ours (with the request id); uvicorn's access log would repeat it
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


class RequestIdMiddleware:
    """Gives every request an id (the client's ``X-Request-ID`` if sane) and logs it.

    With a ``server_logs`` writer, each request also leaves one record for the
    ``server_logs`` table (method, route template, status, duration, request id, and
    the caller's tenant and user once authenticated, see ``deps.remember_principal``);
    the writer only queues it (uzo_api.server_log_writer), never blocking the request.
    """

    def __init__(self, app: ASGIApp, server_logs: LogBatchWriter | None = None) -> None:
        self.app = app
        self.log = structlog.get_logger("uzo.http")
        self.server_logs = server_logs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = (
            dict(scope.get("headers", [])).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        )
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # the server-error handler already names it (it runs outside this layer)
                name = REQUEST_ID_HEADER.lower().encode()
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != name]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                duration_ms = round((time.perf_counter() - started) * 1000, 2)
                self.log.info(
                    "request",
                    method=scope.get("method"),
                    path=scope.get("path"),
                    status=status,
                    duration_ms=duration_ms,
                )
                if self.server_logs is not None:
                    self.server_logs.put(_server_log(scope, request_id, status, duration_ms))


def _server_log(scope: Scope, request_id: str, status: int, duration_ms: float) -> tuple[Any, ...]:
    """The request's server_logs record: the route's template (``/api/users/{user_id}``,
    never ids or query strings), else the bare path of a request no route matched."""
    route = scope.get("route")
    endpoint = getattr(route, "path", None) or scope.get("path", "")
    state = scope.get("state", {})
    principal = state.get("principal")
    app = scope.get("app")
    peer = scope.get("client")
    ip = None
    if peer:
        forwarded = None
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                forwarded = value.decode("latin-1")
                break
        proxies = getattr(getattr(app, "state", None), "trusted_proxies", ())
        ip = client_address(peer[0], forwarded, proxies)
    return request_record(
        request_id=request_id,
        method=str(scope.get("method", "")),
        endpoint=str(endpoint),
        status=status,
        duration_ms=duration_ms,
        subscription_id=getattr(principal, "subscription_id", None),
        user_id=getattr(principal, "user_id", None),
        ip=ip,
    )
