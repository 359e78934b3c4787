"""Login throttling with the ``limits`` library: in memory, or Redis when configured."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter


class Throttle:
    """Counts attempts per key in a moving window; shared by API replicas through Redis."""

    def __init__(self, storage_uri: str = "memory://") -> None:
        self._storage = storage_from_string(storage_uri)
        self._limiter = MovingWindowRateLimiter(self._storage)

    def hit(self, limit: str, *keys: str) -> int | None:
        """Record one attempt. Returns None if allowed, else seconds until the next one is."""
        item: RateLimitItem = parse(limit)
        if self._limiter.hit(item, *keys):
            return None
        stats = self._limiter.get_window_stats(item, *keys)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def reset(self) -> None:
        self._storage.reset()
