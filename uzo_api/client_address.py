"""The client's address, for rate limits and audit: the peer, unless a trusted proxy says.

``X-Forwarded-For`` is believed only when the peer is one of
``UZO_SERVER_TRUSTED_PROXIES`` (none by default): then the client is the
right-most address in the header that is not itself a trusted proxy, since a
client can prepend anything it likes but cannot change what the proxies
append. Anyone else's header is ignored, so rotating it buys an attacker
nothing against the per-address login limit.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = text.strip().strip('"')
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(text: str, proxies: Sequence[Network]) -> bool:
    addr = _address(text)
    return addr is not None and any(addr in net for net in proxies)


def client_address(peer: str | None, forwarded_for: str | None, proxies: Sequence[Network]) -> str:
    """The address to attribute a request to."""
    if peer is None:
        return "unknown"
    if not proxies or forwarded_for is None or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        addr = _address(hop)
        if addr is None:
            return peer  # a garbled header from our own proxy: do not guess
        if not any(addr in net for net in proxies):
            return str(addr)
    return str(_address(hops[0])) if hops else peer
