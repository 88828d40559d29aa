"""``/admin``: what operators need to run the sync engine: destinations and their health, the delivery log,
dead letters and their replay. (The security issue puts these behind an operator scope.)"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.api.deps import MAX_ROW_ID, CallerDep, RowId
from gateway.errors import NotFound
from gateway.store.timeutil import to_instant
from gateway.sync import deliveries, destination_store
from gateway.sync.destinations import Destination

router = APIRouter(prefix="/admin", tags=["Operations"])
JSON = "application/json"


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON)


def _instant(us: int | None) -> str | None:
    return None if us is None else to_instant(us)


def _delivery(view: deliveries.DeliveryView) -> dict[str, Any]:
    out = asdict(view)
    for key in ("created_at", "finished_at", "next_attempt_at"):
        out[key] = _instant(out[key])
    return out


def _destinations(request: Request) -> tuple[Destination, ...]:
    found: tuple[Destination, ...] = request.app.state.destinations
    return found


def _nudge(request: Request, lanes: list[tuple[str, int]]) -> int:
    from gateway.sync.worker import create_celery, nudge

    if getattr(request.app.state, "celery", None) is None:
        request.app.state.celery = create_celery(request.app.state.settings)
    return nudge(request.app.state.celery, lanes)


@router.get("/destinations")
async def list_destinations(request: Request, caller: CallerDep) -> Response:
    """Each destination: connector, recipient profile, queue depth, last success and error rate in the last hour."""
    out = []
    made = (await destination_store.list_destinations(request.app.state.engine)).live
    file_names = {d.name for d in _destinations(request)}
    listed = [("file", d) for d in _destinations(request)] + [("api", d) for d in made if d.name not in file_names]
    for source, d in listed:
        h = await deliveries.health(request.app.state.engine, d.name)
        out.append(
            {
                "name": d.name,
                "source": source,
                "connector": d.connector,
                "endpoint": str(d.endpoint),
                "recipient": d.recipient.value,
                "enabled": d.enabled,
                "queue_depth": h.pending,
                "delivered": h.delivered,
                "dead_letters": h.dead,
                "last_success": _instant(h.last_success_at),
                "attempts_last_hour": h.attempts_last_hour,
                "error_rate_last_hour": round(h.error_rate, 4),
            }
        )
    return _json({"items": out})


@router.get("/deliveries")
async def list_deliveries(
    request: Request,
    caller: CallerDep,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|dead|withheld)$")] = None,
    destination: str | None = None,
    after: Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="Deliveries with a larger id (paging)")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    """The delivery log in id order; ``status=dead`` lists the dead letters."""
    rows = await deliveries.list_deliveries(
        request.app.state.engine, status=status, destination=destination, limit=limit, after=after
    )
    return _json({"items": [_delivery(r) for r in rows], "next_after": rows[-1].id if len(rows) == limit else None})


@router.get("/deliveries/{delivery_id}")
async def read_delivery(delivery_id: RowId, request: Request, caller: CallerDep) -> Response:
    """One delivery with every attempt (outcome, HTTP status, error, duration)."""
    found = await deliveries.get_delivery(request.app.state.engine, delivery_id)
    if found is None:
        raise NotFound(f"there is no delivery {delivery_id}")
    view, attempts = found
    return _json({**_delivery(view), "attempts": [asdict(a) for a in attempts]})


@router.post("/deliveries/{delivery_id}/replay", status_code=202)
async def replay_delivery(delivery_id: RowId, request: Request, caller: CallerDep) -> Response:
    """Send a dead letter again (202: it is back in its lane)."""
    found = await deliveries.get_delivery(request.app.state.engine, delivery_id)
    if found is None:
        raise NotFound(f"there is no delivery {delivery_id}")
    lanes = await deliveries.replay(request.app.state.engine, [delivery_id])
    queued = _nudge(request, lanes)
    return _json({"replayed": len(lanes) > 0, "queued": queued > 0}, status=202)


@router.post("/deliveries/replay", status_code=202)
async def replay_dead_letters(request: Request, caller: CallerDep, destination: str | None = None) -> Response:
    """Send every dead letter (of one destination) again."""
    ids = await deliveries.dead_letter_ids(request.app.state.engine, destination)
    lanes = await deliveries.replay(request.app.state.engine, ids)
    _nudge(request, lanes)
    return _json({"replayed": len(ids)}, status=202)
