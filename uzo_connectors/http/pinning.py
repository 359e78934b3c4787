"""Pinned resolution: every TCP connection goes to an address the SSRF check approved.

Checking a URL resolves its host; if the HTTP library then resolved the host again
to connect, a DNS server answering differently the second time (DNS rebinding)
could send the request to 127.0.0.1 or 169.254.169.254 after the check passed.
So :class:`PinnedAddresses` keeps the addresses each check returned, and
:class:`PinnedBackend` (an ``httpcore`` network backend) connects only to those
addresses (checking the host itself if nothing checked it first), never asking
the system resolver. TLS still uses the host name: httpcore passes the origin's
host to ``start_tls`` as ``server_hostname``, so SNI and certificate
verification are unchanged.

:func:`pinned_transport` builds the ``httpx`` transport around it: HTTP/1.1, the
given TLS verification, no proxy, no unix socket.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import ssl
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

import httpcore
import httpx

from uzo_connectors.errors import BlockedEndpointError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from httpcore import NetworkStream
    from httpcore._backends.base import SOCKET_OPTION

    from uzo_connectors.ssrf import EndpointPolicy, IPAddress

# A host resolving to more addresses than this is tried on its first few only: each
# attempt may take the whole connect timeout.
MAX_ADDRESSES = 8
_MAX_PINNED_HOSTS = 256


def host_key(host: str) -> str:
    """A host as the policy compares it (no brackets, no trailing dot, lower case)."""
    return host.strip().strip("[]").rstrip(".").lower()


class PinnedAddresses:
    """The addresses the policy approved, per host; thread-safe.

    :meth:`check` asks the policy (one resolution) and remembers its answer; the
    next connection to that host uses exactly that answer. Each request checks
    its URL first, so a pin is never older than the last request to its host.
    """

    def __init__(self, policy: EndpointPolicy) -> None:
        self.policy = policy
        self._pins: OrderedDict[str, list[IPAddress]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, host: str) -> list[IPAddress]:
        """The host's approved addresses (BlockedEndpointError if any is refused)."""
        addresses = self.policy.check_host(host)
        if not addresses:
            raise BlockedEndpointError(f"host {host!r} resolves to no address")
        with self._lock:
            key = host_key(host)
            self._pins[key] = addresses
            self._pins.move_to_end(key)
            while len(self._pins) > _MAX_PINNED_HOSTS:
                self._pins.popitem(last=False)
        return addresses

    def for_connect(self, host: str) -> list[IPAddress]:
        """The pinned addresses of ``host``; checked now if nothing checked it before."""
        with self._lock:
            pinned = self._pins.get(host_key(host))
        return pinned if pinned is not None else self.check(host)


class PinnedBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, connecting to pinned addresses instead of resolving names."""

    def __init__(self, pins: PinnedAddresses) -> None:
        self.pins = pins
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> NetworkStream:
        addresses = self.pins.for_connect(host)
        # IPv4 first: many servers have no IPv6 route, and each failure costs a timeout
        ordered = sorted(addresses, key=lambda a: isinstance(a, ipaddress.IPv6Address))
        error: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in ordered[:MAX_ADDRESSES]:
            try:
                return self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        if error is None:  # for_connect never returns an empty list
            raise BlockedEndpointError(f"host {host!r} resolves to no address")
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> NetworkStream:
        raise BlockedEndpointError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class PinnedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connection pool connects through a :class:`PinnedBackend`.

    httpx builds its pool in ``__init__`` with no way to pass a network backend, so the
    pool is replaced right after (``_pool`` is what ``handle_request`` uses in httpx
    0.28). If a later httpx renames it, this fails loudly rather than connect unpinned.
    """

    def __init__(self, pins: PinnedAddresses, ssl_context: ssl.SSLContext) -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(verify=ssl_context, trust_env=False, http1=True, http2=False)
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            raise RuntimeError("this httpx version cannot take a pinned connection pool")
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=PinnedBackend(pins),
        )


def ssl_context(verify: bool | ssl.SSLContext) -> ssl.SSLContext:
    """The TLS context: certifi's roots (or the operator's ``SSL_CERT_FILE``/``SSL_CERT_DIR``).

    Built once per trust setting and shared: loading the roots costs ~25 ms of CPU, more
    than the rest of a small HTTP read, and a context that holds only trust roots (no
    client certificate, nothing a tenant sets) is safe to share between clients and
    threads."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    return _shared_context(verify, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=8)
def _shared_context(verify: bool, cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    # trust_env here only reads the operator's trust store settings (the two variables
    # in the cache key); proxies and netrc stay off (the client is built trust_env=False)
    return httpx.create_ssl_context(verify=verify, trust_env=True)


def pinned_transport(pins: PinnedAddresses, verify: bool | ssl.SSLContext) -> PinnedTransport:
    return PinnedTransport(pins, ssl_context(verify))
