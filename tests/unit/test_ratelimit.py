"""Per-client rate limits: a burst, then the rate; 429 with Retry-After over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.errors import TooManyRequests
from gateway.ratelimit import RateLimiter
from gateway.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    for _ in range(3):
        limiter.check("a")
    with pytest.raises(TooManyRequests) as refused:
        limiter.check("a")
    assert refused.value.headers["Retry-After"] == "1"
    limiter.check("b")  # each client has its own bucket
    clock.now = 1.0
    limiter.check("a")


@given(st.lists(st.floats(0, 0.5), min_size=1, max_size=200))
def test_never_more_than_burst_plus_rate_times_time(gaps: list[float]) -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=120, burst=5, clock=clock)
    allowed = 0
    for gap in gaps:
        clock.now += gap
        try:
            limiter.check("c")
            allowed += 1
        except TooManyRequests:
            pass
    assert allowed <= 5 + 2 * clock.now + 1e-9


async def test_over_http_the_answer_is_429_with_retry_after(tmp_path: Path, sqlite_url: str) -> None:
    settings = Settings(home=tmp_path, database_url=sqlite_url, rate_limit_per_minute=60, rate_limit_burst=2)  # type: ignore[arg-type]
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        statuses = [(await client.get("/fhir/Patient/nobody")).status_code for _ in range(3)]
        assert statuses == [404, 404, 429]
        refused = await client.get("/fhir/Patient/nobody")
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["issue"][0]["code"] == "throttled"
    await app.state.engine.dispose()
