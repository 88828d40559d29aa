"""Liveness and readiness."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.store.db import ping

router = APIRouter(prefix="/health", tags=["health"])


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
    ok = all(v == "ok" for v in checks.values())
    return Response(
        orjson.dumps({"status": "ok" if ok else "unavailable", "checks": checks}),
        status_code=200 if ok else 503,
        media_type="application/json",
    )
