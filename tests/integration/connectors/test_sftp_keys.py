"""The sftp connector authenticates only with what its config gives: never with the UZO
server's own SSH keys (``~/.ssh/id_*``) or its SSH agent.

An asyncssh server on 127.0.0.1 would accept the key planted in a fake ``HOME`` and
records every public key a client offers; a fake agent socket records every
connection. Neither may see anything, with a right or a wrong password.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.connectors.conftest import PASSWORD, USER
from uzo_connectors.base import ConnectorContext
from uzo_connectors.errors import ConnectionTestError
from uzo_connectors.registry import create_connector
from uzo_connectors.ssrf import EndpointPolicy

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@dataclass
class KeyServer:
    port: int
    offered: list[str] = field(default_factory=list)  # fingerprints of offered keys
    agent_connections: list[int] = field(default_factory=list)


@pytest.fixture
def planted_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """HOME/.ssh/id_rsa (authorised on the server below) and an SSH agent socket."""
    import paramiko

    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    key = paramiko.RSAKey.generate(2048)
    key.write_private_key_file(str(home / ".ssh" / "id_rsa"))
    (home / ".ssh" / "id_rsa.pub").write_text(f"ssh-rsa {key.get_base64()} uzo-server\n")
    monkeypatch.setenv("HOME", str(home))

    agent_path = tmp_path / "agent.sock"
    agent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    agent.bind(str(agent_path))
    agent.listen(8)
    agent.settimeout(0.1)
    connections: list[int] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = agent.accept()
            except (TimeoutError, OSError):
                continue
            connections.append(1)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent_path))
    try:
        yield key, connections
    finally:
        stop.set()
        thread.join(5)
        agent.close()


@pytest.fixture
def key_server(planted_home: Any) -> Iterator[KeyServer]:
    import asyncssh

    key, agent_connections = planted_home
    authorised = asyncssh.import_public_key(f"ssh-rsa {key.get_base64()}")
    state = KeyServer(port=0, agent_connections=agent_connections)

    class Server(asyncssh.SSHServer):  # type: ignore[misc]
        def connection_made(self, conn: Any) -> None:
            connections.append(conn)

        def begin_auth(self, username: str) -> bool:
            return True

        def public_key_auth_supported(self) -> bool:
            return True

        def validate_public_key(self, username: str, offered: Any) -> bool:
            state.offered.append(offered.get_fingerprint())
            return bool(offered == authorised)

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            return username == USER and password == PASSWORD

    connections: list[Any] = []
    loop = asyncio.new_event_loop()
    holder: dict[str, Any] = {}

    async def start() -> None:
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        holder["server"] = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            server_factory=Server,
            sftp_factory=True,
        )

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    server = holder["server"]
    state.port = int(server.sockets[0].getsockname()[1])
    try:
        yield state
    finally:

        async def close() -> None:
            server.close()
            # since Python 3.12 wait_closed() also waits for every open connection, and a
            # refused client's may linger: end them all first
            for conn in connections:
                conn.abort()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
            await asyncio.wait_for(server.wait_closed(), timeout=10)

        asyncio.run_coroutine_threadsafe(close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def sftp(server: KeyServer, password: str) -> Any:
    return create_connector(
        "sftp",
        {"host": "127.0.0.1", "port": server.port, "username": USER, "password": password},
        ConnectorContext(EndpointPolicy(allow_loopback=True)),
    )


def test_the_fixture_would_catch_an_offered_key(key_server: KeyServer) -> None:
    """Guard for the test itself: a client that looks for keys does offer the planted one."""
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    with contextlib.closing(client):
        client.connect(
            "127.0.0.1", key_server.port, username=USER, password="wrong", timeout=10,
            allow_agent=False, look_for_keys=True,
        )  # fmt: skip
    assert key_server.offered
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    with contextlib.closing(client), contextlib.suppress(paramiko.SSHException, OSError):
        client.connect(
            "127.0.0.1", key_server.port, username=USER, password="wrong", timeout=10,
            allow_agent=True, look_for_keys=False,
        )  # fmt: skip
    assert key_server.agent_connections


@pytest.mark.parametrize("password", [PASSWORD, "wrong-password"])
def test_server_keys_and_agent_are_never_offered(key_server: KeyServer, password: str) -> None:
    connector = sftp(key_server, password)
    try:
        if password == PASSWORD:
            connector.test_connection()
        else:
            with pytest.raises(ConnectionTestError):
                connector.test_connection()  # the planted key would have let it in
    finally:
        connector.close()
    assert key_server.offered == []
    assert key_server.agent_connections == []
