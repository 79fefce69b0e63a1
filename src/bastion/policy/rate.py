"""Rate limits as token buckets: `60/minute` holds 60 tokens and refills one a second.

The limiter is state plus arithmetic; the moment is passed in (monotonic seconds), so tests
drive it with a fake clock. Buckets that have refilled completely are forgotten, so memory
follows the number of active (client, server, tool) keys, not their history.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RateLimiter"]

Key = tuple[str, ...]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    count: int
    per: float

    def level(self, now: float) -> float:
        return min(float(self.count), self.tokens + (now - self.at) * self.count / self.per)


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[Key, _Bucket] = {}

    def take(self, key: Key, limit: tuple[int, float], now: float) -> bool:
        """Spend one token of `key`'s bucket (`limit` = (count, per seconds)); False when it is empty."""
        count, per = limit
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(count), now, count, per)
        else:
            bucket.tokens, bucket.at, bucket.count, bucket.per = bucket.level(now), now, count, per
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        if len(self._buckets) > 10_000:
            self._forget_full(now)
        return True

    def _forget_full(self, now: float) -> None:
        for key in [key for key, bucket in self._buckets.items() if bucket.level(now) >= bucket.count]:
            del self._buckets[key]
