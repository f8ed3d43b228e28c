"""Token-bucket rate limiting with an injected clock.

`RateLimiter.allow(key)` says whether one more event for `key` fits: each key
earns `rate` tokens per second up to `burst`, and an event spends one. The
number of keys remembered is bounded (least recently seen forgotten first),
so a flood of distinct keys costs bounded memory; a forgotten key starts
again with a full bucket.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Hashable


class RateLimiter:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float], max_keys: int = 10_000):
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate must be positive, burst at least 1, max_keys at least 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def allow(self, key: Hashable = None) -> bool:
        now = self.clock()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed
