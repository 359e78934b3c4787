"""One careful way to send HTTP requests, shared by the REST and GenAI connectors.

:class:`SafeClient` wraps ``httpx.Client`` with automatic redirects turned off:
it checks every URL it is about to reach against the caller's
:class:`~uzo_connectors.ssrf.EndpointPolicy` (the first URL, each redirect's
``Location``, token URLs and pagination links alike), retries with UZO's one
:class:`~uzo_connectors.retry.RetryPolicy` (exponential backoff; ``Retry-After``
wins on the statuses that send it), keeps to a client-side rate limit (``limits``,
a moving window in memory), refreshes credentials once on a 401, and scrubs
secrets (API keys in query strings included) from every message it raises or logs.

This is the one layer that retries a request: callers above it (the GenAI
mapper, pagination, sinks) do not retry again, so attempts never multiply.

Every connection goes to an address the check approved (pinned resolution, see
:mod:`uzo_connectors.http.pinning`): a DNS answer that changes between the check
and the connection (DNS rebinding) cannot redirect a request to an internal
address. The client ignores the server's environment (``trust_env=False``: no
proxy variables, no ``.netrc``), and credentials never follow a redirect to
another origin.
"""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from uzo_connectors.errors import BlockedEndpointError, ConnectorError
from uzo_connectors.http.guards import is_credential_header
from uzo_connectors.http.pinning import PinnedAddresses, pinned_transport
from uzo_connectors.retry import RetryDecision, RetryPolicy

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterable, Mapping

    from uzo_connectors.ssrf import EndpointPolicy

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


def rate_window(rate: float) -> tuple[int, int]:
    """``rate`` requests per second as (requests, seconds): whole numbers, never faster.

    The window is the shortest whole number of seconds (up to 60) in which ``rate``
    makes whole requests: 5/s is 5 per second, 0.5/s 1 per 2 s, 2.5/s 5 per 2 s.
    """
    for seconds in range(1, 61):
        amount = rate * seconds
        if amount >= 1 - 1e-9 and abs(amount - round(amount)) < 1e-9:
            return round(amount), seconds
    if rate * 60 >= 1:
        return math.floor(rate * 60), 60
    return 1, math.ceil(1 / rate)


class RateLimiter:
    """At most ``rate`` request starts per second, across threads (None: unlimited).

    A moving window (``limits``) in this client's own memory: in any window of
    :func:`rate_window` seconds, no more requests start than the rate allows.
    """

    def __init__(self, rate: float | None) -> None:
        self._item: RateLimitItemPerSecond | None = None
        if rate:
            amount, seconds = rate_window(rate)
            self._item = RateLimitItemPerSecond(amount, seconds)
            self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def acquire(self) -> None:
        """Wait until a request may start, and count it."""
        if self._item is None:
            return
        while not self._limiter.hit(self._item):
            reset = self._limiter.get_window_stats(self._item).reset_time
            time.sleep(min(1.0, max(0.001, reset - time.time())))


class Authenticator(Protocol):
    """Adds credentials to a request; ``refresh`` is called once after a 401."""

    def authorize(self, request: httpx.Request) -> httpx.Request: ...

    def refresh(self) -> bool: ...


DEFAULT_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class HttpRetry:
    """The retry policy of a client plus what HTTP adds to it.

    ``statuses`` are retried for requests that may be repeated (GET, HEAD, OPTIONS,
    PUT, DELETE, or a request sent with ``idempotent=True``); a POST or PATCH only on
    429 and 503, where the server says it did not process it. A ``Retry-After``
    header sets the wait for its retry; one longer than ``max_retry_after`` fails
    the request at once.
    """

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    max_retry_after: float = 120.0


class _Retryable(Exception):
    """A failed attempt that may be retried (the message is scrubbed: stamina logs it)."""

    def __init__(self, message: str, response: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.response = response  # the last answer, returned if no attempt is left
        self.wait: float | None = None  # Retry-After, when the server sent one


def _retry_decision(exc: Exception) -> RetryDecision:
    if not isinstance(exc, _Retryable):
        return False
    return True if exc.wait is None else exc.wait


class SafeClient:
    """SSRF-checked, retrying, rate-limited HTTP. Thread-safe; close it when done."""

    def __init__(
        self,
        policy: EndpointPolicy,
        *,
        timeout: float = 30.0,
        verify: bool | ssl.SSLContext = True,
        headers: Mapping[str, str] | None = None,
        retry: HttpRetry | None = None,
        rate_limit: float | None = None,
        max_redirects: int = 5,
        secrets: Iterable[str] = (),
        sensitive_params: Iterable[str] = (),
        auth: Authenticator | None = None,
        trusted_origin: str | None = None,
    ) -> None:
        self.policy = policy
        self.retry = retry or HttpRetry()
        self.max_redirects = max_redirects
        self.secrets = tuple(secrets)
        self.sensitive_params = tuple(sensitive_params)
        self.auth = auth
        # credentials go only to this origin (default: the origin of each request's first URL)
        self._trusted = _origin(httpx.URL(trusted_origin)) if trusted_origin else None
        self._limiter = RateLimiter(rate_limit)
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
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send a request (following checked redirects), retrying what may be retried.

        Returns the final response whatever its status; see :meth:`raise_for_status`.
        With ``follow_redirects=False`` a redirect is returned as it is (a token request
        sends its client secret: it must not be replayed to wherever a 307 points).
        ``idempotent`` says whether the request may be repeated (None: by its method;
        True for a POST without side effects, such as a model call).
        """
        repeatable = (
            method.upper() in {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
            if idempotent is None
            else idempotent
        )
        auth = self.auth if authenticate else None
        refreshed = False
        previous: httpx.Response | None = None

        def send() -> httpx.Response:
            return self._send(
                method, url, params, json, content, data, headers, auth, follow_redirects
            )

        def attempt() -> httpx.Response:
            nonlocal refreshed, previous
            if previous is not None:
                previous.close()
            self._limiter.acquire()
            try:
                response = send()
                if response.status_code == 401 and auth is not None and not refreshed:
                    refreshed = True  # once per request, not counted as an attempt
                    if auth.refresh():
                        response.close()
                        self._limiter.acquire()
                        response = send()
            except httpx.TransportError as exc:
                message = (
                    f"{method} {self.scrub(url)} failed: {type(exc).__name__}: "
                    f"{self.redact(str(exc)) or 'no detail'}"
                )
                if repeatable or isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                    raise _Retryable(message) from None
                raise ConnectorError(message) from None
            status = response.status_code
            if status in self.retry.statuses and (repeatable or status in _ALWAYS_RETRYABLE):
                previous = response
                failed = _Retryable(f"HTTP {status} from {self.scrub(url)}", response)
                failed.wait = self._retry_after(response)
                raise failed
            return response

        try:
            return self.retry.policy.call(attempt, retry_on=_retry_decision)
        except _Retryable as exc:  # no attempt left
            if exc.response is None:
                raise ConnectorError(str(exc)) from None
            return exc.response

    def _retry_after(self, response: httpx.Response) -> float | None:
        wait = parse_retry_after(response.headers.get("retry-after"))
        if wait is not None and wait > self.retry.max_retry_after:
            response.close()
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
