"""A session-wide local FastAPI server on 127.0.0.1 (uvicorn in a background thread)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
import uvicorn

from tests.integration.connectors_http.server import ServerState, create_app
from uzo_connectors.base import ConnectorContext
from uzo_connectors.ssrf import EndpointPolicy

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass
class LocalServer:
    url: str
    state: ServerState


@pytest.fixture(scope="session")
def http_server() -> Iterator[LocalServer]:
    state = ServerState()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(state), log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="test-http-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test HTTP server did not start")
        time.sleep(0.01)
    try:
        yield LocalServer(url=f"http://127.0.0.1:{port}", state=state)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def state(http_server: LocalServer) -> ServerState:
    s = http_server.state
    with s.lock:
        s.calls.clear()
        s.flaky_failures.clear()
        s.chat_failures = 0
        s.chat_failure_status = 429
        s.sunk.clear()
        s.request_times.clear()
    return s


@pytest.fixture
def loopback() -> ConnectorContext:
    """Allows the test server (loopback) and nothing else internal."""
    return ConnectorContext(endpoint_policy=EndpointPolicy(allow_loopback=True))
