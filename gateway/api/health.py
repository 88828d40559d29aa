"""Liveness and readiness."""

from __future__ import annotations

import os

import orjson
import redis
import redis.asyncio
from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.settings import Settings
from gateway.store.db import ping

router = APIRouter(prefix="/health", tags=["health"])


async def _broker(settings: Settings) -> str:
    """Redis answers PING within a second; the embedded broker's folder is writable."""
    if settings.broker_url is None:
        folder = settings.embedded_broker_folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"error: {type(exc).__name__}"
        return "ok" if os.access(folder, os.W_OK) else "error: the embedded broker folder is not writable"
    if not settings.broker_url.startswith(("redis://", "rediss://")):
        return "ok"  # another transport: not checked here
    client = redis.asyncio.Redis.from_url(settings.broker_url, socket_connect_timeout=1, socket_timeout=1)
    try:
        await client.ping()
        return "ok"
    except redis.RedisError as exc:
        return f"error: {type(exc).__name__}"
    finally:
        await client.aclose()


@router.get("/live")
async def live() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get("/ready")
async def ready(request: Request) -> Response:
    checks: dict[str, str] = {}
    try:
        await ping(request.app.state.engine)
        checks["database"] = "ok"
    except Exception as exc:  # readiness reports the failure instead of raising it
        checks["database"] = f"error: {type(exc).__name__}"
    checks["broker"] = await _broker(request.app.state.settings)
    ok = all(v == "ok" for v in checks.values())
    return Response(
        orjson.dumps({"status": "ok" if ok else "unavailable", "checks": checks}),
        status_code=200 if ok else 503,
        media_type="application/json",
    )
