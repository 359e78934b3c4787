"""Session-scoped database servers for the SQL-family and MongoDB connector tests.

Each server is our own throwaway instance in a temporary directory, started
once per session and stopped at the end: an embedded PostgreSQL (pgserver, a
separate cluster from the metadata database's), MariaDB (Debian's
mariadb-server, see .ci/deps.d/mariadb.sh) and nx-27017 (MongoDB wire protocol).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            pytest.fail(f"server exited during start-up:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"server did not listen on {port}:\n{log.read_text(errors='replace')[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass(frozen=True)
class PgServer:
    socket_dir: str
    uri: str
    port: int = 5432


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL the connector tests may do anything to, reached by its unix socket.

    The embedded pgserver where it is installed; where it has no wheel (Python 3.13),
    the throwaway Debian cluster that .ci/debian-postgres.sh started (its superuser on
    the socket, trust auth), named by UZO_TEST_POSTGRES_SOCKET_DIR and _PORT.
    """
    from sqlalchemy.engine import make_url

    try:
        import pgserver
    except ImportError:
        socket_dir = os.environ.get("UZO_TEST_POSTGRES_SOCKET_DIR")
        port = int(os.environ.get("UZO_TEST_POSTGRES_PORT", "5432"))
        if not socket_dir:
            pytest.fail(
                "no PostgreSQL for the connector tests: pgserver is not installed and "
                "UZO_TEST_POSTGRES_SOCKET_DIR is unset (run them through .ci/debian-postgres.sh)"
            )
        uri = f"postgresql://postgres@/postgres?host={socket_dir}&port={port}"
        yield PgServer(socket_dir=socket_dir, uri=uri, port=port)
        return

    # not under pytest's 0700 tmp root: pgserver runs as the `pgserver` user under root
    data = Path(tempfile.mkdtemp(prefix="uzo-conn-pg-"))
    data.chmod(0o755)
    server = pgserver.get_server(data, cleanup_mode="stop")
    try:
        uri: str = server.get_uri()
        host = make_url(uri).query["host"]
        assert isinstance(host, str)
        yield PgServer(socket_dir=host, uri=uri)
    finally:
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)


@dataclass(frozen=True)
class MariaDB:
    port: int
    user: str = "uzo"
    password: str = "maria-uzo-pw"


def _mariadb_binary(name: str) -> str | None:
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDB]:
    mariadbd, install_db = _mariadb_binary("mariadbd"), _mariadb_binary("mariadb-install-db")
    if mariadbd is None or install_db is None:
        pytest.fail("MariaDB is not installed: run `bash .ci/deps.d/mariadb.sh` (make test-deps)")
    work = Path(tempfile.mkdtemp(prefix="uzo-maria-"))
    data = work / "d"
    log = work / "mariadbd.log"
    subprocess.run(
        [
            install_db,
            "--no-defaults",
            f"--datadir={data}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                mariadbd,
                "--no-defaults",
                f"--datadir={data}",
                f"--socket={data}/s.sock",
                "--bind-address=127.0.0.1",
                f"--port={port}",
                "--user=root",
                "--skip-log-bin",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc, log)
        server = MariaDB(port=port)
        import pymysql

        for _ in range(50):
            try:
                conn = pymysql.connect(unix_socket=f"{data}/s.sock", user="root")
                break
            except pymysql.err.OperationalError:
                time.sleep(0.1)
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE uzo")
            cur.execute("CREATE USER 'uzo'@'127.0.0.1' IDENTIFIED BY %s", (server.password,))
            cur.execute("GRANT ALL ON uzo.* TO 'uzo'@'127.0.0.1'")
        conn.close()
        yield server
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class MongoServer:
    port: int


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[MongoServer]:
    work = Path(tempfile.mkdtemp(prefix="uzo-nx-"))
    log = work / "nx.log"
    port = free_port()
    exe = Path(sys.executable).with_name("nx-27017")
    with (work / "stdout.log").open("wb") as out:
        proc = subprocess.Popen(
            [
                str(exe),
                "--db",
                "memory",
                "--host",
                "127.0.0.1",
                "-p",
                str(port),
                "--log-file",
                str(log),
                "--pid-file",
                str(work / "nx.pid"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc, work / "stdout.log")
        yield MongoServer(port=port)
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)
