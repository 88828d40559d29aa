"""Retry delays: exponential backoff with full jitter, capped, and the destination's Retry-After when it gives one."""

from __future__ import annotations

import random


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1).

    Without Retry-After: a random delay between half and all of ``base * 2**(attempt-1)``, never more than ``cap``
    (jitter spreads retries so a recovering destination is not hit by every lane at once). With Retry-After: at
    least what the destination asked for (still capped, so a bad header cannot park a lane for a day).
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling = min(cap, base * 2 ** min(attempt - 1, 32))
    delay = (rng or random).uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay
