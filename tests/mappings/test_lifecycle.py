"""The case state machine: every allowed transition works, and impossible ones fail with the state and field.

Cases are brought to each phase by walking the machine from referral, so the test cannot pass on a hand-built
state the machine could never reach.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from mappings.keyworking import lifecycle
from mappings.keyworking.errors import ImpossibleTransition
from mappings.keyworking.lifecycle import ReviewDecision
from mappings.keyworking.records import Agency, CareTeam, CareTeamMember, KeyworkingCase, PersonRef
from mappings.keyworking.terminology import (
    SERVICE_MODELS,
    CareTeamRole,
    ClosureReason,
    KeyworkerChangeReason,
    KeyworkingPhase,
    ServiceModel,
)

P = KeyworkingPhase
START = date(2025, 1, 6)
KIM = PersonRef(name="Kim Ashworth", reference="Practitioner/kim")
LEE = PersonRef(name="Lee Okafor", reference="Practitioner/lee")
MAX = PersonRef(name="Max Dunn")
SAM = PersonRef(name="Sam Patel", reference="Practitioner/sam")

#: A path from referral to each phase, for each model (the phases the model has).
PATHS: dict[KeyworkingPhase, list[KeyworkingPhase]] = {
    P.REFERRED: [],
    P.ALLOCATED: [P.ALLOCATED],
    P.INTENSIVE: [P.ALLOCATED, P.INTENSIVE],
    P.STEP_DOWN: [P.ALLOCATED, P.INTENSIVE, P.STEP_DOWN],
    P.MONITORING: [P.ALLOCATED, P.INTENSIVE, P.MONITORING],
    P.INPATIENT: [P.ALLOCATED, P.INPATIENT],
    P.TRANSITION: [P.ALLOCATED, P.INTENSIVE, P.TRANSITION],
    P.CLOSED: [P.CLOSED],
}


def referred(model: ServiceModel) -> KeyworkingCase:
    return KeyworkingCase.model_validate(
        {
            "id": "case-1",
            "person_id": "yp-1",
            "service_model": model,
            "history": [{"phase": "referred", "start": START}],
        }
    )


def step(case: KeyworkingCase, to: KeyworkingPhase, days: int = 7) -> KeyworkingCase:
    on = case.phase_since + timedelta(days=days)
    if to is P.ALLOCATED:
        return lifecycle.allocate(case, [KIM], on)
    if to is P.CLOSED:
        return lifecycle.close(case, ClosureReason.GOALS_MET, on)
    return lifecycle.move(case, to, on)


def case_in(model: ServiceModel, phase: KeyworkingPhase) -> KeyworkingCase:
    case = referred(model)
    path = PATHS[phase]
    if phase is P.MONITORING and P.STEP_DOWN in SERVICE_MODELS[model].phases:
        path = [P.ALLOCATED, P.INTENSIVE, P.STEP_DOWN, P.MONITORING]
    for to in path:
        case = step(case, to)
    assert case.phase is phase
    return case


REACHABLE = [(m, p) for m in ServiceModel for p in KeyworkingPhase if p in SERVICE_MODELS[m].phases]
ALLOWED = [(m, p, to) for m, p in REACHABLE for to in sorted(lifecycle.allowed_moves(case_in(m, p)))]


def test_the_allowed_table_is_the_documented_machine() -> None:
    nhs = {
        p: lifecycle.allowed_moves(case_in(ServiceModel.NHS_LD_AUTISM, p))
        for p in SERVICE_MODELS[ServiceModel.NHS_LD_AUTISM].phases
    }
    assert nhs == {
        P.REFERRED: {P.ALLOCATED, P.CLOSED},
        P.ALLOCATED: {P.INTENSIVE, P.INPATIENT, P.CLOSED},
        P.INTENSIVE: {P.INTENSIVE, P.STEP_DOWN, P.INPATIENT, P.CLOSED},
        P.STEP_DOWN: {P.INTENSIVE, P.MONITORING, P.INPATIENT, P.CLOSED},
        P.MONITORING: {P.INTENSIVE, P.INPATIENT, P.CLOSED},
        P.INPATIENT: {P.INTENSIVE, P.CLOSED},
        P.CLOSED: set(),
    }
    efh = lifecycle.allowed_moves(case_in(ServiceModel.EXTRA_FAMILIAL_HARM, P.INTENSIVE))
    assert efh == {P.INTENSIVE, P.MONITORING, P.TRANSITION, P.CLOSED}  # delivery → monitoring, no step-down
    home = lifecycle.allowed_moves(case_in(ServiceModel.CHILDRENS_HOME, P.INTENSIVE))
    assert home == {P.CLOSED}  # weekly sessions until the placement ends: no cycles


@pytest.mark.parametrize(("model", "phase", "to"), ALLOWED, ids=lambda v: str(getattr(v, "value", v)))
def test_every_allowed_transition(model: ServiceModel, phase: KeyworkingPhase, to: KeyworkingPhase) -> None:
    before = case_in(model, phase)
    after = step(before, to, days=3)
    assert after.phase is to
    assert after.phase_since == before.phase_since + timedelta(days=3)
    assert after.history[:-2] == before.history[:-1]
    assert after.history[-2].end == after.phase_since  # the old phase ends the day the new one starts
    assert after.history[-2].phase is phase
    if to is P.INTENSIVE:
        previous = [p.cycle for p in before.history if p.cycle]
        assert after.cycle == (max(previous) + 1 if previous else 1)
    else:
        assert after.cycle is None
    assert (after.closure_reason is not None) == (to is P.CLOSED)


FORBIDDEN = [
    (P.REFERRED, P.STEP_DOWN, "allocate one or two keyworkers first"),
    (P.REFERRED, P.INTENSIVE, "allocate one or two keyworkers first"),
    (P.REFERRED, P.MONITORING, "allocate one or two keyworkers first"),
    (P.ALLOCATED, P.STEP_DOWN, "from allocated it can move to intensive, inpatient, closed"),
    (P.ALLOCATED, P.MONITORING, "from allocated it can move to intensive, inpatient, closed"),
    (P.INTENSIVE, P.ALLOCATED, "cannot move to allocated"),
    (P.INTENSIVE, P.MONITORING, "cannot move to monitoring"),
    (P.MONITORING, P.STEP_DOWN, "cannot move to step-down"),
    (P.CLOSED, P.CLOSED, "the case is already closed"),
    (P.CLOSED, P.INTENSIVE, "the case is already closed"),
    (P.CLOSED, P.REFERRED, "the case is already closed"),
]


@pytest.mark.parametrize(("phase", "to", "message"), FORBIDDEN, ids=lambda v: str(getattr(v, "value", v)))
def test_forbidden_transitions_name_the_state(phase: KeyworkingPhase, to: KeyworkingPhase, message: str) -> None:
    case = case_in(ServiceModel.NHS_LD_AUTISM, phase)
    with pytest.raises(ImpossibleTransition) as caught:
        step(case, to)
    assert caught.value.state == phase.value
    assert caught.value.field == "phase"
    assert caught.value.requested == to.value
    assert message in caught.value.message


def test_step_down_before_allocation() -> None:
    with pytest.raises(ImpossibleTransition, match="referred cannot move to step-down: allocate"):
        lifecycle.step_down(referred(ServiceModel.NHS_LD_AUTISM), START)


def test_closing_a_closed_case() -> None:
    closed = lifecycle.close(referred(ServiceModel.NHS_LD_AUTISM), ClosureReason.DECLINED, START)
    with pytest.raises(ImpossibleTransition, match="already closed") as caught:
        lifecycle.close(closed, ClosureReason.GOALS_MET, START)
    assert caught.value.state == "closed"


def test_a_model_without_the_phase_says_so() -> None:
    case = case_in(ServiceModel.CHILDRENS_HOME, P.INTENSIVE)
    with pytest.raises(ImpossibleTransition, match="childrens-home service model has no step-down phase"):
        lifecycle.step_down(case, START + timedelta(days=60))


def test_a_third_keyworker_is_refused() -> None:
    case = lifecycle.allocate(referred(ServiceModel.NHS_LD_AUTISM), [KIM], START)
    two = lifecycle.add_keyworker(case, LEE)
    assert two.keyworkers == (KIM, LEE)
    with pytest.raises(ImpossibleTransition) as caught:
        lifecycle.add_keyworker(two, MAX)
    assert caught.value.field == "keyworkers" and caught.value.state == "2 keyworkers"
    with pytest.raises(ImpossibleTransition):
        lifecycle.allocate(referred(ServiceModel.NHS_LD_AUTISM), [KIM, LEE, MAX], START)


def test_keyworkers_only_on_an_open_allocated_case() -> None:
    with pytest.raises(ImpossibleTransition, match="allocate instead"):
        lifecycle.add_keyworker(referred(ServiceModel.NHS_LD_AUTISM), KIM)
    case = lifecycle.allocate(referred(ServiceModel.NHS_LD_AUTISM), [KIM], START)
    assert lifecycle.replace_keyworker(case, KIM, LEE).keyworkers == (LEE,)
    with pytest.raises(ImpossibleTransition, match="Max Dunn is not a keyworker"):
        lifecycle.replace_keyworker(case, MAX, LEE)


def test_reviews_continue_or_step_down() -> None:
    case = case_in(ServiceModel.NHS_LD_AUTISM, P.INTENSIVE)
    again = lifecycle.review_cycle(case, ReviewDecision.CONTINUE, case.phase_since + timedelta(weeks=12))
    assert (again.phase, again.cycle) == (P.INTENSIVE, 2)
    down = lifecycle.review_cycle(again, ReviewDecision.STEP_DOWN, again.phase_since + timedelta(weeks=12))
    assert down.phase is P.STEP_DOWN
    back = lifecycle.re_escalate(down, down.phase_since + timedelta(days=10))
    assert (back.phase, back.cycle) == (P.INTENSIVE, 3)
    efh = case_in(ServiceModel.EXTRA_FAMILIAL_HARM, P.INTENSIVE)
    assert lifecycle.review_cycle(efh, ReviewDecision.STEP_DOWN, START + timedelta(days=90)).phase is P.MONITORING
    with pytest.raises(ImpossibleTransition, match="only an intensive cycle is reviewed"):
        lifecycle.review_cycle(down, ReviewDecision.CONTINUE, START + timedelta(days=400))


def test_named_moves_refuse_the_wrong_starting_phase() -> None:
    allocated = case_in(ServiceModel.NHS_LD_AUTISM, P.ALLOCATED)
    with pytest.raises(ImpossibleTransition, match="re-escalation is from step-down or monitoring"):
        lifecycle.re_escalate(allocated, START + timedelta(days=30))
    with pytest.raises(ImpossibleTransition, match="only an inpatient case is discharged"):
        lifecycle.discharge(allocated, START + timedelta(days=30))
    intensive = case_in(ServiceModel.NHS_LD_AUTISM, P.INTENSIVE)
    with pytest.raises(ImpossibleTransition, match="intensive support starts after allocation"):
        lifecycle.start_intensive(intensive, START + timedelta(days=30))
    inpatient = lifecycle.admit(allocated, START + timedelta(days=20))
    assert lifecycle.discharge(inpatient, START + timedelta(days=40)).phase is P.INTENSIVE


def test_bad_requests_are_validation_errors_naming_the_field() -> None:
    case = case_in(ServiceModel.NHS_LD_AUTISM, P.ALLOCATED)
    with pytest.raises(ValidationError) as early:
        lifecycle.move(case, P.INTENSIVE, case.phase_since - timedelta(days=1))
    assert early.value.errors()[0]["loc"] == ("on",)
    with pytest.raises(ValidationError) as no_reason:
        lifecycle.move(case, P.CLOSED, case.phase_since)
    assert no_reason.value.errors()[0]["loc"] == ("closure_reason",)
    with pytest.raises(ValidationError) as nobody:
        lifecycle.allocate(referred(ServiceModel.NHS_LD_AUTISM), [], START)
    assert nobody.value.errors()[0]["loc"] == ("keyworkers",)


def _team() -> CareTeam:
    return CareTeam(
        id="team-1",
        person_id="yp-1",
        members=(
            CareTeamMember(role=CareTeamRole.KEYWORKER, member=KIM, start=START),
            CareTeamMember(role=CareTeamRole.KEYWORKER, member=LEE, start=START),
            CareTeamMember(role=CareTeamRole.SOCIAL_WORKER, member=SAM, agency=Agency(ods_code="820"), start=START),
        ),
    )


def test_care_team_refuses_a_third_keyworker_at_once() -> None:
    later = START + timedelta(days=30)
    with pytest.raises(ImpossibleTransition, match="already has two keyworkers") as caught:
        lifecycle.add_member(_team(), CareTeamMember(role=CareTeamRole.KEYWORKER, member=MAX, start=later))
    assert caught.value.field == "members"
    # ...but a third keyworker after one has left is fine.
    ended = lifecycle.end_member(_team(), 0, later)
    added = lifecycle.add_member(ended, CareTeamMember(role=CareTeamRole.KEYWORKER, member=MAX, start=later))
    assert [m.member.name for m in added.members if m.active_on(later)] == ["Lee Okafor", "Sam Patel", "Max Dunn"]


def test_keyworker_change_records_the_reason() -> None:
    on = START + timedelta(days=50)
    team = lifecycle.change_keyworker(_team(), 1, MAX, on, KeyworkerChangeReason.YOUNG_PERSON_ASKED)
    assert team.members[1].end == on
    newcomer = team.members[-1]
    assert (newcomer.member, newcomer.start, newcomer.change_reason) == (
        MAX,
        on,
        KeyworkerChangeReason.YOUNG_PERSON_ASKED,
    )
    with pytest.raises(ImpossibleTransition, match="already ended"):
        lifecycle.end_member(team, 1, on)
    with pytest.raises(ValidationError) as not_keyworker:
        lifecycle.change_keyworker(_team(), 2, KIM, on, KeyworkerChangeReason.MANAGER_DECISION)
    assert not_keyworker.value.errors()[0]["loc"] == ("members", 2)
    with pytest.raises(ValidationError) as early:
        lifecycle.end_member(_team(), 0, START - timedelta(days=1))
    assert early.value.errors()[0]["loc"] == ("members", 0, "end")
