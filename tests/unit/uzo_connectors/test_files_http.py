"""http(s) roots of the ``file`` connector: every hop is checked, and DNS is pinned.

A local HTTP server on 127.0.0.1 serves files under the name ``files.test``, which
only the test policy's resolver knows (the system resolver cannot resolve it): a
successful read therefore proves the connection went to the checked address. The
server also redirects to IP literals and names the policy refuses; a second server
counts requests, to prove that a refused redirect never connects to its target.
"""

from __future__ import annotations

import http.server
import pickle
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from uzo_connectors.base import ConnectorContext, ReadRequest
from uzo_connectors.errors import BlockedEndpointError
from uzo_connectors.files.connector import FileConnector
from uzo_connectors.registry import create_connector
from uzo_connectors.ssrf import EndpointPolicy, resolve
from uzo_connectors.testing import read_all, read_plan

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CSV = "id,name\n1,a\n2,b\n3,c\n"


@dataclass
class Counting:
    """A server that answers 200 to everything and records each request."""

    server: http.server.ThreadingHTTPServer
    hits: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])


def _serve(server: http.server.ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return thread


@pytest.fixture
def target() -> Iterator[Counting]:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = CSV.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = _serve(server)
    try:
        yield Counting(server, hits)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Files:
    port: int
    redirects: dict[str, str]  # path (no leading '/') -> Location


@pytest.fixture
def files(tmp_path: Path, target: Counting) -> Iterator[Files]:
    """Serves tmp_path (directory listings included) and redirects ``/go-*`` paths."""
    (tmp_path / "data.csv").write_text(CSV)
    redirects: dict[str, str] = {}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def _redirect(self) -> bool:
            location = redirects.get(self.path.lstrip("/"))
            if location is None:
                return False
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True

        def do_GET(self) -> None:
            if not self._redirect():
                super().do_GET()

        def do_HEAD(self) -> None:
            if not self._redirect():
                super().do_HEAD()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = int(server.server_address[1])
    redirects.update(
        {
            "go-ip.csv": f"http://127.0.0.1:{target.port}/x.csv",
            "go-decimal.csv": f"http://2130706433:{target.port}/x.csv",
            "go-v4-mapped.csv": f"http://[::ffff:127.0.0.1]:{target.port}/x.csv",
            "go-name.csv": f"http://localhost:{target.port}/x.csv",
            "go-metadata.csv": "http://169.254.169.254/latest/meta-data/iam/",
            "go-twice.csv": f"http://files.test:{port}/go-ip.csv",
            "go-ok.csv": f"http://files.test:{port}/data.csv",
        }
    )
    thread = _serve(server)
    try:
        yield Files(port, redirects)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def files_test_policy() -> EndpointPolicy:
    """``files.test`` is allowed and resolves to 127.0.0.1; everything else as usual."""
    return EndpointPolicy(
        allowed=("files.test",),
        resolver=lambda host: ["127.0.0.1"] if host == "files.test" else resolve(host),
    )


def http_root(files: Files) -> FileConnector:
    connector = create_connector(
        "file",
        {"root": f"http://files.test:{files.port}/", "timeout": 5},
        ConnectorContext(files_test_policy()),
    )
    assert isinstance(connector, FileConnector)
    return connector


def test_the_system_resolver_does_not_know_files_test() -> None:
    with pytest.raises(BlockedEndpointError, match="cannot resolve"):
        resolve("files.test")


def test_reads_go_to_the_checked_address(files: Files) -> None:
    connector = http_root(files)
    connector.test_connection()
    assert [d.name for d in connector.discover()] == ["data.csv"]
    table = read_all(connector, "data.csv")
    assert table.column("id").to_pylist() == [1, 2, 3]
    # a redirect to a name the policy allows (and pins) is followed
    assert read_all(connector, "go-ok.csv").num_rows == 3


@pytest.mark.parametrize(
    ("dataset", "why"),
    [
        ("go-ip.csv", "loopback"),
        ("go-decimal.csv", "loopback"),
        ("go-v4-mapped.csv", "loopback"),
        ("go-name.csv", "loopback"),
        ("go-metadata.csv", "link-local"),
        ("go-twice.csv", "loopback"),
    ],
)
def test_redirects_to_internal_targets_are_refused_before_connecting(
    files: Files, target: Counting, dataset: str, why: str
) -> None:
    connector = http_root(files)
    with pytest.raises(BlockedEndpointError, match=why):
        connector.plan_read(ReadRequest(dataset))
    assert target.hits == []


def test_a_read_task_refuses_a_redirect_too(files: Files, target: Counting) -> None:
    """The check is in the session, so it also holds when a file turns into a redirect
    between planning and reading (the task may run later, in a Ray worker)."""
    plan = http_root(files).plan_read(ReadRequest("data.csv"))
    files.redirects["data.csv"] = f"http://127.0.0.1:{target.port}/x.csv"
    with pytest.raises(BlockedEndpointError, match="loopback"):
        read_plan(plan)
    assert target.hits == []


def test_environment_proxies_are_not_used(
    files: Files, target: Counting, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = f"http://127.0.0.1:{target.port}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert read_all(http_root(files), "data.csv").num_rows == 3
    assert target.hits == []


def test_internal_roots_are_refused(target: Counting) -> None:
    for root in (f"http://127.0.0.1:{target.port}/", f"http://localhost:{target.port}/"):
        connector = create_connector("file", {"root": root}, ConnectorContext(EndpointPolicy()))
        for call in (connector.test_connection, connector.discover):
            with pytest.raises(BlockedEndpointError, match="loopback"):
                call()
    assert target.hits == []


def test_tasks_of_an_http_root_survive_pickling(target: Counting) -> None:
    """Read tasks carry the filesystem (and its guarded session factory) to Ray workers."""
    connector = create_connector(
        "file",
        {"root": f"http://127.0.0.1:{target.port}/"},
        ConnectorContext(EndpointPolicy(allow_loopback=True)),
    )
    plan = connector.plan_read(ReadRequest("x.csv"))
    task = pickle.loads(pickle.dumps(plan.tasks[0].read))
    assert sum(b.num_rows for b in task()) == 3
