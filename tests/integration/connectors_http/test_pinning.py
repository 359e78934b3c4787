"""Pinned resolution: every connection goes to the address the SSRF check approved.

The policies here use their own resolver (names like ``good.test`` that the system
resolver cannot resolve), so a request can only succeed if the connection uses the
checked answer. The DNS-rebinding test also plays the attacker's DNS server for the
system resolver (``socket.getaddrinfo``, for that one name), answering with the
"victim" address, as a rebinding server would on the second lookup. Every server is
on 127.0.0.1 or ::1.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.connectors_http.helpers import connector, read_all
from tests.integration.connectors_http.recorder import Recorder
from uzo_connectors.base import ConnectorContext
from uzo_connectors.errors import BlockedEndpointError, ConnectorError
from uzo_connectors.http.pinning import PinnedAddresses, PinnedBackend, ssl_context
from uzo_connectors.http.transport import HttpRetry, SafeClient
from uzo_connectors.retry import RetryPolicy
from uzo_connectors.ssrf import EndpointPolicy

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

RESOURCE = {"name": "r", "path": "/items", "columns": {"id": "int64"}}  # declared: one request


def _resolver(table: dict[str, list[str]]) -> Any:
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise BlockedEndpointError(f"cannot resolve host {host!r}")
        return table[host]

    return resolve


def test_the_connection_uses_the_checked_address() -> None:
    """``good.test`` exists only in the policy's resolver: httpx resolving it itself fails."""
    with Recorder() as server:
        policy = EndpointPolicy(
            allowed=("good.test",), resolver=_resolver({"good.test": ["127.0.0.1"]})
        )
        base = f"http://good.test:{server.port}"
        with SafeClient(policy) as client:
            response = client.request("GET", f"{base}/items")
        assert response.status_code == 200
        conn = connector(ConnectorContext(endpoint_policy=policy), base, resources=[RESOURCE])
        assert read_all(conn, "r").num_rows == 1
        conn.close()
    assert [r.headers["host"] for r in server.requests] == [f"good.test:{server.port}"] * 2


def _same_port_pair() -> tuple[Recorder, Recorder]:
    """A legitimate server on ::1 and a victim on 127.0.0.1, on the same port."""
    for _ in range(20):
        legit = Recorder(host="::1").__enter__()
        try:
            victim = Recorder(host="127.0.0.1", port=legit.port).__enter__()
        except OSError:  # that port is taken on 127.0.0.1: try another
            legit.__exit__()
            continue
        return legit, victim
    pytest.fail("no port free on both ::1 and 127.0.0.1")


@pytest.fixture
def pair() -> Iterator[tuple[Recorder, Recorder]]:
    legit, victim = _same_port_pair()
    try:
        yield legit, victim
    finally:
        victim.__exit__()
        legit.__exit__()


