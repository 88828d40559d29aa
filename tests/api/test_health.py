"""Readiness names each dependency: the database and the broker (Redis, or the embedded broker's folder)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.servers import IN_CI, _free_port, find_redis

REDIS = find_redis()


async def ready(settings: Settings) -> httpx.Response:
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/health/ready")
    await app.state.engine.dispose()
    return response


async def test_ready_with_the_embedded_broker(sqlite_url: str, tmp_path: Path) -> None:
    response = await ready(Settings(home=tmp_path, database_url=sqlite_url))  # type: ignore[arg-type]
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


async def test_not_ready_when_redis_is_down(sqlite_url: str, tmp_path: Path) -> None:
    broker = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there
    response = await ready(Settings(home=tmp_path, database_url=sqlite_url, broker_url=broker))  # type: ignore[arg-type]
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("error: ")


async def test_ready_with_redis(sqlite_url: str, tmp_path: Path) -> None:
    if REDIS.url is None:
        (pytest.fail if IN_CI else pytest.skip)(REDIS.reason)
    response = await ready(Settings(home=tmp_path, database_url=sqlite_url, broker_url=REDIS.url))  # type: ignore[arg-type]
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}
