"""The keyworking case state machine, and the care-team changes that go with it. Pure: records in, records out.

    referred → allocated → intensive (12-week cycles; each review: continue or step down) ⇄ step-down
             → monitoring (monthly, up to 12 months) → closed (with a reason)

plus re-escalation (step-down or monitoring back to intensive when the rating rises), inpatient (a blue rating
while allocated: keyworking continues; discharge returns to intensive) and transition (the extra-familial harm
model's last phase). A service model uses only its own phases (``terminology.SERVICE_MODELS``); a model without a
step-down phase goes from intensive straight to monitoring.

Two kinds of failure, kept apart because the API answers them differently:

- :class:`ImpossibleTransition` (409): the request is fine but the state forbids it: step-down before allocation,
  closing a closed case, a third keyworker, ending a membership twice.
- pydantic ``ValidationError`` naming the field (422): the request itself is wrong: a date before the current
  phase began, closing without a reason, allocating nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from enum import StrEnum
from typing import Any

from mappings.keyworking.errors import ImpossibleTransition
from mappings.keyworking.records import (
    Agency,
    CareTeam,
    CareTeamMember,
    KeyworkingCase,
    PersonRef,
    RatingChange,
    Recommendation,
    RecommendationStatus,
    RegisterEntry,
    field_error,
)
from mappings.keyworking.terminology import (
    SERVICE_MODELS,
    CareTeamRole,
    ClosureReason,
    KeyworkerChangeReason,
    KeyworkingPhase,
    RegisterStatus,
)

P = KeyworkingPhase

#: Every move the state machine knows, before a service model narrows it to its own phases.
TRANSITIONS: dict[KeyworkingPhase, frozenset[KeyworkingPhase]] = {
    P.REFERRED: frozenset({P.ALLOCATED, P.CLOSED}),
    P.ALLOCATED: frozenset({P.INTENSIVE, P.INPATIENT, P.CLOSED}),
    # intensive → intensive is the start of the next 12-week cycle after a "continue" review.
    P.INTENSIVE: frozenset({P.INTENSIVE, P.STEP_DOWN, P.MONITORING, P.INPATIENT, P.TRANSITION, P.CLOSED}),
    P.STEP_DOWN: frozenset({P.INTENSIVE, P.MONITORING, P.INPATIENT, P.CLOSED}),
    P.MONITORING: frozenset({P.INTENSIVE, P.TRANSITION, P.INPATIENT, P.CLOSED}),
    P.INPATIENT: frozenset({P.INTENSIVE, P.CLOSED}),
    P.TRANSITION: frozenset({P.CLOSED}),
    P.CLOSED: frozenset(),
}

_WHY_NOT: dict[KeyworkingPhase, str] = {
    P.REFERRED: "allocate one or two keyworkers first",
    P.CLOSED: "a closed case stays closed; refer the young person again to open a new case",
    P.TRANSITION: "a case in transition can only close",
}


class ReviewDecision(StrEnum):
    """What a 12-week intensive cycle review decides."""

    CONTINUE = "continue"
    STEP_DOWN = "step-down"


def allowed_moves(case: KeyworkingCase) -> frozenset[KeyworkingPhase]:
    """The phases this case can move to next under its service model."""
    phases = SERVICE_MODELS[case.service_model].phases
    allowed = TRANSITIONS[case.phase] & phases
    if case.phase is P.INTENSIVE and P.STEP_DOWN in phases:
        allowed -= {P.MONITORING}  # with a step-down phase, monitoring comes after it
    if case.phase is P.INTENSIVE and SERVICE_MODELS[case.service_model].cycle_weeks is None:
        allowed -= {P.INTENSIVE}  # no cycles, so no next cycle
    return allowed


def move(
    case: KeyworkingCase,
    to: KeyworkingPhase,
    on: date,
    *,
    closure_reason: ClosureReason | None = None,
    keyworkers: Sequence[PersonRef] | None = None,
) -> KeyworkingCase:
    """The case moved to phase ``to`` on day ``on``; refuses moves the state machine does not allow."""
    current = case.phase
    if to not in allowed_moves(case):
        if current is P.CLOSED:
            message = "the case is already closed; " + _WHY_NOT[P.CLOSED]
        else:
            why = _WHY_NOT.get(current, f"from {current.value} it can move to {_list(allowed_moves(case))}")
            message = f"a case in phase {current.value} cannot move to {to.value}: {why}"
            if to not in SERVICE_MODELS[case.service_model].phases:
                message = f"the {case.service_model.value} service model has no {to.value} phase"
        raise ImpossibleTransition(message, state=current.value, field="phase", requested=to.value)
    if on < case.phase_since:
        raise field_error(
            "KeyworkingCase", ("on",), f"is before the current phase began ({case.phase_since.isoformat()})", on
        )
    update: dict[str, Any] = {}
    if to is P.CLOSED:
        if closure_reason is None:
            raise field_error("KeyworkingCase", ("closure_reason",), "is required to close a case", None)
        update["closure_reason"] = closure_reason
    elif closure_reason is not None:
        raise field_error("KeyworkingCase", ("closure_reason",), "is only for closing a case", closure_reason)
    if to is P.ALLOCATED:
        chosen = list(keyworkers or ())
        if not chosen:
            raise field_error("KeyworkingCase", ("keyworkers",), "allocation needs one or two keyworkers", [])
        _check_keyworker_count(case, len(chosen))
        update["keyworkers"] = chosen
    elif keyworkers is not None:
        raise field_error("KeyworkingCase", ("keyworkers",), "are set by allocation or a keyworker change", None)
    cycle = None
    if to is P.INTENSIVE:
        cycle = max((p.cycle or 0 for p in case.history), default=0) + 1
    history = [p.model_dump() for p in case.history]
    history[-1]["end"] = on
    history.append({"phase": to, "start": on, "end": None, "cycle": cycle})
    return KeyworkingCase.model_validate({**case.model_dump(), **update, "history": history})


def _list(phases: frozenset[KeyworkingPhase]) -> str:
    names = [p.value for p in KeyworkingPhase if p in phases]
    return ", ".join(names) if names else "nothing"


def _check_keyworker_count(case: KeyworkingCase, count: int) -> None:
    limit = SERVICE_MODELS[case.service_model].max_keyworkers
    if count > limit:
        raise ImpossibleTransition(
            f"a case has at most {limit} keyworkers; this would give it {count}",
            state=f"{len(case.keyworkers)} keyworkers",
            field="keyworkers",
            requested=f"{count} keyworkers",
        )


# -- the named moves (what the domain API offers) -------------------------------------------------------------------


def allocate(case: KeyworkingCase, keyworkers: Sequence[PersonRef], on: date) -> KeyworkingCase:
    return move(case, P.ALLOCATED, on, keyworkers=keyworkers)


def start_intensive(case: KeyworkingCase, on: date) -> KeyworkingCase:
    """Allocated → intensive (cycle 1)."""
    if case.phase is not P.ALLOCATED:
        raise ImpossibleTransition(
            f"intensive support starts after allocation; the case is {case.phase.value}",
            state=case.phase.value,
            field="phase",
            requested=P.INTENSIVE.value,
        )
    return move(case, P.INTENSIVE, on)


def review_cycle(case: KeyworkingCase, decision: ReviewDecision, on: date) -> KeyworkingCase:
    """The end-of-cycle review: continue (the next 12-week cycle) or step down (monitoring if no step-down)."""
    if case.phase is not P.INTENSIVE:
        raise ImpossibleTransition(
            f"only an intensive cycle is reviewed; the case is {case.phase.value}",
            state=case.phase.value,
            field="phase",
            requested=f"review: {decision.value}",
        )
    if decision is ReviewDecision.CONTINUE:
        return move(case, P.INTENSIVE, on)
    has_step_down = P.STEP_DOWN in SERVICE_MODELS[case.service_model].phases
    return move(case, P.STEP_DOWN if has_step_down else P.MONITORING, on)


def step_down(case: KeyworkingCase, on: date) -> KeyworkingCase:
    return move(case, P.STEP_DOWN, on)


def start_monitoring(case: KeyworkingCase, on: date) -> KeyworkingCase:
    return move(case, P.MONITORING, on)


def re_escalate(case: KeyworkingCase, on: date) -> KeyworkingCase:
    """Back to intensive (a new cycle) from step-down or monitoring, when the rating rises."""
    if case.phase not in (P.STEP_DOWN, P.MONITORING):
        raise ImpossibleTransition(
            f"re-escalation is from step-down or monitoring; the case is {case.phase.value}",
            state=case.phase.value,
            field="phase",
            requested=P.INTENSIVE.value,
        )
    return move(case, P.INTENSIVE, on)


def admit(case: KeyworkingCase, on: date) -> KeyworkingCase:
    """Admitted to hospital (a blue rating): keyworking continues in the inpatient phase."""
    return move(case, P.INPATIENT, on)


def discharge(case: KeyworkingCase, on: date) -> KeyworkingCase:
    """Discharged from hospital: back to intensive support (a new cycle)."""
    if case.phase is not P.INPATIENT:
        raise ImpossibleTransition(
            f"only an inpatient case is discharged; the case is {case.phase.value}",
            state=case.phase.value,
            field="phase",
            requested=P.INTENSIVE.value,
        )
    return move(case, P.INTENSIVE, on)


def start_transition(case: KeyworkingCase, on: date) -> KeyworkingCase:
    return move(case, P.TRANSITION, on)


def close(case: KeyworkingCase, reason: ClosureReason, on: date) -> KeyworkingCase:
    return move(case, P.CLOSED, on, closure_reason=reason)


# -- keyworkers on a case -------------------------------------------------------------------------------------------


def add_keyworker(case: KeyworkingCase, keyworker: PersonRef) -> KeyworkingCase:
    """A second keyworker; a third is refused."""
    _check_staffed(case, "add a keyworker")
    _check_keyworker_count(case, len(case.keyworkers) + 1)
    return KeyworkingCase.model_validate({**case.model_dump(), "keyworkers": [*case.keyworkers, keyworker]})


def replace_keyworker(case: KeyworkingCase, outgoing: PersonRef, incoming: PersonRef) -> KeyworkingCase:
    """One keyworker handed over to another (record why on the care team: :func:`change_keyworker`)."""
    _check_staffed(case, "change a keyworker")
    if outgoing not in case.keyworkers:
        raise ImpossibleTransition(
            f"{outgoing.name} is not a keyworker on this case",
            state=", ".join(k.name for k in case.keyworkers),
            field="keyworkers",
            requested=f"replace {outgoing.name}",
        )
    keyworkers = [incoming if k == outgoing else k for k in case.keyworkers]
    return KeyworkingCase.model_validate({**case.model_dump(), "keyworkers": keyworkers})


def _check_staffed(case: KeyworkingCase, what: str) -> None:
    if case.phase in (P.REFERRED, P.CLOSED):
        raise ImpossibleTransition(
            f"cannot {what} to a case in phase {case.phase.value}"
            + ("; allocate instead" if case.phase is P.REFERRED else ""),
            state=case.phase.value,
            field="keyworkers",
            requested=what,
        )


# -- care team membership -------------------------------------------------------------------------------------------


def add_member(team: CareTeam, member: CareTeamMember) -> CareTeam:
    """The team with a new member; a third keyworker at the same time is refused."""
    if member.role is CareTeamRole.KEYWORKER:
        current = [m for m in team.members if m.role is CareTeamRole.KEYWORKER and m.active_on(member.start)]
        if len(current) >= 2:
            raise ImpossibleTransition(
                f"the team already has two keyworkers on {member.start.isoformat()} "
                f"({', '.join(m.member.name for m in current)}); end one first or record a keyworker change",
                state="2 keyworkers",
                field="members",
                requested="a third keyworker",
            )
    return CareTeam.model_validate({**team.model_dump(), "members": [*team.members, member]})


def end_member(team: CareTeam, index: int, on: date) -> CareTeam:
    """The team with member ``index``'s membership ending on ``on``."""
    if not 0 <= index < len(team.members):
        raise field_error("CareTeam", ("members", index), "there is no such member", index)
    member = team.members[index]
    if member.end is not None:
        raise ImpossibleTransition(
            f"{member.member.name}'s membership already ended on {member.end.isoformat()}",
            state="ended",
            field=f"members[{index}].end",
            requested=on.isoformat(),
        )
    if on < member.start:
        raise field_error("CareTeam", ("members", index, "end"), "is before the membership began", on)
    members = list(team.members)
    members[index] = member.model_copy(update={"end": on})
    return CareTeam.model_validate({**team.model_dump(), "members": [m.model_dump() for m in members]})