def test_a_rebinding_dns_answer_cannot_move_the_connection(
    pair: tuple[Recorder, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    legit, victim = pair
    answers: list[str] = []

    def rebinding(host: str) -> list[str]:
        """First answer: the allowed ::1; every later one: the refused 127.0.0.1."""
        answer = "::1" if not answers else "127.0.0.1"
        answers.append(answer)
        return [answer]

    system_getaddrinfo = socket.getaddrinfo

    def attacker_dns(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":  # what the system resolver would now answer
            return system_getaddrinfo("127.0.0.1", *args, **kwargs)
        return system_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", attacker_dns)
    policy = EndpointPolicy(allowed=("::1/128",), resolver=rebinding)  # loopback v4 refused
    context = ConnectorContext(endpoint_policy=policy)
    conn = connector(context, f"http://rebind.test:{legit.port}", resources=[RESOURCE])

    assert read_all(conn, "r").num_rows == 1
    assert victim.requests == []  # the old code connected here (httpx resolved again)
    assert len(legit.requests) == 1
    assert answers == ["::1"]  # one resolution, and the connection used it

    # the next request resolves again; that answer is refused, never connected to
    with pytest.raises(BlockedEndpointError, match=r"127\.0\.0\.1"):
        read_all(conn, "r")
    assert victim.requests == []
    conn.close()


def test_the_backend_checks_a_host_nobody_checked_before() -> None:
    """Connecting without a prior check still asks the policy: no unchecked connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        backend = PinnedBackend(PinnedAddresses(EndpointPolicy(resolver=lambda h: ["127.0.0.1"])))
        with pytest.raises(BlockedEndpointError, match="loopback"):
            backend.connect_tcp("evil.test", port, timeout=1)
        with pytest.raises(BlockedEndpointError, match="unix"):
            backend.connect_unix_socket("/run/docker.sock")
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing ever connected


def _certificates(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context with a certificate for good.test, client context trusting its CA)."""
    now = dt.datetime.now(dt.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("uzo test CA"))
        .issuer_name(name("uzo test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("good.test"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("good.test")]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "leaf.pem", tmp_path / "leaf.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


def test_tls_still_verifies_the_host_name(tmp_path: Path) -> None:
    """The connection goes to 127.0.0.1, but SNI and the certificate check use the name."""
    server_ctx, client_ctx = _certificates(tmp_path)
    sni: list[str | None] = []
    server_ctx.sni_callback = lambda sock, server_name, ctx: sni.append(server_name)
    with Recorder(tls=server_ctx) as server:
        names = {"good.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}
        policy = EndpointPolicy(allowed=tuple(names), resolver=_resolver(names))
        with SafeClient(
            policy, verify=client_ctx, retry=HttpRetry(RetryPolicy(max_attempts=1))
        ) as client:
            response = client.request("GET", f"https://good.test:{server.port}/items")
            assert response.status_code == 200
            assert sni == ["good.test"]
            # the same address under a name the certificate does not cover: refused
            with pytest.raises(ConnectorError, match="CERTIFICATE_VERIFY_FAILED"):
                client.request("GET", f"https://other.test:{server.port}/items")
    assert len(server.requests) == 1


def test_the_trust_store_is_loaded_once_per_operator_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading the roots costs more than a small read: each client reuses the context built
    for the operator's current ``SSL_CERT_FILE``; changing the variable changes the roots."""
    server_ctx, _ = _certificates(tmp_path)
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    default = ssl_context(True)
    assert ssl_context(True) is default
    assert ssl_context(False).verify_mode == ssl.CERT_NONE
    assert default.verify_mode == ssl.CERT_REQUIRED
    names = {"good.test": ["127.0.0.1"]}
    policy = EndpointPolicy(allowed=tuple(names), resolver=_resolver(names))
    retry = HttpRetry(RetryPolicy(max_attempts=1))
    with Recorder(tls=server_ctx) as server:
        url = f"https://good.test:{server.port}/items"
        with (
            SafeClient(policy, verify=True, retry=retry) as client,
            pytest.raises(ConnectorError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            client.request("GET", url)  # the test CA is not among the default roots
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
        assert ssl_context(True) is not default
        with SafeClient(policy, verify=True, retry=retry) as client:
            assert client.request("GET", url).status_code == 200
        monkeypatch.delenv("SSL_CERT_FILE")
        assert ssl_context(True) is default
    assert len(server.requests) == 1


def test_proxies_from_the_environment_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """``HTTP_PROXY`` & co. belong to the server, not to tenant connectors (trust_env=False)."""
    with Recorder() as proxy, Recorder() as target:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        loopback = ConnectorContext(endpoint_policy=EndpointPolicy(allow_loopback=True))
        conn = connector(loopback, target.url, resources=[RESOURCE])
        assert read_all(conn, "r").num_rows == 1
        conn.close()
    assert proxy.requests == []  # the old client sent the request through the proxy
    assert len(target.requests) == 1
