"""Connecting to the addresses the SSRF check approved ("pinned resolution").

A driver that resolves a host name itself may get another answer than the
check did: a public address while UZO checks, ``169.254.169.254`` a moment
later when the driver connects (DNS rebinding). So the SQL connectors resolve
once, through :meth:`EndpointPolicy.check_host`, and hand the driver the
addresses that passed:

- libpq (psycopg, psycopg2, ADBC) takes them as ``hostaddr`` and keeps the
  name in ``host``, so TLS is still verified against the name;
- PyMySQL is given a socket already connected to a checked address (its own
  ``host`` stays the name, again for TLS);
- drivers with neither get the address literal as their host (their URL
  allow-lists hold no TLS option that would verify a name).

A unix-socket path is not resolved: it counts as loopback (refused unless the
policy allows loopback) and is returned as no address.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING, Any

from uzo_connectors.errors import BlockedEndpointError
from uzo_connectors.sql.engine import check_hosts, is_socket_path

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Engine

    from uzo_connectors.ssrf import EndpointPolicy


def checked_addresses(policy: EndpointPolicy, host: str) -> tuple[str, ...]:
    """The addresses to connect to for ``host`` (IPv4 first); () for a unix socket."""
    if is_socket_path(host):
        check_hosts(policy, [host])
        return ()
    found = {str(address) for address in policy.check_host(host)}
    if not found:
        raise BlockedEndpointError(f"host {host!r} resolves to no address")
    return tuple(sorted(found, key=lambda a: (":" in a, a)))


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def open_socket(addresses: Sequence[str], port: int, timeout: float) -> socket.socket:
    """A TCP connection to the first of ``addresses`` that answers; the last error if none."""
    error: OSError = OSError(f"no address to connect to on port {port}")
    for address in addresses:
        try:
            sock = socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            error = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        return sock
    raise error


def pin_pymysql(engine: Engine, addresses: Sequence[str], port: int, timeout: float) -> None:
    """Make every PyMySQL connection of ``engine`` use a socket to one of ``addresses``.

    PyMySQL resolves ``host`` itself, but it can be built with ``defer_connect`` and
    then handed a connected socket; ``host`` still names the server for TLS.
    """
    from sqlalchemy import event

    pinned = tuple(addresses)

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        import pymysql

        conn = pymysql.connections.Connection(*cargs, **{**cparams, "defer_connect": True})
        try:
            sock = open_socket(pinned, port, timeout)
        except OSError as exc:
            raise pymysql.err.OperationalError(
                2003, f"Can't connect to MySQL server on {conn.host!r} ({exc})"
            ) from None
        conn.connect(sock)
        return conn
