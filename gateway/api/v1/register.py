"""``/api/v1/register-entries``: Dynamic Support Register entries, their status and their rating history.

An entry is an EpisodeOfCare (type register) with a Flag for the current rating, an Observation per rating decision
and a Consent (or best-interests decision). Ratings only grow: ``POST .../ratings`` adds a decision, and the
register rules raise the Tasks it calls for (a red rating: offer a community C(E)TR) in the same transaction.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.api.access import check_person
from gateway.api.deps import CallerDep, repository
from gateway.api.v1.bodies import RegisterStatusChange
from gateway.api.v1.common import IdempotencyKey, act, audit, list_answer, records
from gateway.api.v1.crud import record_routes
from gateway.api.v1.guard import refused_by_profile
from gateway.api.v1.minimise import minimised, shows_field
from mappings.keyworking import lifecycle
from mappings.keyworking.records import RatingChange, RecordId, RegisterEntry

router = APIRouter(tags=["Dynamic Support Register"])
record_routes(router, RegisterEntry, "register-entries")


@router.post("/register-entries/{entry_id}/ratings", response_model=RegisterEntry, response_model_exclude_none=True)
async def rate(
    entry_id: RecordId,
    change: RatingChange,
    request: Request,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Record a rating decision (blue, red, amber, green) with its reason, author, time and next review date."""
    return await act(request, caller, idempotency_key, RegisterEntry, entry_id, lambda e: lifecycle.rate(e, change))


@router.get("/register-entries/{entry_id}/ratings", response_model=dict[str, list[RatingChange]])
async def rating_history(entry_id: RecordId, request: Request, caller: CallerDep) -> Response:
    """Every rating decision on the entry, oldest first."""
    entry = await records(request, caller).get(RegisterEntry, entry_id)
    await check_person(request, caller, repository(request), entry.person_id)
    if minimised(caller, entry) is None or not shows_field(caller, RegisterEntry, "ratings"):
        raise refused_by_profile(request, caller, entry.person_id, "register ratings")
    audit(request, caller, "read", [entry])
    return list_answer(list(entry.ratings))


@router.post("/register-entries/{entry_id}/status", response_model=RegisterEntry, response_model_exclude_none=True)
async def change_status(
    entry_id: RecordId,
    change: RegisterStatusChange,
    request: Request,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Move the entry on: referral → screening → on register or declined → closed."""
    return await act(
        request,
        caller,
        idempotency_key,
        RegisterEntry,
        entry_id,
        lambda e: lifecycle.change_register_status(e, change.status, change.on),
    )
