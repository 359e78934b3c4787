"""One careful way to send HTTP requests, shared by the REST and GenAI connectors.

:class:`SafeClient` wraps ``httpx.Client`` with automatic redirects turned off:
it checks every URL it is about to reach against the caller's
:class:`~uzo_connectors.ssrf.EndpointPolicy` (the first URL, each redirect's
``Location``, token URLs and pagination links alike), retries with exponential
backoff honouring ``Retry-After`` (429/503), spaces requests by a client-side
rate limit, refreshes credentials once on a 401, and scrubs secrets (API keys in
query strings included) from every message it raises or logs.

Every connection goes to an address the check approved (pinned resolution, see
:mod:`uzo_connectors.http.pinning`): a DNS answer that changes between the check
and the connection (DNS rebinding) cannot redirect a request to an internal
address. The client ignores the server's environment (``trust_env=False``: no
proxy variables, no ``.netrc``), and credentials never follow a redirect to
another origin.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from uzo_connectors.errors import BlockedEndpointError, ConnectorError
from uzo_connectors.http.guards import is_credential_header
from uzo_connectors.http.pinning import PinnedAddresses, pinned_transport

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Iterable, Mapping

    from uzo_connectors.ssrf import EndpointPolicy

log = logging.getLogger(__name__)

SENSITIVE_PARAMS = frozenset(
    {
        "access_token", "api_key", "api-key", "apikey", "auth", "client_secret", "code",
        "key", "password", "secret", "sig", "signature", "token", "x-api-key",
    }
)  # fmt: skip
_REDIRECTS = {301, 302, 303, 307, 308}
_ALWAYS_RETRYABLE = {429, 503}  # the server says it did not process the request


class HttpStatusError(ConnectorError):
    """The server answered with an error status (the message names it, never a secret)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def scrub_url(url: str | httpx.URL, secrets: Iterable[str] = (), extra: Iterable[str] = ()) -> str:
    """The URL without user info, with sensitive query values and known secrets masked."""
    parts = urlsplit(str(url))
    sensitive = SENSITIVE_PARAMS | {name.lower() for name in extra}
    query = urlencode(
        [
            (k, "***" if k.lower() in sensitive else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return redact(urlunsplit((parts.scheme, netloc, parts.path, query, "")), secrets)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RateLimiter:
    """At most ``rate`` request starts per second, across threads (None: unlimited)."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            self._sleep(start - now)


class Authenticator(Protocol):
    """Adds credentials to a request; ``refresh`` is called once after a 401."""

    def authorize(self, request: httpx.Request) -> httpx.Request: ...

    def refresh(self) -> bool: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    max_retry_after: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt + 1``: exponential, capped, 50-100% jitter."""
        delay: float = min(self.backoff_max, self.backoff_base * (2**attempt))
        return delay * (0.5 + random.random() / 2)  # jitter, not security


class SafeClient:
    """SSRF-checked, retrying, rate-limited HTTP. Thread-safe; close it when done."""

    def __init__(
        self,
        policy: EndpointPolicy,
        *,
        timeout: float = 30.0,
        verify: bool | ssl.SSLContext = True,
        headers: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        rate_limit: float | None = None,
        max_redirects: int = 5,
        secrets: Iterable[str] = (),
        sensitive_params: Iterable[str] = (),
        auth: Authenticator | None = None,
        trusted_origin: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy
        self.retry = retry or RetryPolicy()
        self.max_redirects = max_redirects
        self.secrets = tuple(secrets)
        self.sensitive_params = tuple(sensitive_params)
        self.auth = auth
        # credentials go only to this origin (default: the origin of each request's first URL)
        self._trusted = _origin(httpx.URL(trusted_origin)) if trusted_origin else None
        self._sleep = sleep
        self._limiter = RateLimiter(rate_limit, sleep=sleep)
        self.pins = PinnedAddresses(policy)
        self._client = httpx.Client(
            transport=pinned_transport(self.pins, verify),
            timeout=timeout,
            headers=dict(headers or {}),
            follow_redirects=False,
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SafeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scrub(self, url: str | httpx.URL) -> str:
        return scrub_url(url, self.secrets, self.sensitive_params)

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def check(self, url: str | httpx.URL) -> None:
        """Refuse a URL whose host is internal (BlockedEndpointError, scrubbed).

        The URL is read by httpx's own parser (the one that will connect), and the
        addresses the policy approves are pinned for the connection.
        """
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
            if parsed.scheme not in {"http", "https"}:
                raise BlockedEndpointError(
                    f"URL scheme {parsed.scheme!r} is not allowed (use http, https)"
                )
            if not parsed.host:
                raise BlockedEndpointError(f"a {parsed.scheme or 'schemeless'} URL with no host")
            # the host exactly as httpcore will connect to it (IDNA-encoded), so the pin matches
            self.pins.check(parsed.raw_host.decode("ascii"))
        except httpx.InvalidURL as exc:
            raise BlockedEndpointError(f"invalid URL {self.scrub(str(url))}: {exc}") from None
        except BlockedEndpointError as exc:
            message = self.redact(str(exc)).replace(str(url), self.scrub(url))
            raise BlockedEndpointError(message) from None

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticate: bool = True,
        follow_redirects: bool = True,
    ) -> httpx.Response:
        """Send a request (following checked redirects), retrying what may be retried.

        Returns the final response whatever its status; see :meth:`raise_for_status`.
        With ``follow_redirects=False`` a redirect is returned as it is (a token request
        sends its client secret: it must not be replayed to wherever a 307 points).
        """
        idempotent = method.upper() in {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
        auth = self.auth if authenticate else None
        attempt = 0
        refreshed = False
        while True:
            self._limiter.acquire()
            try:
                response = self._send(
                    method, url, params, json, content, data, headers, auth, follow_redirects
                )
            except httpx.TransportError as exc:
                retryable = idempotent or isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if retryable and attempt + 1 < self.retry.max_attempts:
                    delay = self.retry.backoff(attempt)
                    log.info("retrying %s %s in %.2fs after %s", method, self.scrub(url), delay,
                             type(exc).__name__)  # fmt: skip
                    self._sleep(delay)
                    attempt += 1
                    continue
                raise ConnectorError(
                    f"{method} {self.scrub(url)} failed: {type(exc).__name__}: "
                    f"{self.redact(str(exc)) or 'no detail'}"
                ) from None
            status = response.status_code
            if status == 401 and auth is not None and not refreshed and auth.refresh():
                refreshed = True
                response.close()
                continue
            if (
                status in self.retry.retry_statuses
                and (idempotent or status in _ALWAYS_RETRYABLE)
                and attempt + 1 < self.retry.max_attempts
            ):
                delay = self._retry_delay(response, attempt)
                log.info("HTTP %s from %s; retrying in %.2fs", status, self.scrub(url), delay)
                response.close()
                self._sleep(delay)
                attempt += 1
                continue
            return response

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float:
        wait = parse_retry_after(response.headers.get("retry-after"))
        if wait is None:
            return self.retry.backoff(attempt)
        if wait > self.retry.max_retry_after:
            raise HttpStatusError(
                f"{self.scrub(response.request.url)} asks to retry after {wait:.0f}s, longer than "
                f"the {self.retry.max_retry_after:.0f}s allowed (retries.max_retry_after)",
                response.status_code,
            )
        return wait

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Any,
        content: bytes | None,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        auth: Authenticator | None,
        follow_redirects: bool = True,
    ) -> httpx.Response:
        try:
            first = _origin(httpx.URL(url))
        except httpx.InvalidURL as exc:
            raise ConnectorError(f"invalid URL {self.scrub(url)}: {exc}") from None
        origin = self._trusted or first
        for _hop in range(self.max_redirects + 1):
            request = self._client.build_request(
                method, url, params=params, json=json, content=content, data=data, headers=headers
            )
            self.check(request.url)  # before authorize: no token is fetched for a refused URL
            if auth is not None and _origin(request.url) == origin:
                request = auth.authorize(request)  # never send credentials to another origin
            response = self._client.send(request)
            if (
                not follow_redirects
                or response.status_code not in _REDIRECTS
                or "location" not in response.headers
            ):
                return response
            try:
                target = request.url.join(response.headers["location"])
            except httpx.InvalidURL:
                response.close()
                raise ConnectorError(
                    f"{self.scrub(request.url)} redirects to an invalid URL"
                ) from None
            response.close()
            if response.status_code == 303 or (
                response.status_code in {301, 302} and method.upper() == "POST"
            ):
                method, json, content, data = "GET", None, None, None
            if headers and _origin(target) != first:
                # like browsers: a request's own credentials stay with the origin it was for
                headers = {k: v for k, v in headers.items() if not is_credential_header(k)}
            url, params = str(target), None
        raise ConnectorError(f"more than {self.max_redirects} redirects from {self.scrub(url)}")

    def raise_for_status(self, response: httpx.Response, what: str = "") -> httpx.Response:
        """The response if 2xx; else HttpStatusError with the status and a scrubbed URL."""
        if response.is_success:
            return response
        status = response.status_code
        label = what or f"{response.request.method} {self.scrub(response.request.url)}"
        detail = self.redact(response.text[:200].strip()) if response.text else ""
        reason = response.reason_phrase or ""
        message = f"{label}: HTTP {status} {reason}".rstrip()
        if detail:
            message += f": {detail}"
        raise HttpStatusError(message, status)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)
