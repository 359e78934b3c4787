"""A hostile PostgreSQL server on loopback that records what a client hands it.

It speaks just enough of the protocol for libpq: it answers an SSLRequest
(with TLS when given a context, recording the client certificate and the SNI
name), refuses GSS encryption, reads the startup message, asks for a
cleartext password (or for GSSAPI authentication), records the password the
client sends, and ends the connection with an error. What a tenant's connector
must never give such a server: the UZO server's own password (PGPASSWORD,
~/.pgpass) or client certificate.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pathlib import Path

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
REFUSAL = "rogue server refuses you"


@dataclass
class Seen:
    connections: int = 0
    startup: list[dict[str, str]] = field(default_factory=list)
    passwords: list[str] = field(default_factory=list)
    client_certs: list[bytes] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)


def _recv_exact(conn: socket.socket | ssl.SSLSocket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


class RoguePostgres:
    """Start with ``with RoguePostgres(...) as rogue:``; ``rogue.port``, ``rogue.seen``."""

    def __init__(
        self,
        auth: Literal["cleartext", "gss"] = "cleartext",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.auth = auth
        self.tls = tls
        self.seen = Seen()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        if tls is not None:
            tls.sni_callback = self._sni

    def _sni(self, _sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.seen.sni.append(name)

    def __enter__(self) -> RoguePostgres:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
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
            try:
                self._serve(conn)
            except (OSError, ConnectionError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        stream: socket.socket | ssl.SSLSocket = conn
        while True:
            length, code = struct.unpack("!ii", _recv_exact(stream, 8))
            if code == SSL_REQUEST:
                if self.tls is None:
                    stream.sendall(b"N")
                    continue
                stream.sendall(b"S")
                stream = self.tls.wrap_socket(conn, server_side=True)
                cert = stream.getpeercert(binary_form=True)
                if cert:
                    self.seen.client_certs.append(cert)
                continue
            if code == GSSENC_REQUEST:
                stream.sendall(b"N")
                continue
            body = _recv_exact(stream, length - 8)
            parts = body.split(b"\x00")
            self.seen.startup.append(
                {
                    k.decode(): v.decode()
                    for k, v in zip(parts[0::2], parts[1::2], strict=False)
                    if k
                }
            )
            break
        if self.auth == "gss":
            stream.sendall(_message(b"R", struct.pack("!i", 7)))  # AuthenticationGSS
        else:
            stream.sendall(_message(b"R", struct.pack("!i", 3)))  # AuthenticationCleartext
            kind = _recv_exact(stream, 1)
            (size,) = struct.unpack("!i", _recv_exact(stream, 4))
            payload = _recv_exact(stream, size - 4)
            if kind == b"p":
                self.seen.passwords.append(payload.rstrip(b"\x00").decode())
        error = b"SFATAL\x00C28P01\x00M" + REFUSAL.encode() + b"\x00\x00"
        stream.sendall(_message(b"E", error))


@dataclass(frozen=True)
class Certificates:
    """A test CA, a server certificate for 'pg.rogue.test' and a client certificate."""

    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    ca_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.server_cert, self.server_key)
        ctx.verify_mode = ssl.CERT_OPTIONAL  # ask for a client certificate
        ctx.load_verify_locations(cadata=self.ca_pem.decode())
        return ctx


def make_certificates(directory: Path) -> Certificates:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def build(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: str,
        signer: ec.EllipticCurvePrivateKey,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
        )
        if subject == issuer:
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    def write(path: Path, data: bytes) -> Path:
        path.write_bytes(data)
        path.chmod(0o600)  # libpq refuses a key others can read
        return path

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("uzo test ca", ca_key, "uzo test ca", ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = build("pg.rogue.test", server_key, "uzo test ca", ca_key)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = build("uzo-server-identity", client_key, "uzo test ca", ca_key)
    pem = serialization.Encoding.PEM
    return Certificates(
        server_cert=write(directory / "server.crt", server.public_bytes(pem)),
        server_key=write(directory / "server.key", key_pem(server_key)),
        client_cert=write(directory / "client.crt", client.public_bytes(pem)),
        client_key=write(directory / "client.key", key_pem(client_key)),
        ca_pem=ca.public_bytes(pem),
    )
