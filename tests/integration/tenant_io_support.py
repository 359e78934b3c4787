"""What the tenant I/O tests share: a counting server on loopback and a tenant's files.

:class:`Loopback` is an HTTP server on 127.0.0.1 that counts every connection it
accepts (a refusal is "the count stays 0", whatever protocol the client meant to
speak). It serves a Parquet file (``/data.parquet``), JSON rows (``/items``), accepts
rows (``POST /sink``) and answers OpenAI-style chat completions
(``POST /v1/chat/completions``), so that the positive controls can succeed.

:class:`Tenant` lays out a subscription's root next to a directory it must never see,
with the links a hostile tenant would hope for: a file link and a directory link that
lead outside, and a dangling link whose target outside does not exist yet.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import socket
    from collections.abc import Iterator
    from pathlib import Path

SECRET = 424242  # the value only the file outside the root holds
ITEMS = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]


def parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


class _Handler(BaseHTTPRequestHandler):
    server: _CountingServer

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/data.parquet"):
            table = pa.table({"secret": [SECRET]})
            self._answer(200, parquet_bytes(table), "application/octet-stream")
        elif self.path.startswith("/items"):
            self._answer(200, json.dumps(ITEMS).encode(), "application/json")
        else:
            self._answer(404, b"{}", "application/json")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body: Any = json.loads(self.rfile.read(length) or b"null")
        if self.path.endswith("/chat/completions"):
            answer = str(body["messages"][-1]["content"]).upper()
            reply = {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": body.get("model", "stub"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
            self._answer(200, json.dumps(reply).encode(), "application/json")
        elif self.path.startswith("/sink"):
            rows = body if isinstance(body, list) else [body]
            self._answer(200, json.dumps({"accepted": len(rows)}).encode(), "application/json")
        else:
            self._answer(404, b"{}", "application/json")

    def log_message(self, format: str, *args: Any) -> None:
        return None  # quiet


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.connections = 0

    def get_request(self) -> tuple[socket.socket, Any]:
        accepted = super().get_request()
        with self.lock:
            self.connections += 1
        return accepted


@dataclass
class Loopback:
    server: _CountingServer

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        with self.server.lock:
            return self.server.connections

    def reset(self) -> None:
        with self.server.lock:
            self.server.connections = 0


def serve_loopback() -> Iterator[Loopback]:
    """The counting server, for the duration of a fixture."""
    server = _CountingServer()
    thread = threading.Thread(target=server.serve_forever, name="tenant-io-loopback", daemon=True)
    thread.start()
    try:
        yield Loopback(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass(frozen=True)
class Tenant:
    root: Path  # the subscription's own directory
    outside: Path  # a directory it must never read or write

    @property
    def secret(self) -> Path:
        return self.outside / "secret.parquet"

    @property
    def planted(self) -> Path:
        """Where the dangling link in the root points (outside; it does not exist)."""
        return self.outside / "planted.parquet"


OWN = pa.table({"v": [1, 2]})


def lay_out(base: Path) -> Tenant:
    """``root/own.parquet`` (OWN), ``outside/secret.parquet`` (SECRET), and in the root
    ``link.parquet -> outside/secret.parquet``, ``linkdir -> outside`` and
    ``dangling.parquet -> outside/planted.parquet``."""
    tenant = Tenant(base / "tenant", base / "outside")
    tenant.root.mkdir()
    tenant.outside.mkdir()
    pq.write_table(OWN, tenant.root / "own.parquet")
    pq.write_table(pa.table({"secret": [SECRET]}), tenant.secret)
    (tenant.root / "link.parquet").symlink_to(tenant.secret)
    (tenant.root / "linkdir").symlink_to(tenant.outside, target_is_directory=True)
    (tenant.root / "dangling.parquet").symlink_to(tenant.planted)
    return tenant


def outside_files(tenant: Tenant) -> set[str]:
    """What the directory outside holds (it must not change)."""
    return {p.name for p in tenant.outside.iterdir()}
