"""A small async rate limiter: at most N calls in any one-second window, on an injectable clock.

PDS allows 5 transactions per second per application and answers 429 beyond that. A classic token bucket of
capacity N lets through a full bucket and then a refill within the same second (up to 2N - 1 in one window), so
this keeps the times of the last N calls instead (a sliding window): call N + 1 waits until the oldest of them is
a second old (and a little more, for network jitter). Waiters queue in arrival order behind one lock, so none starves.

The clock and the sleep are injected: tests drive a fake clock whose sleep moves time on, and never wait for real.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

WINDOW_SECONDS = 1.0
#: Calls granted at the edge of a window can arrive at PDS in a different order or closer together than they left
#: (network jitter); waiting this much longer than a second keeps them within PDS's window too.
JITTER_MARGIN_SECONDS = 0.05


class RateLimiter:
    """``await limiter.acquire()`` before each call; it returns when the call may go."""

    def __init__(
        self,
        per_second: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        margin_seconds: float = JITTER_MARGIN_SECONDS,
    ) -> None:
        if per_second < 1:
            raise ValueError("per_second must be at least 1")
        self.per_second = per_second
        self._clock = clock
        self._sleep = sleep
        self._window = WINDOW_SECONDS + margin_seconds
        self._granted: deque[float] = deque(maxlen=per_second)
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Wait for a free slot; the clock's time the call was allowed at."""
        async with self._lock:
            now = self._clock()
            if len(self._granted) == self.per_second:
                free_at = self._granted[0] + self._window
                while now < free_at:  # a sleep may wake early on a coarse clock: wait out the rest
                    await self._sleep(free_at - now)
                    now = self._clock()
            self._granted.append(now)
            return now