def change_keyworker(
    team: CareTeam,
    outgoing_index: int,
    incoming: PersonRef,
    on: date,
    reason: KeyworkerChangeReason,
    agency: Agency | None = None,
) -> CareTeam:
    """One keyworker ends and another starts the same day, with the reason recorded on the newcomer."""
    if not 0 <= outgoing_index < len(team.members) or team.members[outgoing_index].role is not CareTeamRole.KEYWORKER:
        raise field_error("CareTeam", ("members", outgoing_index), "is not a keyworker of this team", outgoing_index)
    ended = end_member(team, outgoing_index, on)
    newcomer = CareTeamMember(
        role=CareTeamRole.KEYWORKER, member=incoming, agency=agency, start=on, change_reason=reason
    )
    return add_member(ended, newcomer)


# -- register entries -----------------------------------------------------------------------------------------------

R = RegisterStatus

#: referral → screening → (declined | on register) → closed; a referral may be declined or accepted at once.
REGISTER_TRANSITIONS: dict[RegisterStatus, frozenset[RegisterStatus]] = {
    R.REFERRAL: frozenset({R.SCREENING, R.ON_REGISTER, R.DECLINED}),
    R.SCREENING: frozenset({R.ON_REGISTER, R.DECLINED}),
    R.ON_REGISTER: frozenset({R.CLOSED}),
    R.DECLINED: frozenset(),
    R.CLOSED: frozenset(),
}

