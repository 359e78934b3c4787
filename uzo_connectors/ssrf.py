"""SSRF protection: every network endpoint a connector reaches is checked first.

A host is resolved (``getaddrinfo`` also understands decimal, hex, octal and
short IPv4 spellings such as ``2130706433`` or ``0x7f.1``) and refused when any
address it resolves to is internal: loopback, link-local (cloud metadata at
169.254.169.254 included), private, shared (CGNAT), unspecified, multicast or
reserved. IPv4 embedded in IPv6 (``::ffff:127.0.0.1``, NAT64, 6to4) is unwrapped
and judged as IPv4. An explicit allowlist (hosts or CIDRs) and two switches
(loopback, private) relax the policy, e.g. for tests or on-premise databases.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from uzo_connectors.errors import BlockedEndpointError, HostNotFoundError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], list[str]]

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LINK_LOCAL_V4 = ipaddress.ip_network("169.254.0.0/16")


def resolve(host: str) -> list[str]:
    """Every address the system resolver gives for ``host``."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise HostNotFoundError(f"cannot resolve host {host!r}: {exc}") from exc
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


def _unwrap(addr: IPAddress) -> IPAddress:
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return addr.ipv4_mapped
        if addr in _NAT64:
            return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if addr.sixtofour is not None:
            return addr.sixtofour
        if addr.teredo is not None:
            return addr.teredo[1]
    return addr


def classify(addr: IPAddress) -> str | None:
    """Why an address is internal, or None if it is public."""
    addr = _unwrap(addr)
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local or (isinstance(addr, ipaddress.IPv4Address) and addr in _LINK_LOCAL_V4):
        return "link-local"
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_multicast:
        return "multicast"
    if isinstance(addr, ipaddress.IPv4Address) and addr in _SHARED:
        return "shared (CGNAT)"
    if addr.is_private:
        return "private"
    if addr.is_reserved or not addr.is_global:
        return "reserved"
    return None


@dataclass(frozen=True)
class EndpointPolicy:
    """Which internal endpoints are allowed. The default allows none."""

    allow_loopback: bool = False
    allow_private: bool = False
    allowed: tuple[str, ...] = ()  # host names or CIDRs always allowed
    resolver: Resolver = field(default=resolve, compare=False)

    @classmethod
    def permissive_for_tests(cls) -> EndpointPolicy:
        return cls(allow_loopback=True)

    def _allowed_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        nets = []
        for entry in self.allowed:
            try:
                nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                continue
        return nets

    def check_host(self, host: str) -> list[IPAddress]:
        """The host's addresses, if all are allowed; else BlockedEndpointError."""
        name = host.strip().strip("[]").rstrip(".").lower()
        if not name:
            raise BlockedEndpointError("empty host")
        if name in (h.lower() for h in self.allowed):
            return [ipaddress.ip_address(a) for a in self.resolver(name)]
        addresses = [ipaddress.ip_address(a) for a in self.resolver(name)]
        if not addresses:
            raise BlockedEndpointError(f"host {host!r} resolves to no address")
        allowed_nets = self._allowed_networks()
        for addr in addresses:
            if any(_unwrap(addr) in net or addr in net for net in allowed_nets):
                continue
            reason = classify(addr)
            if reason is None:
                continue
            if reason == "loopback" and self.allow_loopback:
                continue
            if reason in {"private", "shared (CGNAT)"} and self.allow_private:
                continue
            raise BlockedEndpointError(
                f"endpoint {host!r} resolves to {addr} ({reason} address): internal endpoints "
                "are refused; an administrator can allow it with UZO_CONNECTORS_ALLOWED_HOSTS"
            )
        return addresses

    def check_url(self, url: str, schemes: Iterable[str] = ("http", "https")) -> str:
        """Check a URL's scheme and host; returns the URL unchanged if allowed."""
        parts = urlsplit(url)
        allowed_schemes = set(schemes)
        if parts.scheme.lower() not in allowed_schemes:
            raise BlockedEndpointError(
                f"URL scheme {parts.scheme!r} is not allowed"
                f" (use {', '.join(sorted(allowed_schemes))})"
            )
        if parts.hostname is None:
            raise BlockedEndpointError(f"a {parts.scheme or 'schemeless'} URL with no host")
        self.check_host(parts.hostname)
        return url
