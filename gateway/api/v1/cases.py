"""``/api/v1/cases``: keyworking cases and their lifecycle.

referred → allocated (one or two keyworkers) → intensive (12-week cycles, each ending in a review: continue or step
down) ⇄ step-down → monitoring → closed with a reason; re-escalation to intensive; inpatient while admitted. Each
move is a POST to the case's action; a move the state forbids answers 409 and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.api.deps import CallerDep
from gateway.api.v1.bodies import (
    AddedKeyworker,
    Allocation,
    CaseReferral,
    Closure,
    CycleReview,
    KeyworkerHandover,
    OnDay,
)
from gateway.api.v1.common import IdempotencyKey, act, idempotent, records
from gateway.api.v1.crud import record_routes
from gateway.api.v1.guard import authorise_write, saved_shown, shown_answer
from gateway.domain.service import new_record_id
from mappings.keyworking import lifecycle
from mappings.keyworking.records import CareTeam, CareTeamMember, KeyworkingCase, PhasePeriod, RecordId
from mappings.keyworking.terminology import CareTeamRole, KeyworkingPhase

router = APIRouter(tags=["Keyworking cases"])
record_routes(router, KeyworkingCase, "cases", creatable=False)

Step = Callable[[KeyworkingCase], KeyworkingCase]


@router.post("/cases", status_code=201, response_model=KeyworkingCase, response_model_exclude_none=True)
async def refer(
    referral: CaseReferral, request: Request, caller: CallerDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """Open a case for a young person referred to keyworking (the referred phase)."""
    case = KeyworkingCase(
        person_id=referral.person_id,
        service_model=referral.service_model,
        history=(PhasePeriod(phase=KeyworkingPhase.REFERRED, start=referral.referred_on),),
        care_team_id=referral.care_team_id,
        managing_organisation=referral.managing_organisation,
    )

    await authorise_write(request, caller, KeyworkingCase, None, new_person=referral.person_id, interaction="create")

    async def write(seed: str | None) -> Response:
        return saved_shown(caller, await records(request, caller).create(case, record_id=new_record_id(seed)), "cases")

    return await idempotent(request, caller, idempotency_key, write)


def _action(
    path: str, summary: str, body: type[OnDay], step: Callable[[KeyworkingCase, OnDay], KeyworkingCase]
) -> None:
    async def endpoint(
        case_id: RecordId, move: OnDay, request: Request, caller: CallerDep, idempotency_key: IdempotencyKey = None
    ) -> Response:
        return await act(request, caller, idempotency_key, KeyworkingCase, case_id, lambda c: step(c, move))

    endpoint.__annotations__["move"] = body
    router.add_api_route(
        f"/cases/{{case_id}}/{path}",
        endpoint,
        methods=["POST"],
        response_model=KeyworkingCase,
        response_model_exclude_none=True,
        summary=summary,
        operation_id=f"case_{path.replace('-', '_')}",
    )


def _allocate(case: KeyworkingCase, move: OnDay) -> KeyworkingCase:
    assert isinstance(move, Allocation)
    return lifecycle.allocate(case, move.keyworkers, move.on)


def _review(case: KeyworkingCase, move: OnDay) -> KeyworkingCase:
    assert isinstance(move, CycleReview)
    return lifecycle.review_cycle(case, move.decision, move.on)


def _close(case: KeyworkingCase, move: OnDay) -> KeyworkingCase:
    assert isinstance(move, Closure)
    return lifecycle.close(case, move.reason, move.on)


_action("allocation", "Allocate one or two keyworkers", Allocation, _allocate)
_action("intensive", "Start intensive support (cycle 1)", OnDay, lambda c, m: lifecycle.start_intensive(c, m.on))
_action("review", "Review an intensive cycle: continue or step down", CycleReview, _review)
_action("step-down", "Step down from intensive support", OnDay, lambda c, m: lifecycle.step_down(c, m.on))
_action("monitoring", "Start monitoring (monthly contact)", OnDay, lambda c, m: lifecycle.start_monitoring(c, m.on))
_action("re-escalation", "Back to intensive support", OnDay, lambda c, m: lifecycle.re_escalate(c, m.on))
_action("admission", "Admitted to hospital: the inpatient phase", OnDay, lambda c, m: lifecycle.admit(c, m.on))
_action("discharge", "Discharged: back to intensive support", OnDay, lambda c, m: lifecycle.discharge(c, m.on))
_action("transition", "Start transition", OnDay, lambda c, m: lifecycle.start_transition(c, m.on))
_action("closure", "Close the case with a reason", Closure, _close)


@router.post("/cases/{case_id}/keyworkers", response_model=KeyworkingCase, response_model_exclude_none=True)
async def add_keyworker(
    case_id: RecordId,
    added: AddedKeyworker,
    request: Request,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A second keyworker on an allocated case (a third is refused: 409)."""
    return await act(
        request, caller, idempotency_key, KeyworkingCase, case_id, lambda c: lifecycle.add_keyworker(c, added.keyworker)
    )


@router.post("/cases/{case_id}/keyworker-change", response_model=KeyworkingCase, response_model_exclude_none=True)
async def change_keyworker(
    case_id: RecordId,
    handover: KeyworkerHandover,
    request: Request,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Hand over from one keyworker to another; the case's care team records the change and its reason."""
    await authorise_write(request, caller, KeyworkingCase, case_id)

    async def write(_seed: str | None) -> Response:
        async with records(request, caller).together() as service:
            saved = await service.change(
                KeyworkingCase, case_id, lambda c: lifecycle.replace_keyworker(c, handover.outgoing, handover.incoming)
            )
            team_id = saved.record.care_team_id
            if team_id is not None:
                await service.change(CareTeam, team_id, lambda t: _team_handover(t, handover))
        return shown_answer(caller, saved)

    return await idempotent(request, caller, idempotency_key, write)


def _team_handover(team: CareTeam, handover: KeyworkerHandover) -> CareTeam:
    for index, member in enumerate(team.members):
        if member.role is CareTeamRole.KEYWORKER and member.end is None and member.member == handover.outgoing:
            return lifecycle.change_keyworker(
                team, index, handover.incoming, handover.on, handover.reason, handover.agency or member.agency
            )
    # The outgoing keyworker is not (or no longer) on the team: record the newcomer with the reason.
    return lifecycle.add_member(
        team,
        CareTeamMember(
            role=CareTeamRole.KEYWORKER,
            member=handover.incoming,
            agency=handover.agency,
            start=handover.on,
            change_reason=handover.reason,
        ),
    )
