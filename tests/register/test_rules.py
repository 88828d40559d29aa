"""Each register and keyworking rule with concrete dates (England's bank holidays)."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.register.config import DEFAULT_RULES, RulesConfig
from gateway.register.outcomes import Closure, Outcome, RuleTask, TaskStatus
from gateway.register.rules import (
    CaseMoved,
    ContactMade,
    Discharged,
    RatingChanged,
    ReviewHeld,
    check_discharge_hold,
    community_cetr_before_admission,
    discharge_hold,
    monitoring_ends,
    on_case_moved,
    on_contact_made,
    on_discharged,
    on_rating_changed,
    on_review_held,
)
from mappings.keyworking import lifecycle
from mappings.keyworking.errors import ImpossibleTransition
from mappings.keyworking.lifecycle import ReviewDecision
from mappings.keyworking.records import KeyworkingCase, ReviewMeeting
from mappings.keyworking.terminology import DsrRating, ReviewType, ServiceModel, TaskType
from tests.register.builders import AUTHOR, allocated, at, contact, entry, new_case, rating

D = date.fromisoformat
BLUE, RED, AMBER, GREEN = DsrRating.BLUE, DsrRating.RED, DsrRating.AMBER, DsrRating.GREEN


def by_type(outcome: Outcome) -> dict[TaskType, RuleTask]:
    tasks = {t.task_type: t for t in outcome.raise_tasks}
    assert len(tasks) == len(outcome.raise_tasks), "one Task of each type"
    return tasks


def admitted(
    on: str = "2026-12-23",
    *,
    community_cetr_on: date | None = None,
    config: RulesConfig = DEFAULT_RULES,
    adult: bool = False,
    secure: bool = False,
    out_of_area: bool = True,
) -> Outcome:
    event = RatingChanged.latest(
        entry((AMBER, "2026-01-05"), (BLUE, on)),
        community_cetr_on=community_cetr_on,
        adult=adult,
        secure=secure,
        out_of_area=out_of_area,
    )
    return on_rating_changed(event, config)


# -- red -------------------------------------------------------------------------------------------------------------


def test_red_raises_an_offer_of_a_community_cetr_due_in_five_working_days() -> None:
    outcome = on_rating_changed(RatingChanged.latest(entry((AMBER, "2026-02-02"), (RED, "2026-03-02"))))
    (task,) = outcome.raise_tasks
    assert task.task_type is TaskType.OFFER_COMMUNITY_CETR
    assert task.due == D("2026-03-09")
    assert (task.person_id, task.episode_id) == ("person-1", "dsr-1")
    assert task.trigger == "Observation/dsr-1-rating-2"
    assert task.authored_on == at("2026-03-02")
    assert task.status is TaskStatus.REQUESTED
    assert "LAEP" in task.description
    assert outcome.close_tasks == () and outcome.rating is None


def test_a_first_rating_of_red_raises_the_offer_and_red_again_does_not() -> None:
    assert by_type(on_rating_changed(RatingChanged.latest(entry((RED, "2026-03-02")))))
    again = RatingChanged.latest(entry((RED, "2026-03-02"), (RED, "2026-03-16")))
    assert on_rating_changed(again).is_empty


@pytest.mark.parametrize("new", [AMBER, GREEN])
def test_amber_and_green_raise_nothing(new: DsrRating) -> None:
    assert on_rating_changed(RatingChanged.latest(entry((RED, "2026-03-02"), (new, "2026-03-16")))).is_empty


def test_the_event_needs_a_rating_of_the_entry() -> None:
    one = entry((RED, "2026-03-02"))
    with pytest.raises(ValueError, match="one of the entry's ratings"):
        on_rating_changed(RatingChanged(one, None, rating(AMBER, "2026-03-03")))
    with pytest.raises(ValueError, match="no rating decision"):
        RatingChanged.latest(entry())


# -- blue ------------------------------------------------------------------------------------------------------------


def test_admission_on_23_december_2026_without_a_community_cetr() -> None:
    tasks = by_type(admitted("2026-12-23"))
    # 10 working days over Christmas and New Year: 25 and 28 December and 1 January are bank holidays.
    assert tasks[TaskType.POST_ADMISSION_CETR].due == D("2027-01-11")
    assert tasks[TaskType.ROOT_CAUSE_ANALYSIS].due == D("2027-01-25")  # 20 working days
    assert tasks[TaskType.INPATIENT_CETR].due == D("2027-03-23")  # CYP: 3 months
    assert tasks[TaskType.OVERSIGHT_VISIT].due == D("2027-02-03")  # child: 6 weeks
    assert {t.trigger for t in tasks.values()} == {"Observation/dsr-1-rating-2"}


def test_admission_before_easter_2027_with_the_interim_five_working_days() -> None:
    five = RulesConfig(post_admission_cetr_working_days=5)
    # Good Friday 26 March and Easter Monday 29 March 2027.
    assert by_type(admitted("2027-03-24", config=five))[TaskType.POST_ADMISSION_CETR].due == D("2027-04-02")
    assert by_type(admitted("2027-03-25", config=five))[TaskType.POST_ADMISSION_CETR].due == D("2027-04-05")


def test_a_recent_community_cetr_means_no_post_admission_review_or_rca() -> None:
    tasks = by_type(admitted("2026-12-23", community_cetr_on=D("2026-10-01")))
    assert set(tasks) == {TaskType.INPATIENT_CETR, TaskType.OVERSIGHT_VISIT}


def test_the_look_back_window_is_a_setting() -> None:
    assert community_cetr_before_admission(D("2026-06-23"), D("2026-12-23"), DEFAULT_RULES)
    assert not community_cetr_before_admission(D("2026-06-22"), D("2026-12-23"), DEFAULT_RULES)
    assert not community_cetr_before_admission(D("2026-12-24"), D("2026-12-23"), DEFAULT_RULES)
    assert not community_cetr_before_admission(None, D("2026-12-23"), DEFAULT_RULES)
    twelve = RulesConfig(community_cetr_lookback_months=12)
    assert community_cetr_before_admission(D("2026-01-10"), D("2026-12-23"), twelve)
    stale = by_type(admitted("2026-12-23", community_cetr_on=D("2026-05-01")))
    assert TaskType.POST_ADMISSION_CETR in stale and TaskType.ROOT_CAUSE_ANALYSIS in stale


def test_adults_and_secure_services_have_longer_intervals() -> None:
    adult = by_type(admitted("2026-02-10", adult=True))
    assert adult[TaskType.INPATIENT_CETR].due == D("2026-08-10")
    assert adult[TaskType.OVERSIGHT_VISIT].due == D("2026-04-07")  # 8 weeks
    assert "CTR" in adult[TaskType.INPATIENT_CETR].description
    secure = by_type(admitted("2026-02-10", adult=True, secure=True))
    assert secure[TaskType.INPATIENT_CETR].due == D("2027-02-10")


def test_oversight_visits_are_for_out_of_area_inpatients_unless_configured() -> None:
    local = by_type(admitted("2026-02-10", out_of_area=False))
    assert TaskType.OVERSIGHT_VISIT not in local
    everyone = RulesConfig(oversight_visits_out_of_area_only=False)
    assert TaskType.OVERSIGHT_VISIT in by_type(admitted("2026-02-10", out_of_area=False, config=everyone))


def test_admission_cancels_an_open_offer_of_a_community_cetr() -> None:
    red = entry((RED, "2026-12-01"))
    offer = on_rating_changed(RatingChanged.latest(red)).raise_tasks[0]
    blue = entry((RED, "2026-12-01"), (BLUE, "2026-12-23"))
    outcome = on_rating_changed(RatingChanged.latest(blue, tasks=[offer]))
    (closure,) = outcome.close_tasks
    assert (closure.task_id, closure.status) == (offer.id, Closure.CANCELLED)
    assert "2026-12-23" in closure.reason


# -- discharge -------------------------------------------------------------------------------------------------------


def test_discharge_yields_red_for_two_weeks() -> None:
    inpatient = entry((AMBER, "2026-06-01"), (BLUE, "2026-12-23"))
    outcome = on_discharged(Discharged(inpatient, at("2027-02-15"), AUTHOR))
    assert outcome.raise_tasks == () and outcome.close_tasks == ()
    assert outcome.rating is not None
    assert outcome.rating.rating is RED
    assert outcome.rating.next_review == D("2027-03-01")
    assert outcome.rating.author == AUTHOR and outcome.rating.at == at("2027-02-15")


def test_discharge_rating_and_period_are_settings() -> None:
    inpatient = entry((BLUE, "2026-12-23"))
    config = RulesConfig(post_discharge_rating=AMBER, post_discharge_minimum_weeks=4)
    change = on_discharged(Discharged(inpatient, at("2027-02-15"), AUTHOR, "Home with a support package"), config)
    assert change.rating is not None
    assert (change.rating.rating, change.rating.next_review) == (AMBER, D("2027-03-15"))
    assert change.rating.reason.endswith("Home with a support package")


@pytest.mark.parametrize("ratings", [(), ((RED, "2026-12-01"),)])
def test_only_an_inpatient_can_be_discharged(ratings: tuple[tuple[DsrRating, str], ...]) -> None:
    with pytest.raises(ImpossibleTransition) as caught:
        on_discharged(Discharged(entry(*ratings), at("2027-02-15"), AUTHOR))
    assert caught.value.field == "ratings" and caught.value.requested == "discharge"


def test_leaving_blue_cancels_the_open_inpatient_tasks_but_not_the_rca() -> None:
    admission = admitted("2026-12-23")
    after = entry((AMBER, "2026-06-01"), (BLUE, "2026-12-23"), (RED, "2027-01-05"))
    outcome = on_rating_changed(RatingChanged.latest(after, tasks=admission.raise_tasks))
    cancelled = {c.task_id for c in outcome.close_tasks if c.status is Closure.CANCELLED}
    kinds = {t.id: t.task_type for t in admission.raise_tasks}
    assert {kinds[i] for i in cancelled} == {
        TaskType.POST_ADMISSION_CETR,
        TaskType.INPATIENT_CETR,
        TaskType.OVERSIGHT_VISIT,
    }
    # Red after discharge offers a community C(E)TR again.
    assert [t.task_type for t in outcome.raise_tasks] == [TaskType.OFFER_COMMUNITY_CETR]


def test_the_discharge_hold_refuses_a_lower_rating_for_two_weeks() -> None:
    discharged = entry((BLUE, "2026-12-23"), (RED, "2027-02-15"))
    assert discharge_hold(discharged, D("2027-02-28")) is not None
    assert discharge_hold(discharged, D("2027-03-01")) is None
    with pytest.raises(ImpossibleTransition, match="at least red until 2027-03-01"):
        check_discharge_hold(discharged, rating(AMBER, "2027-02-20"))
    check_discharge_hold(discharged, rating(AMBER, "2027-03-01"))
    check_discharge_hold(discharged, rating(BLUE, "2027-02-20"))  # readmission is never refused
    check_discharge_hold(entry((RED, "2027-02-15")), rating(GREEN, "2027-02-16"))  # no discharge, no hold


# -- reviews ---------------------------------------------------------------------------------------------------------


def meeting(kind: ReviewType, day: str, **extra: object) -> ReviewMeeting:
    return ReviewMeeting.model_validate(
        {
            "id": "meeting-1",
            "person_id": "person-1",
            "register_entry_id": "dsr-1",
            "meeting_type": kind,
            "start": at(day).isoformat(),
            "panel": {"chair": AUTHOR.model_dump()},
            **extra,
        }
    )


@pytest.mark.parametrize("kind", [ReviewType.COMMUNITY_CETR, ReviewType.LAEP])
def test_a_community_cetr_or_laep_completes_the_offer(kind: ReviewType) -> None:
    offer = on_rating_changed(RatingChanged.latest(entry((RED, "2026-03-02")))).raise_tasks[0]
    event = ReviewHeld.from_meeting(meeting(kind, "2026-03-05"), tasks=[offer])
    assert event is not None
    outcome = on_review_held(event)
    assert [(c.task_id, c.status) for c in outcome.close_tasks] == [(offer.id, Closure.COMPLETED)]
    assert outcome.raise_tasks == ()


def test_a_meeting_that_has_not_taken_place_is_no_event() -> None:
    assert ReviewHeld.from_meeting(meeting(ReviewType.COMMUNITY_CETR, "2026-03-05", status="planned")) is None


def test_a_post_admission_cetr_completes_its_task_only() -> None:
    tasks = admitted("2026-12-23").raise_tasks
    event = ReviewHeld.from_meeting(meeting(ReviewType.POST_ADMISSION_CETR, "2027-01-06"), tasks=tasks)
    assert event is not None
    outcome = on_review_held(event)
    kinds = {t.id: t.task_type for t in tasks}
    assert [kinds[c.task_id] for c in outcome.close_tasks] == [TaskType.POST_ADMISSION_CETR]
    assert outcome.raise_tasks == ()


def test_an_inpatient_cetr_completes_its_task_and_schedules_the_next() -> None:
    tasks = admitted("2026-12-23").raise_tasks
    first = by_type(Outcome(tasks))[TaskType.INPATIENT_CETR]
    event = ReviewHeld.from_meeting(meeting(ReviewType.INPATIENT_CETR, "2027-03-18"), tasks=tasks)
    assert event is not None
    outcome = on_review_held(event)
    assert [c.task_id for c in outcome.close_tasks] == [first.id]
    (following,) = outcome.raise_tasks
    assert (following.task_type, following.due) == (TaskType.INPATIENT_CETR, D("2027-06-18"))
    assert following.trigger == "Encounter/meeting-1"
    # Home by then: nothing further is scheduled.
    home = ReviewHeld.from_meeting(meeting(ReviewType.INPATIENT_CETR, "2027-03-18"), still_inpatient=False)
    assert home is not None and on_review_held(home).raise_tasks == ()


def test_an_oversight_visit_completes_its_task_and_schedules_the_next() -> None:
    tasks = admitted("2026-12-23", adult=True).raise_tasks
    visit = ReviewHeld(
        ReviewType.OVERSIGHT_VISIT, "Encounter/visit-1", "person-1", at("2027-02-10"), "dsr-1", adult=True, tasks=tasks
    )
    outcome = on_review_held(visit)
    kinds = {t.id: t.task_type for t in tasks}
    assert [kinds[c.task_id] for c in outcome.close_tasks] == [TaskType.OVERSIGHT_VISIT]
    assert [(t.task_type, t.due) for t in outcome.raise_tasks] == [(TaskType.OVERSIGHT_VISIT, D("2027-04-07"))]


def test_register_reviews_and_unlinked_meetings_change_nothing() -> None:
    held = at("2027-02-10")
    assert on_review_held(ReviewHeld(ReviewType.DSR_REVIEW, "Encounter/r-1", "person-1", held, "dsr-1")).is_empty
    assert on_review_held(ReviewHeld(ReviewType.COMMUNITY_CETR, "Encounter/r-1", "person-1", held)).is_empty


# -- keyworking ------------------------------------------------------------------------------------------------------


def moved(before: KeyworkingCase | None, after: KeyworkingCase, tasks: tuple[RuleTask, ...] = ()) -> Outcome:
    return on_case_moved(CaseMoved(before, after, at(after.phase_since.isoformat()), tasks))


def test_each_intensive_cycle_raises_its_12_week_review() -> None:
    case = allocated("2026-01-12")
    cycle1 = lifecycle.start_intensive(case, D("2026-01-19"))
    (review1,) = moved(case, cycle1).raise_tasks
    assert (review1.task_type, review1.due, review1.sequence) == (TaskType.KEYWORKING_REVIEW, D("2026-04-13"), 1)
    assert (review1.episode_id, review1.trigger) == ("case-1", "EpisodeOfCare/case-1")

    held = ReviewHeld(
        ReviewType.KEYWORKING_REVIEW,
        "Encounter/kwr-1",
        "person-1",
        at("2026-04-13"),
        case_id="case-1",
        tasks=(review1,),
    )
    assert [(c.task_id, c.status) for c in on_review_held(held).close_tasks] == [(review1.id, Closure.COMPLETED)]

    done = review1.model_copy(update={"status": TaskStatus.COMPLETED})
    cycle2 = lifecycle.review_cycle(cycle1, ReviewDecision.CONTINUE, D("2026-04-13"))
    outcome = moved(cycle1, cycle2, (done,))
    assert outcome.close_tasks == ()
    (review2,) = outcome.raise_tasks
    assert (review2.due, review2.sequence) == (D("2026-07-06"), 2)
    assert review2.id != review1.id


def test_leaving_a_cycle_without_its_review_cancels_the_review() -> None:
    case = allocated("2026-01-12")
    cycle1 = lifecycle.start_intensive(case, D("2026-01-19"))
    (review1,) = moved(case, cycle1).raise_tasks
    inpatient = lifecycle.move(cycle1, lifecycle.P.INPATIENT, D("2026-02-02"))
    outcome = moved(cycle1, inpatient, (review1,))
    assert [(c.task_id, c.status) for c in outcome.close_tasks] == [(review1.id, Closure.CANCELLED)]
    assert outcome.raise_tasks == ()


def test_a_model_without_cycles_has_no_reviews() -> None:
    home = lifecycle.allocate(new_case(model=ServiceModel.CHILDRENS_HOME), [AUTHOR], D("2026-01-12"))
    assert moved(home, lifecycle.start_intensive(home, D("2026-01-19"))).is_empty


def monitoring_case() -> tuple[KeyworkingCase, KeyworkingCase]:
    cycle1 = lifecycle.start_intensive(allocated("2026-01-12"), D("2026-01-19"))
    stepped = lifecycle.review_cycle(cycle1, ReviewDecision.STEP_DOWN, D("2026-04-13"))
    return stepped, lifecycle.start_monitoring(stepped, D("2026-05-31"))


def test_monitoring_raises_monthly_contacts_for_at_most_twelve_months() -> None:
    stepped, monitoring = monitoring_case()
    (first,) = moved(stepped, monitoring).raise_tasks
    assert (first.task_type, first.due) == (TaskType.MONITORING_CONTACT, D("2026-06-30"))
    assert monitoring_ends(monitoring) == D("2027-05-31")

    outcome = on_contact_made(ContactMade(contact("2026-06-25"), monitoring, (first,)))
    assert [(c.task_id, c.status) for c in outcome.close_tasks] == [(first.id, Closure.COMPLETED)]
    (second,) = outcome.raise_tasks
    assert (second.due, second.trigger) == (D("2026-07-25"), "Encounter/contact-1")

    late = on_contact_made(ContactMade(contact("2027-05-01", "contact-9"), monitoring, ()))
    assert late.raise_tasks == ()  # 1 June 2027 is after monitoring ends


def test_contacts_outside_monitoring_or_not_held_change_nothing() -> None:
    stepped, monitoring = monitoring_case()
    assert on_contact_made(ContactMade(contact("2026-05-01"), stepped)).is_empty
    assert on_contact_made(ContactMade(contact("2026-06-25", status="cancelled"), monitoring)).is_empty


def test_leaving_monitoring_cancels_the_open_contact() -> None:
    stepped, monitoring = monitoring_case()
    (first,) = moved(stepped, monitoring).raise_tasks
    back = lifecycle.re_escalate(monitoring, D("2026-06-10"))
    outcome = moved(monitoring, back, (first,))
    assert [(c.task_id, c.status) for c in outcome.close_tasks] == [(first.id, Closure.CANCELLED)]
    assert [(t.task_type, t.sequence) for t in outcome.raise_tasks] == [(TaskType.KEYWORKING_REVIEW, 2)]


def test_events_refuse_mismatched_records() -> None:
    with pytest.raises(ValueError, match="Encounter/<id>"):
        ReviewHeld(ReviewType.COMMUNITY_CETR, "Composition/r-1", "person-1", at("2027-02-10"), "dsr-1")
    _, monitoring = monitoring_case()
    with pytest.raises(ValueError, match="belongs to case other"):
        ContactMade(contact("2026-06-25", case_id="other"), monitoring)
