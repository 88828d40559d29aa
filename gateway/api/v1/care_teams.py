"""``/api/v1/care-teams``: the people around a young person across health, social care and education.

A care team is a CareTeam: each member's role, who they are, their agency and the period. Members are added and
ended, never deleted; a keyworker change ends one keyworker and starts another the same day with the reason.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from gateway.api.deps import CallerDep
from gateway.api.v1.bodies import MembershipEnd, TeamKeyworkerChange
from gateway.api.v1.common import IdempotencyKey, act
from gateway.api.v1.crud import record_routes
from mappings.keyworking import lifecycle
from mappings.keyworking.records import CareTeam, CareTeamMember, RecordId

router = APIRouter(tags=["Care teams"])
record_routes(router, CareTeam, "care-teams")


@router.post("/care-teams/{team_id}/members", response_model=CareTeam, response_model_exclude_none=True)
async def add_member(
    team_id: RecordId,
    member: CareTeamMember,
    request: Request,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Add a member with their role, agency and start (a third keyworker at once is refused: 409)."""
    return await act(request, caller, idempotency_key, CareTeam, team_id, lambda t: lifecycle.add_member(t, member))


@router.post("/care-teams/{team_id}/members/{index}/end", response_model=CareTeam, response_model_exclude_none=True)
async def end_member(
    team_id: RecordId,
    ending: MembershipEnd,
    request: Request,
    caller: CallerDep,
    index: Annotated[int, Path(ge=0, description="The member's position in members")],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """End a membership on a day (ending it twice is refused: 409)."""
    return await act(
        request, caller, idempotency_key, CareTeam, team_id, lambda t: lifecycle.end_member(t, index, ending.on)
    )


@router.post("/care-teams/{team_id}/keyworker-change", response_model=CareTeam, response_model_exclude_none=True)
async def change_keyworker(
    team_id: RecordId,
    change: TeamKeyworkerChange,
    request: Request,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """One keyworker ends and another starts the same day, with the reason for the change."""
    return await act(
        request,
        caller,
        idempotency_key,
        CareTeam,
        team_id,
        lambda t: lifecycle.change_keyworker(
            t, change.outgoing_index, change.incoming, change.on, change.reason, change.agency
        ),
    )
