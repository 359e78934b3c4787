"""A tiny recording HTTP(S) server on a loopback address, for attacker-side fakes.

Each :class:`Recorder` listens on ``127.0.0.1`` or ``::1`` (a port of its own, or a
given one), remembers every request it receives (method, target, headers, body)
and answers through a handler (default: ``200 [{"id": 1}]``). Used as the rogue
servers of the hardening tests: a redirect target that must never see a
credential, a "victim" that a rebinding DNS answer points at, a proxy from the
environment that must never be used. Start it with ``with Recorder() as server:``;
leaving the block stops it and closes its socket.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable
    from typing import Self


@dataclass(frozen=True)
class Recorded:
    method: str
    target: str  # the request target as sent: a path, or an absolute URL (to a proxy)
    headers: dict[str, str]  # lower-case names
    body: bytes


Reply = tuple[int, dict[str, str], bytes]


def json_reply(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    content = json.dumps(value).encode()
    return status, {"Content-Type": "application/json", **(headers or {})}, content


def _default(_: Recorded) -> Reply:
    return json_reply([{"id": 1}])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a refused TLS handshake is what some tests expect: no traceback noise


@dataclass
class Recorder:
    host: str = "127.0.0.1"
    port: int = 0
    handler: Callable[[Recorded], Reply] = _default
    tls: ssl.SSLContext | None = None
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def __enter__(self) -> Self:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Recorded(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with recorder._lock:
                    recorder.requests.append(seen)
                status, headers, content = recorder.handler(seen)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        server_class = _Server
        if ":" in self.host:

            class _Server6(_Server):
                address_family = socket.AF_INET6

            server_class = _Server6
        server = server_class((self.host, self.port), Handler)
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
