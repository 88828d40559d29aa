"""Per-client rate limits: a token bucket per client in each process; beyond it, 429 with ``Retry-After``.

``KWG_RATE_LIMIT_PER_MINUTE`` requests a minute per client, with bursts up to ``KWG_RATE_LIMIT_BURST``. The
buckets live in the process (each uvicorn worker keeps its own, so the effective limit is per worker; put a shared
limit in the reverse proxy if one is needed across workers). ``0`` turns limiting off.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import TooManyRequests


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, per_minute: int, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def check(self, client_id: str) -> None:
        """Take one token for this client, or raise TooManyRequests saying when to come back."""
        if not self.enabled:
            return
        now = self.clock()
        bucket = self._buckets.get(client_id)
        if bucket is None:
            bucket = self._buckets[client_id] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        wait = math.ceil((1.0 - bucket.tokens) / self.rate)
        raise TooManyRequests(
            f"client {client_id} is over its rate limit; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
