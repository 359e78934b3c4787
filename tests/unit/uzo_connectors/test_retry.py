"""UZO's one retry policy (``uzo_connectors.retry``): attempts, waits, custom delays, test mode."""

from __future__ import annotations

import time

import pytest
import stamina

from uzo_connectors.retry import RetryPolicy


class Flaky:
    """Fails ``failures`` times, then answers; records when each attempt started."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.starts: list[float] = []

    def __call__(self) -> str:
        self.starts.append(time.monotonic())
        if len(self.starts) <= self.failures:
            raise self.error(f"attempt {len(self.starts)}")
        return "ok"

    def waits(self) -> list[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:], strict=False)]


def test_waits_grow_exponentially_and_are_capped() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_base=0.5, backoff_max=3.0, jitter=0)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittered = RetryPolicy(backoff_base=0.5, backoff_max=30.0)  # jitter: up to backoff_base
    assert all(0.5 <= jittered.backoff(1) <= 1.0 for _ in range(200))
    assert all(2.0 <= jittered.backoff(3) <= 2.5 for _ in range(200))
    assert RetryPolicy(backoff_base=1.0, backoff_max=5.0).backoff(10_000) == 5.0


def test_call_retries_until_success_waiting_the_policys_backoff() -> None:
    flaky = Flaky(failures=2)
    policy = RetryPolicy(max_attempts=3, backoff_base=0.05, jitter=0)
    assert policy.call(flaky, retry_on=lambda e: isinstance(e, ConnectionError)) == "ok"
    assert len(flaky.starts) == 3
    first, second = flaky.waits()
    assert first >= 0.05
    assert second >= 0.1  # doubled


def test_call_gives_up_after_max_attempts_with_the_last_error() -> None:
    flaky = Flaky(failures=10)
    policy = RetryPolicy(max_attempts=3, backoff_base=0, jitter=0)
    with pytest.raises(ConnectionError, match="attempt 3"):
        policy.call(flaky, retry_on=lambda e: True)
    assert len(flaky.starts) == 3


def test_retry_on_can_refuse_or_name_the_wait() -> None:
    refused = Flaky(failures=1, error=ValueError)
    with pytest.raises(ValueError, match="attempt 1"):
        RetryPolicy(max_attempts=5).call(refused, retry_on=lambda e: False)
    assert len(refused.starts) == 1

    told = Flaky(failures=1)  # e.g. a Retry-After of 0.3 s instead of a 10 ms backoff
    policy = RetryPolicy(max_attempts=2, backoff_base=0.01, jitter=0)
    assert policy.call(told, retry_on=lambda e: 0.3) == "ok"
    assert told.waits()[0] >= 0.3


def test_stamina_test_mode_makes_every_wait_zero() -> None:
    slow = RetryPolicy(max_attempts=4, backoff_base=30.0, backoff_max=60.0)
    flaky = Flaky(failures=3)
    started = time.monotonic()
    with stamina.set_testing(True, attempts=10, cap=True):  # cap: keep max_attempts
        assert slow.call(flaky, retry_on=lambda e: 30.0) == "ok"
        assert slow.backoff(3) == 0.0  # the engine's own waits too
        with pytest.raises(ConnectionError):
            slow.call(Flaky(failures=9), retry_on=lambda e: True)
    assert time.monotonic() - started < 5
    assert len(flaky.starts) == 4
    assert slow.backoff(1) >= 30.0  # test mode is over


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(backoff_base=-1)
