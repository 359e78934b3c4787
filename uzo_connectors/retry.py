"""UZO's one retry policy: capped exponential backoff with jitter, run by stamina.

:class:`RetryPolicy` is used wherever UZO retries:

- :meth:`RetryPolicy.call` retries a call with ``stamina.retry_context``: the HTTP
  transport (:mod:`uzo_connectors.http.transport`) for the ``http`` and ``openai``
  connectors. It is the only layer that retries a request; the GenAI mapper does
  not retry on top of it.
- :meth:`RetryPolicy.backoff` is the wait before a retry, for loops that must own
  their waiting: the engine's node attempts (``uzo_engine.runtime.local``,
  ``uzo_engine.runtime.actors``) decide themselves whether an attempt is retried and
  sleep so that a cancellation ends the wait at once.

The wait before retry ``n`` (1-based) is ``min(backoff_max, backoff_base * 2**(n-1) +
uniform(0, jitter))``, stamina's formula. :meth:`call` hands stamina that wait (a
backoff hook may return its own delay), so the formula lives here only, and a
server's ``Retry-After`` can replace it for one retry.

Built on stamina rather than tenacity directly (stamina runs on tenacity): it gives
the retry loop, ``stamina.set_testing`` (tests turn every wait to zero and cap the
attempts; :meth:`backoff` honours it too) and retry instrumentation (logging,
structlog, Prometheus) in one switch. What stamina cannot take is a sleep function,
which is why the engine's interruptible node waits call :meth:`backoff` and sleep
themselves.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import stamina

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

# What a caller's ``retry_on`` answers for a failure: False (give up), True (retry
# after the policy's backoff) or a number of seconds (retry after that, e.g. Retry-After).
RetryDecision = bool | float


@dataclass(frozen=True)
class RetryPolicy:
    """How often to try and how long to wait in between.

    ``max_attempts`` counts every attempt, the first one included. ``jitter`` is the
    most a random addition to a wait can be (None: ``backoff_base``, so the first wait
    is between ``backoff_base`` and twice that); 0 makes the waits exact.
    """

    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    jitter: float | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.backoff_base, self.backoff_max, self.jitter or 0.0) < 0:
            raise ValueError("backoff_base, backoff_max and jitter cannot be negative")

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry)."""
        if stamina.is_testing():
            return 0.0
        jitter = self.backoff_base if self.jitter is None else self.jitter
        try:
            delay = self.backoff_base * 2 ** max(0, retry - 1)
        except OverflowError:
            delay = self.backoff_max
        extra = random.uniform(0, jitter) if jitter else 0.0  # spreads clients, not security
        return float(min(self.backoff_max, delay + extra))

    def call(self, fn: Callable[[], T], *, retry_on: Callable[[Exception], RetryDecision]) -> T:
        """``fn()``, tried up to ``max_attempts`` times while ``retry_on`` says so.

        The last failure is raised as it is. ``retry_on`` sees every exception ``fn``
        raises, and must not raise itself.
        """
        failures = 0

        def hook(exc: Exception) -> RetryDecision:
            nonlocal failures
            failures += 1
            decision = retry_on(exc)
            if decision is False:
                return False
            if decision is True:
                return self.backoff(failures)
            return max(0.0, float(decision))

        # every wait comes from the hook, so stamina's own wait_* settings do not apply
        for attempt in stamina.retry_context(on=hook, attempts=self.max_attempts, timeout=None):
            with attempt:
                return fn()
        raise AssertionError("unreachable")  # the last attempt returns or raises
