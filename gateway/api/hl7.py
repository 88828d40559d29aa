"""``/admin/hl7``: the HL7 v2 message log: cohort messages (raw while kept, parsed summary, ACK sent, processing
status and error), reprocessing after a fix, and the counts of everything received (including the messages about
people outside the cohort, which are counted and not kept)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.api.deps import MAX_ROW_ID, CallerDep, RowId
from gateway.errors import NotFound
from gateway.hl7v2 import log
from gateway.store.timeutil import to_instant

router = APIRouter(prefix="/admin/hl7", tags=["Operations"])


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _message(m: log.LoggedMessage, *, with_raw: bool = False) -> dict[str, Any]:
    out = asdict(m)
    out.pop("raw")
    out["received_at"] = to_instant(m.received_at)
    out["processed_at"] = None if m.processed_at is None else to_instant(m.processed_at)
    out["summary"] = None if m.summary is None else orjson.loads(m.summary)
    if with_raw:
        out["raw"] = None if m.raw is None else m.raw.decode("utf-8", "replace").replace("\r", "\n")
    return out


@router.get("/messages")
async def list_messages(
    request: Request,
    caller: CallerDep,
    status: Annotated[str | None, Query(pattern="^(received|processed|failed)$")] = None,
    sending_facility: str | None = None,
    after: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    """Cohort messages in the order received; ``status=failed`` lists the ones to look at."""
    rows = await log.list_messages(
        request.app.state.engine, status=status, sending_facility=sending_facility, after=after, limit=limit
    )
    return _json({"items": [_message(m) for m in rows], "next_after": rows[-1].id if len(rows) == limit else None})


@router.get("/messages/{message_id}")
async def read_message(message_id: RowId, request: Request, caller: CallerDep) -> Response:
    """One message with its raw content (segments on lines), while the retention period keeps it."""
    found = await log.get_message(request.app.state.engine, message_id)
    if found is None:
        raise NotFound(f"there is no HL7 message {message_id}")
    return _json(_message(found, with_raw=True))


@router.post("/messages/{message_id}/reprocess", status_code=202)
async def reprocess_message(message_id: RowId, request: Request, caller: CallerDep) -> Response:
    """Queue a message again (after the mapping or the data was fixed); 404 if unknown, 409-free: idempotent."""
    if await log.get_message(request.app.state.engine, message_id) is None:
        raise NotFound(f"there is no HL7 message {message_id}")
    queued = await log.reprocess(request.app.state.engine, [message_id])
    return _json({"queued": queued}, status=202)


@router.post("/messages/reprocess", status_code=202)
async def reprocess_failed(request: Request, caller: CallerDep) -> Response:
    """Queue every failed message again."""
    return _json({"queued": await log.reprocess(request.app.state.engine)}, status=202)


@router.get("/counts")
async def counts(
    request: Request, caller: CallerDep, since: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None
) -> Response:
    """Messages received per day, sender, type and outcome (stored, duplicate, not_in_cohort, rejected)."""
    rows = await log.feed_counts(request.app.state.engine, since_day=since)
    keys = ("day", "sending_facility", "message_type", "outcome", "count")
    return _json({"items": [dict(zip(keys, r, strict=True)) for r in rows]})