#: Statuses in which rating decisions are recorded (screening rates the risk; the register keeps rating it).
RATED_STATUSES = frozenset({R.SCREENING, R.ON_REGISTER})


def change_register_status(entry: RegisterEntry, to: RegisterStatus, on: date) -> RegisterEntry:
    """The entry moved to status ``to`` on day ``on``; refuses moves the register's state machine does not allow."""
    if to not in REGISTER_TRANSITIONS[entry.status]:
        allowed = ", ".join(s.value for s in RegisterStatus if s in REGISTER_TRANSITIONS[entry.status]) or "nothing"
        raise ImpossibleTransition(
            f"a register entry that is {entry.status.value} cannot become {to.value} (it can become {allowed})",
            state=entry.status.value,
            field="status",
            requested=to.value,
        )
    if on < entry.referred_on:
        raise field_error("RegisterEntry", ("on",), "is before the referral", on)
    last = entry.current_rating
    if last is not None and on < last.at.date():
        raise field_error("RegisterEntry", ("on",), "is before the last rating decision", on)
    ended = to in (R.DECLINED, R.CLOSED)
    return RegisterEntry.model_validate({**entry.model_dump(), "status": to, "ended_on": on if ended else None})


def rate(entry: RegisterEntry, change: RatingChange) -> RegisterEntry:
    """The entry with one more rating decision (the history only grows, in time order)."""
    if entry.status not in RATED_STATUSES:
        raise ImpossibleTransition(
            f"a register entry that is {entry.status.value} is not rated; ratings are recorded during screening "
            "and while on the register",
            state=entry.status.value,
            field="ratings",
            requested=change.rating.value,
        )
    last = entry.current_rating
    if last is not None and change.at < last.at:
        raise field_error("RatingChange", ("at",), f"is before the last rating decision ({last.at.isoformat()})", None)
    return RegisterEntry.model_validate({**entry.model_dump(), "ratings": [*entry.ratings, change]})


