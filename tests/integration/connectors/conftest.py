"""Real servers on 127.0.0.1 for the object-store connector tests, one of each per session.

- S3: moto's ThreadedMotoServer with IAM authentication switched on after an
  IAM user and its access key are created (so wrong keys are refused).
- Azure Blob: azurite from ``.ci/node_modules`` (install: ``.ci/deps.d/azurite.sh``).
- GCS: gcp-storage-emulator (in memory). It does not check credentials.
- SFTP: an in-process asyncssh server, password auth, chrooted to a temp dir.
- FTP: pyftpdlib's ThreadedFTPServer.
- ``credential_trap``: a fake credential endpoint (instance metadata, container
  credentials, token URLs) that records every request, for the ambient-credential tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[3]
AZURITE = ROOT / ".ci" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
USER = "uzo"
PASSWORD = "correct-horse-battery"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = str(Path(__file__).parent)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.integration)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# ----- S3 (moto) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    key_id: str
    secret: str


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    import boto3
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    common: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": "us-west-2",
        "aws_access_key_id": "bootstrap",
        "aws_secret_access_key": "bootstrap",
    }
    iam = boto3.client("iam", **common)
    iam.create_user(UserName="uzo")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName="uzo", PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="uzo")["AccessKey"]
    boto3.client("s3", **common).create_bucket(
        Bucket="uzo-test", CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
    )
    old_count = settings.INITIAL_NO_AUTH_ACTION_COUNT
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # from now on, requests must be signed correctly
    ActionAuthenticatorMixin.request_count = 0
    try:
        yield S3Server(endpoint, "uzo-test", key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = old_count
        server.stop()


# ----- Azure Blob (azurite) ----------------------------------------------------------------


@dataclass(frozen=True)
class AzureServer:
    endpoint: str
    account: str
    key: str
    container: str


@pytest.fixture(scope="session")
def azure_server() -> Iterator[AzureServer]:
    if not AZURITE.exists():
        pytest.fail(f"azurite is not installed: run .ci/deps.d/azurite.sh (looked for {AZURITE})")
    location = tempfile.mkdtemp(prefix="uzo-azurite-")
    port = free_port()
    proc = subprocess.Popen(
        [
            str(AZURITE),
            "--location", location,
            "--blobHost", "127.0.0.1",
            "--blobPort", str(port),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, proc)
        endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
        import adlfs

        fs = adlfs.AzureBlobFileSystem(
            connection_string=(
                f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint};"
            ),
            skip_instance_cache=True,
        )
        fs.mkdir("uzo-test")
        yield AzureServer(endpoint, AZURITE_ACCOUNT, AZURITE_KEY, "uzo-test")
    finally:
        stop(proc)
        shutil.rmtree(location, ignore_errors=True)


# ----- GCS (gcp-storage-emulator) ----------------------------------------------------------


@dataclass(frozen=True)
class GCSServer:
    endpoint: str
    bucket: str


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    binary = Path(sys.executable).parent / "gcp-storage-emulator"
    port = free_port()
    env = {**os.environ, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
    proc = subprocess.Popen(
        [str(binary), "start", "-H", "127.0.0.1", "--port", str(port), "--in-memory"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_for_port(port, proc)
        endpoint = f"http://127.0.0.1:{port}"
        from gcsfs.core import GCSFileSystem

        GCSFileSystem(endpoint_url=endpoint, token="anon", skip_instance_cache=True).mkdir(
            "uzo-test"
        )
        yield GCSServer(endpoint, "uzo-test")
    finally:
        stop(proc)


# ----- SFTP (asyncssh) ---------------------------------------------------------------------


@dataclass(frozen=True)
class SSHServer:
    port: int
    root: Path  # the chroot on the local disk


@pytest.fixture(scope="session")
def sftp_server() -> Iterator[SSHServer]:
    import asyncssh

    root = Path(tempfile.mkdtemp(prefix="uzo-sftp-"))

    class Server(asyncssh.SSHServer):  # type: ignore[misc]
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            return username == USER and password == PASSWORD

    class ChrootSFTP(asyncssh.SFTPServer):  # type: ignore[misc]
        def __init__(self, chan: Any) -> None:
            super().__init__(chan, chroot=str(root).encode())

    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}

    async def start() -> None:
        key = asyncssh.generate_private_key("ssh-ed25519")
        started["server"] = await asyncssh.listen(
            "127.0.0.1", 0, server_host_keys=[key], server_factory=Server, sftp_factory=ChrootSFTP
        )

    thread = threading.Thread(target=loop.run_forever, name="uzo-test-sftp", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    server = started["server"]
    port = int(server.sockets[0].getsockname()[1])
    try:
        yield SSHServer(port, root)
    finally:

        async def close() -> None:
            server.close()
            await server.wait_closed()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:  # sessions of clients that were never closed
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)

        asyncio.run_coroutine_threadsafe(close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        shutil.rmtree(root, ignore_errors=True)


# ----- FTP (pyftpdlib) ---------------------------------------------------------------------


@dataclass(frozen=True)
class FTPServer:
    port: int
    root: Path


@pytest.fixture(scope="session")
def ftp_server() -> Iterator[FTPServer]:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer

    root = Path(tempfile.mkdtemp(prefix="uzo-ftp-"))
    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, str(root), perm="elradfmwMT")

    class Handler(FTPHandler):  # type: ignore[misc]
        pass

    Handler.authorizer = authorizer
    Handler.log_prefix = ""
    import logging

    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    server = ThreadedFTPServer(("127.0.0.1", 0), Handler)
    port = int(server.socket.getsockname()[1])
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"handle_exit": False}, name="uzo-test-ftp", daemon=True
    )
    thread.start()
    try:
        yield FTPServer(port, root)
    finally:
        server.close_all()
        thread.join(10)
        shutil.rmtree(root, ignore_errors=True)


# ----- a fake credential endpoint (instance metadata, container credentials, token URLs) ---


@dataclass
class CredentialTrap:
    """An HTTP server on 127.0.0.1 that answers every request with plausible credentials
    and records it: SDK environment variables point here, and a test asserts no hits."""

    url: str
    hits: list[str]

    @property
    def host_port(self) -> str:
        return self.url.removeprefix("http://")


@pytest.fixture
def credential_trap() -> Iterator[CredentialTrap]:
    import http.server

    hits: list[str] = []
    body = json.dumps(
        {
            "AccessKeyId": "AKIATRAPTRAPTRAP",
            "SecretAccessKey": "trap-secret",
            "Token": "trap-token",
            "Expiration": "2099-01-01T00:00:00Z",
            "access_token": "trap-token",
            "expires_in": 3600,
            "token_type": "Bearer",
            "expires_on": "4102444800",
            "resource": "https://storage.azure.com/",
        }
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            hits.append(f"{self.command} {self.path}")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Metadata-Flavor", "Google")
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield CredentialTrap(f"http://127.0.0.1:{server.server_address[1]}", hits)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
