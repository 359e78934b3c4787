"""http(s) roots of the ``file`` connector: fsspec's HTTPFileSystem on a guarded session.

fsspec hands URLs to aiohttp unfiltered, and aiohttp follows redirects, so a
checked root could redirect to ``http://169.254.169.254/``, and a name checked
once could resolve elsewhere when aiohttp looks it up again (DNS rebinding).
The session built here closes both holes for every request the filesystem
makes (listings, HEAD, ranged reads) and every hop of a redirect:

- its ``TCPConnector`` resolves names through :meth:`EndpointPolicy.check_host`
  (:func:`pinned_resolver_class`), so aiohttp connects to the addresses that passed
  the check, never to a second DNS answer ("pinned resolution");
- aiohttp skips the resolver for IP literals, so a client middleware
  (:func:`check_hop`) checks each hop's URL before it connects: middlewares run
  once per hop (the first URL and each redirect target), unlike the
  ``on_request_start`` trace signal, which fires once per request;
- ``trust_env=False``: no proxy or netrc credentials from the server's environment.

A refusal is a :class:`BlockedEndpointError`; fsspec sometimes re-raises it as
``FileNotFoundError`` (``info`` does), so callers look for it in the exception
chain with :func:`blocked_cause`.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uzo_connectors.errors import BlockedEndpointError

if TYPE_CHECKING:
    import aiohttp
    import fsspec
    from aiohttp.abc import ResolveResult
    from aiohttp.client_middlewares import ClientHandlerType
    from aiohttp.client_reqrep import ClientRequest, ClientResponse

    from uzo_connectors.ssrf import EndpointPolicy


def blocked_cause(exc: BaseException) -> BlockedEndpointError | None:
    """The BlockedEndpointError ``exc`` is, or was raised from (fsspec re-wraps errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BlockedEndpointError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _is_literal(host: str) -> bool:
    """Whether aiohttp connects to ``host`` without asking the resolver (an IP literal).

    aiohttp's own test is "contains ':' or is all digits and dots"; the same test is
    used here, plus the ipaddress module, so every host it does not resolve is checked.
    """
    bare = host.strip("[]")
    if ":" in bare or bare.replace(".", "").isdigit():
        return True
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        return False
    return True


@functools.cache
def pinned_resolver_class() -> type[Any]:
    """:class:`aiohttp.abc.AbstractResolver` answering with the addresses the policy checked
    (built on first use: aiohttp is imported only when an http(s) root is used)."""
    from aiohttp.abc import AbstractResolver

    class PinnedResolver(AbstractResolver):
        def __init__(self, policy: EndpointPolicy) -> None:
            self._policy = policy

        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            loop = asyncio.get_running_loop()
            addresses = await loop.run_in_executor(None, self._policy.check_host, host)
            results: list[ResolveResult] = []
            for address in addresses:
                fam = socket.AF_INET6 if address.version == 6 else socket.AF_INET
                if family not in (socket.AF_UNSPEC, fam):
                    continue
                results.append(
                    {
                        "hostname": host,
                        "host": str(address),
                        "port": port,
                        "family": fam,
                        "proto": 0,
                        "flags": socket.AI_NUMERICHOST,
                    }
                )
            if not results:
                raise BlockedEndpointError(f"host {host!r} resolves to no usable address")
            return results

        async def close(self) -> None:
            return None

    return PinnedResolver


def check_hop(policy: EndpointPolicy) -> Any:
    """A client middleware refusing a hop (first URL or redirect target) before it connects."""

    async def middleware(req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        url = req.url
        if url.scheme not in ("http", "https"):
            raise BlockedEndpointError(f"URL scheme {url.scheme!r} is not allowed")
        host = url.raw_host or ""
        if not host:
            raise BlockedEndpointError("a URL with no host")
        if _is_literal(host):
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, policy.check_host, host)
        # names are checked (and pinned) by PinnedResolver when the connection is made
        return await handler(req)

    return middleware


@dataclass(frozen=True)
class PinnedSessionFactory:
    """fsspec's ``get_client``: builds the guarded aiohttp session (picklable, so read
    tasks that carry the filesystem can travel to Ray workers)."""

    policy: EndpointPolicy
    timeout: float

    async def __call__(self, **_: Any) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            resolver=pinned_resolver_class()(self.policy),
            use_dns_cache=False,
        )
        return aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            middlewares=(check_hop(self.policy),),
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=self.timeout, sock_read=self.timeout
            ),
        )


def http_filesystem(
    policy: EndpointPolicy, timeout: float, options: dict[str, Any]
) -> fsspec.AbstractFileSystem:
    """fsspec's HTTPFileSystem on the guarded session (``options`` already allow-listed)."""
    from fsspec.implementations.http import HTTPFileSystem

    return HTTPFileSystem(
        get_client=PinnedSessionFactory(policy, timeout),
        skip_instance_cache=True,
        **options,
    )