def check_history(case: KeyworkingCase) -> None:
    """Refuse a case whose phase history is not a path the state machine allows (for whole-record writes)."""
    partial = case.model_copy(update={"history": case.history[:1], "keyworkers": (), "closure_reason": None})
    if case.history[0].phase is not P.REFERRED:
        raise ImpossibleTransition(
            "a case starts with its referral", state="new", field="history[0].phase", requested=case.history[0].phase
        )
    for i, period in enumerate(case.history[1:], start=1):
        if period.phase not in allowed_moves(partial):
            raise ImpossibleTransition(
                f"history[{i}]: a case in phase {partial.phase.value} cannot move to {period.phase.value}",
                state=partial.phase.value,
                field=f"history[{i}].phase",
                requested=period.phase.value,
            )
        partial = partial.model_copy(update={"history": case.history[: i + 1]})


# -- C(E)TR recommendations -----------------------------------------------------------------------------------------

S = RecommendationStatus

#: requested → accepted → in-progress → completed; cancelled or failed from any open status. Done is done.
RECOMMENDATION_TRANSITIONS: dict[RecommendationStatus, frozenset[RecommendationStatus]] = {
    S.REQUESTED: frozenset({S.ACCEPTED, S.IN_PROGRESS, S.COMPLETED, S.CANCELLED, S.FAILED}),
    S.ACCEPTED: frozenset({S.IN_PROGRESS, S.COMPLETED, S.CANCELLED, S.FAILED}),
    S.IN_PROGRESS: frozenset({S.COMPLETED, S.CANCELLED, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
    S.FAILED: frozenset(),
}


def update_recommendation(recommendation: Recommendation, status: RecommendationStatus) -> Recommendation:
    """The owner's status update; refuses going back (in-progress → accepted) and reopening a finished one."""
    if status is recommendation.status:
        return recommendation
    if status not in RECOMMENDATION_TRANSITIONS[recommendation.status]:
        allowed = ", ".join(s.value for s in S if s in RECOMMENDATION_TRANSITIONS[recommendation.status])
        raise ImpossibleTransition(
            f"a recommendation that is {recommendation.status.value} cannot become {status.value}"
            + (f" (it can become {allowed})" if allowed else "; it is finished"),
            state=recommendation.status.value,
            field="status",
            requested=status.value,
        )
    return recommendation.model_copy(update={"status": status})
