"""The Dynamic Support Register and C(E)TR rules: domain events in, :class:`Outcome` out. Pure: no I/O, no clock.

The rules (domain.md section 8, "State machines", and section 2's timescales; docs/rules.md has the table):

- **Red** (from any other rating): offer a community C(E)TR, or a LAEP meeting if things move too fast.
- **Blue** (admission): if no community C(E)TR was held in the look-back window before admission, a
  post-admission C(E)TR within N working days and a root-cause analysis; always the first inpatient C(E)TR
  (every 3 months for CYP, 6 for adults, 12 in secure services) and, for out-of-area inpatients, the first
  commissioner oversight visit (every 6 weeks for children, 8 for adults). An open offer of a community C(E)TR is
  cancelled: the admission overtook it.
- **Blue to not blue** (discharge): the inpatient Tasks still open are cancelled. :func:`on_discharged` gives the
  rating to record on discharge (red for at least two weeks by default), and :func:`check_discharge_hold` refuses
  a lower rating during that period.
- A held review closes its Task: a community C(E)TR or LAEP completes the offer, a post-admission C(E)TR its Task,
  an inpatient C(E)TR or oversight visit its Task and raises the next while the person is still in hospital, a
  12-week keyworking review its cycle's Task.
- Keyworking: each intensive cycle raises its review, due at the end of the cycle (the service model's
  ``cycle_weeks``); monitoring raises monthly contacts, each contact completing one and raising the next, for at
  most the service model's ``monitoring_max_months``.

Every event carries ``tasks``: the rule Tasks already recorded for the person (any status, read back with
:func:`gateway.register.tasks.from_fhir`). A rule never raises a Task whose id is already there, and closes only
open ones, so applying an event twice changes nothing the second time. Task ids are derived from the trigger, the
task type and a sequence number (:mod:`gateway.register.outcomes`), so the same event always gives the same ids.

Calendar intervals (months, weeks) give calendar due dates; only the "working days" rules skip weekends and bank
holidays. Apply a ReviewHeld before the CaseMoved it leads to, so the review completes its Task before a new
cycle cancels it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta

from gateway.register.config import DEFAULT_RULES, RulesConfig
from gateway.register.outcomes import NOTHING, Closure, Outcome, RuleTask, TaskClosure
from gateway.register.working_days import add_working_days
from mappings.keyworking.elements import require_id
from mappings.keyworking.errors import ImpossibleTransition
from mappings.keyworking.records import (
    Contact,
    KeyworkingCase,
    MeetingStatus,
    PersonRef,
    RatingChange,
    RegisterEntry,
    ReviewMeeting,
)
from mappings.keyworking.register import rating_id
from mappings.keyworking.terminology import SERVICE_MODELS, DsrRating, KeyworkingPhase, ReviewType, TaskType

#: How serious each rating is; a discharge hold refuses a rating below the held one.
SEVERITY: dict[DsrRating, int] = {DsrRating.GREEN: 0, DsrRating.AMBER: 1, DsrRating.RED: 2, DsrRating.BLUE: 3}

#: The register entry's Tasks that only make sense while the person is in hospital.
INPATIENT_TASKS = frozenset({TaskType.POST_ADMISSION_CETR, TaskType.INPATIENT_CETR, TaskType.OVERSIGHT_VISIT})

# -- events ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RatingChanged:
    """A rating decision was recorded on a register entry (``change`` is one of ``entry.ratings``).

    ``community_cetr_on`` is the day of the last community C(E)TR (or None); ``adult`` means a CTR rather than a
    C(E)TR applies (an adult without an EHCP); ``secure`` an adult in secure services; ``out_of_area`` an
    inpatient placed outside the ICS (oversight visits).
    """

    entry: RegisterEntry
    previous: DsrRating | None
    change: RatingChange
    community_cetr_on: date | None = None
    adult: bool = False
    secure: bool = False
    out_of_area: bool = True
    tasks: tuple[RuleTask, ...] = ()

    @classmethod
    def latest(
        cls,
        entry: RegisterEntry,
        *,
        community_cetr_on: date | None = None,
        adult: bool = False,
        secure: bool = False,
        out_of_area: bool = True,
        tasks: Iterable[RuleTask] = (),
    ) -> RatingChanged:
        """The event for the entry's newest rating decision (the one just recorded)."""
        if not entry.ratings:
            raise ValueError("the register entry has no rating decision")
        previous = entry.ratings[-2].rating if len(entry.ratings) > 1 else None
        return cls(entry, previous, entry.ratings[-1], community_cetr_on, adult, secure, out_of_area, tuple(tasks))

    @property
    def trigger(self) -> str:
        """The rating Observation, ``Observation/<entry id>-rating-<n>``."""
        entry_id = require_id(self.entry.id, "register entry")
        # From the newest back: two identical decisions (a resend) are the later one.
        for n in range(len(self.entry.ratings), 0, -1):
            if self.entry.ratings[n - 1] == self.change:
                return f"Observation/{rating_id(entry_id, n)}"
        raise ValueError("the rating change must be one of the entry's ratings")


@dataclass(frozen=True, slots=True)
class Discharged:
    """The person left hospital at ``at``; ``author`` is who records the post-discharge rating."""

    entry: RegisterEntry
    at: datetime
    author: PersonRef
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewHeld:
    """A review took place: a C(E)TR, a LAEP meeting, an oversight visit or a 12-week keyworking review.

    ``record`` is the Encounter (``Encounter/<id>``) that records it. ``still_inpatient`` says whether the person
    is still in hospital after it (the next inpatient review or visit is scheduled only then).
    """

    review_type: ReviewType
    record: str
    person_id: str
    held_at: datetime
    register_entry_id: str | None = None
    case_id: str | None = None
    adult: bool = False
    secure: bool = False
    still_inpatient: bool = True
    tasks: tuple[RuleTask, ...] = ()

    def __post_init__(self) -> None:
        if not self.record.startswith("Encounter/") or len(self.record) == len("Encounter/"):
            raise ValueError(f"record must be a reference Encounter/<id>, not {self.record!r}")

    @classmethod
    def from_meeting(
        cls,
        meeting: ReviewMeeting,
        *,
        adult: bool = False,
        secure: bool = False,
        still_inpatient: bool = True,
        tasks: Iterable[RuleTask] = (),
    ) -> ReviewHeld | None:
        """The event for a C(E)TR or LAEP meeting record, or None when the meeting did not take place (yet)."""
        if meeting.status is not MeetingStatus.FINISHED:
            return None
        return cls(
            review_type=meeting.meeting_type,
            record=f"Encounter/{require_id(meeting.id, 'review meeting')}",
            person_id=meeting.person_id,
            held_at=meeting.start,
            register_entry_id=meeting.register_entry_id,
            case_id=meeting.case_id,
            adult=adult,
            secure=secure,
            still_inpatient=still_inpatient,
            tasks=tuple(tasks),
        )


@dataclass(frozen=True, slots=True)
class CaseMoved:
    """A keyworking case changed phase (``before`` is None for a new case); ``at`` is when it was recorded."""

    before: KeyworkingCase | None
    after: KeyworkingCase
    at: datetime
    tasks: tuple[RuleTask, ...] = ()


@dataclass(frozen=True, slots=True)
class ContactMade:
    """A keyworking contact was recorded for a case (monitoring contacts count towards the monthly cadence)."""

    contact: Contact
    case: KeyworkingCase
    tasks: tuple[RuleTask, ...] = ()

    def __post_init__(self) -> None:
        if self.contact.case_id is not None and self.contact.case_id != self.case.id:
            raise ValueError(f"the contact belongs to case {self.contact.case_id}, not {self.case.id}")


# -- helpers --------------------------------------------------------------------------------------------------------


def _add_months(day: date, months: int) -> date:
    """Calendar months later; the 31st becomes the month's last day (31 January + 1 month = 28 or 29 February)."""
    result: date = day + relativedelta(months=months)
    return result


class _Rule:
    """Builds one event's outcome: raises Tasks not already known, closes known open ones."""

    def __init__(self, trigger: str, person_id: str, authored_on: datetime, known: tuple[RuleTask, ...]) -> None:
        self.trigger = trigger
        self.person_id = person_id
        self.authored_on = authored_on
        self.known = known
        self._known_ids = {t.id for t in known}
        self.raised: list[RuleTask] = []
        self.closed: list[TaskClosure] = []

    def raise_task(
        self, task_type: TaskType, episode_id: str, due: date, description: str, *, trigger: str = "", sequence: int = 1
    ) -> None:
        task = RuleTask(
            task_type=task_type,
            trigger=trigger or self.trigger,
            sequence=sequence,
            person_id=self.person_id,
            episode_id=episode_id,
            description=description,
            due=due,
            authored_on=self.authored_on,
        )
        if task.id not in self._known_ids:
            self.raised.append(task)
            self._known_ids.add(task.id)

    def close(self, task_types: Iterable[TaskType], episode_id: str, status: Closure, reason: str) -> None:
        """Close the open Tasks of these types about this episode, except any this same trigger raised."""
        wanted = frozenset(task_types)
        for task in self.known:
            if (
                task.is_open
                and task.task_type in wanted
                and task.episode_id == episode_id
                and task.trigger != self.trigger
            ):
                self.closed.append(TaskClosure(task.id, status, reason))

    def outcome(self) -> Outcome:
        return Outcome(tuple(self.raised), tuple(self.closed))


# -- the register ---------------------------------------------------------------------------------------------------


def on_rating_changed(event: RatingChanged, config: RulesConfig = DEFAULT_RULES) -> Outcome:
    """Tasks a rating decision raises and closes: red offers a C(E)TR, blue admits, leaving blue discharges."""
    entry_id = require_id(event.entry.id, "register entry")
    new, previous = event.change.rating, event.previous
    day = event.change.at.date()
    rule = _Rule(event.trigger, event.entry.person_id, event.change.at, event.tasks)
    if new is DsrRating.RED and previous is not DsrRating.RED:
        rule.raise_task(
            TaskType.OFFER_COMMUNITY_CETR,
            entry_id,
            add_working_days(day, config.offer_community_cetr_working_days, config.calendar),
            f"Offer a community C(E)TR, or a LAEP meeting if things move too fast: rated red on {day.isoformat()}.",
        )
    if new is DsrRating.BLUE and previous is not DsrRating.BLUE:
        _admitted(event, rule, entry_id, day, config)
    if previous is DsrRating.BLUE and new is not DsrRating.BLUE:
        rule.close(INPATIENT_TASKS, entry_id, Closure.CANCELLED, f"Discharged from hospital on {day.isoformat()}.")
    return rule.outcome()


def community_cetr_before_admission(held_on: date | None, admitted_on: date, config: RulesConfig) -> bool:
    """Whether a community C(E)TR on ``held_on`` counts as the review before an admission on ``admitted_on``."""
    if held_on is None:
        return False
    earliest = _add_months(admitted_on, -config.community_cetr_lookback_months)
    return earliest <= held_on <= admitted_on


def _admitted(event: RatingChanged, rule: _Rule, entry_id: str, day: date, config: RulesConfig) -> None:
    rule.close(
        [TaskType.OFFER_COMMUNITY_CETR],
        entry_id,
        Closure.CANCELLED,
        f"Admitted on {day.isoformat()} before a community C(E)TR was held.",
    )
    if not community_cetr_before_admission(event.community_cetr_on, day, config):
        months = config.community_cetr_lookback_months
        rule.raise_task(
            TaskType.POST_ADMISSION_CETR,
            entry_id,
            add_working_days(day, config.post_admission_cetr_working_days, config.calendar),
            f"Hold a post-admission C(E)TR: admitted on {day.isoformat()} with no community C(E)TR in the "
            f"{months} months before.",
        )
        rule.raise_task(
            TaskType.ROOT_CAUSE_ANALYSIS,
            entry_id,
            add_working_days(day, config.root_cause_analysis_working_days, config.calendar),
            f"Root-cause analysis: admitted on {day.isoformat()} without a community C(E)TR.",
        )
    _schedule_inpatient_review(rule, entry_id, day, adult=event.adult, secure=event.secure, config=config)
    if event.out_of_area or not config.oversight_visits_out_of_area_only:
        _schedule_oversight_visit(rule, entry_id, day, adult=event.adult, config=config)


def _schedule_inpatient_review(
    rule: _Rule, entry_id: str, after: date, *, adult: bool, secure: bool, config: RulesConfig
) -> None:
    months = config.inpatient_cetr_months(adult=adult, secure=secure)
    rule.raise_task(
        TaskType.INPATIENT_CETR,
        entry_id,
        _add_months(after, months),
        f"Hold an inpatient {'CTR' if adult else 'C(E)TR'} (every {months} months while in hospital).",
    )


def _schedule_oversight_visit(rule: _Rule, entry_id: str, after: date, *, adult: bool, config: RulesConfig) -> None:
    weeks = config.oversight_visit_weeks(adult=adult)
    rule.raise_task(
        TaskType.OVERSIGHT_VISIT,
        entry_id,
        after + timedelta(weeks=weeks),
        f"Commissioner oversight visit (every {weeks} weeks while in hospital).",
    )


def on_discharged(event: Discharged, config: RulesConfig = DEFAULT_RULES) -> Outcome:
    """The rating to record on discharge: ``post_discharge_rating`` until a review after the minimum period.

    Refuses (ImpossibleTransition, 409) a discharge of someone whose current rating is not blue. Recording the
    returned rating and passing it to :func:`on_rating_changed` then cancels the inpatient Tasks.
    """
    current = event.entry.current_rating
    if current is None or current.rating is not DsrRating.BLUE:
        state = current.rating.value if current is not None else "unrated"
        raise ImpossibleTransition(
            f"only an inpatient (rated blue) can be discharged; the current rating is {state}",
            state=state,
            field="ratings",
            requested="discharge",
        )
    weeks = config.post_discharge_minimum_weeks
    rating = config.post_discharge_rating
    reason = f"Discharged from hospital: rated {rating.value} for at least {weeks} weeks after discharge."
    if event.reason:
        reason = f"{reason} {event.reason}"
    change = RatingChange(
        rating=rating,
        reason=reason,
        author=event.author,
        at=event.at,
        next_review=event.at.date() + timedelta(weeks=weeks),
    )
    return Outcome(rating=change)


@dataclass(frozen=True, slots=True)
class DischargeHold:
    """After a discharge the rating stays at least ``rating`` until ``until`` (exclusive)."""

    rating: DsrRating
    until: date


def discharge_hold(entry: RegisterEntry, on: date, config: RulesConfig = DEFAULT_RULES) -> DischargeHold | None:
    """The hold in force on ``on`` after the entry's latest discharge (blue to not blue), if any."""
    ratings = entry.ratings
    for i in range(len(ratings) - 1, 0, -1):
        if ratings[i - 1].rating is DsrRating.BLUE and ratings[i].rating is not DsrRating.BLUE:
            until = ratings[i].at.date() + timedelta(weeks=config.post_discharge_minimum_weeks)
            return DischargeHold(config.post_discharge_rating, until) if on < until else None
    return None


def check_discharge_hold(entry: RegisterEntry, change: RatingChange, config: RulesConfig = DEFAULT_RULES) -> None:
    """Refuse (ImpossibleTransition, 409) a new rating below the post-discharge rating during its minimum period."""
    hold = discharge_hold(entry, change.at.date(), config)
    if hold is not None and SEVERITY[change.rating] < SEVERITY[hold.rating]:
        raise ImpossibleTransition(
            f"after discharge the rating stays at least {hold.rating.value} until {hold.until.isoformat()}",
            state=f"discharge hold until {hold.until.isoformat()}",
            field="rating",
            requested=change.rating.value,
        )


# -- reviews --------------------------------------------------------------------------------------------------------

#: Which open register Tasks a held review completes.
_COMPLETES: dict[ReviewType, TaskType] = {
    ReviewType.COMMUNITY_CETR: TaskType.OFFER_COMMUNITY_CETR,
    ReviewType.LAEP: TaskType.OFFER_COMMUNITY_CETR,
    ReviewType.POST_ADMISSION_CETR: TaskType.POST_ADMISSION_CETR,
    ReviewType.INPATIENT_CETR: TaskType.INPATIENT_CETR,
    ReviewType.OVERSIGHT_VISIT: TaskType.OVERSIGHT_VISIT,
}


def on_review_held(event: ReviewHeld, config: RulesConfig = DEFAULT_RULES) -> Outcome:
    """A held review completes its open Task; an inpatient review or visit schedules the next while in hospital."""
    day = event.held_at.date()
    rule = _Rule(event.record, event.person_id, event.held_at, event.tasks)
    done = f"Held on {day.isoformat()} ({event.record})."
    if event.review_type is ReviewType.KEYWORKING_REVIEW:
        if event.case_id is not None:
            rule.close([TaskType.KEYWORKING_REVIEW], event.case_id, Closure.COMPLETED, done)
        return rule.outcome()
    task_type = _COMPLETES.get(event.review_type)
    entry_id = event.register_entry_id
    if task_type is None or entry_id is None:
        return NOTHING
    rule.close([task_type], entry_id, Closure.COMPLETED, done)
    if event.still_inpatient and event.review_type is ReviewType.INPATIENT_CETR:
        _schedule_inpatient_review(rule, entry_id, day, adult=event.adult, secure=event.secure, config=config)
    if event.still_inpatient and event.review_type is ReviewType.OVERSIGHT_VISIT:
        _schedule_oversight_visit(rule, entry_id, day, adult=event.adult, config=config)
    return rule.outcome()


# -- keyworking cases -----------------------------------------------------------------------------------------------


def on_case_moved(event: CaseMoved, config: RulesConfig = DEFAULT_RULES) -> Outcome:
    """A new intensive cycle raises its 12-week review; monitoring raises its first monthly contact.

    Leaving a cycle cancels its review if still open; leaving monitoring cancels the open contact Task.
    """
    after, before = event.after, event.before
    case_id = require_id(after.id, "keyworking case")
    model = SERVICE_MODELS[after.service_model]
    trigger = f"EpisodeOfCare/{case_id}"
    rule = _Rule(trigger, after.person_id, event.at, event.tasks)
    was_phase = before.phase if before is not None else None
    was_cycle = before.cycle if before is not None else None
    new_cycle = after.phase is KeyworkingPhase.INTENSIVE and (
        was_phase is not KeyworkingPhase.INTENSIVE or was_cycle != after.cycle
    )
    since = after.phase_since
    if was_phase is KeyworkingPhase.INTENSIVE and (after.phase is not KeyworkingPhase.INTENSIVE or new_cycle):
        # The trigger is the case itself, so _Rule.close would skip these: close them explicitly.
        rule.closed += [
            TaskClosure(t.id, Closure.CANCELLED, f"Intensive cycle {was_cycle} ended on {since.isoformat()}.")
            for t in event.tasks
            if t.is_open
            and t.task_type is TaskType.KEYWORKING_REVIEW
            and t.episode_id == case_id
            and t.sequence != after.cycle
        ]
    if was_phase is KeyworkingPhase.MONITORING and after.phase is not KeyworkingPhase.MONITORING:
        rule.closed += [
            TaskClosure(t.id, Closure.CANCELLED, f"Monitoring ended on {since.isoformat()}.")
            for t in event.tasks
            if t.is_open and t.task_type is TaskType.MONITORING_CONTACT and t.episode_id == case_id
        ]
    if new_cycle and model.cycle_weeks is not None and after.cycle is not None:
        rule.raise_task(
            TaskType.KEYWORKING_REVIEW,
            case_id,
            since + timedelta(weeks=model.cycle_weeks),
            f"{model.cycle_weeks}-week keyworking review at the end of intensive cycle {after.cycle}.",
            sequence=after.cycle,
        )
    if after.phase is KeyworkingPhase.MONITORING and was_phase is not KeyworkingPhase.MONITORING:
        stretch = sum(1 for p in after.history if p.phase is KeyworkingPhase.MONITORING)
        _schedule_monitoring_contact(rule, after, since, config, sequence=stretch)
    return rule.outcome()


def monitoring_ends(case: KeyworkingCase) -> date | None:
    """The last day of the current monitoring phase under the service model (None when not monitoring)."""
    months = SERVICE_MODELS[case.service_model].monitoring_max_months
    if case.phase is not KeyworkingPhase.MONITORING or months is None:
        return None
    return _add_months(case.phase_since, months)


def _schedule_monitoring_contact(
    rule: _Rule, case: KeyworkingCase, after: date, config: RulesConfig, *, trigger: str = "", sequence: int = 1
) -> None:
    due = _add_months(after, config.monitoring_contact_months)
    ends = monitoring_ends(case)
    if ends is not None and due > ends:
        return
    rule.raise_task(
        TaskType.MONITORING_CONTACT,
        require_id(case.id, "keyworking case"),
        due,
        f"Monitoring contact (every {config.monitoring_contact_months} month(s) while in monitoring).",
        trigger=trigger,
        sequence=sequence,
    )


def on_contact_made(event: ContactMade, config: RulesConfig = DEFAULT_RULES) -> Outcome:
    """In monitoring, a contact that took place completes the open contact Task and raises the next."""
    contact, case = event.contact, event.case
    day = contact.start.date()
    if (
        contact.status is not MeetingStatus.FINISHED
        or case.phase is not KeyworkingPhase.MONITORING
        or day < case.phase_since
    ):
        return NOTHING
    case_id = require_id(case.id, "keyworking case")
    trigger = f"Encounter/{require_id(contact.id, 'contact')}"
    rule = _Rule(trigger, case.person_id, contact.start, event.tasks)
    rule.close([TaskType.MONITORING_CONTACT], case_id, Closure.COMPLETED, f"Contact on {day.isoformat()}.")
    _schedule_monitoring_contact(rule, case, day, config)
    return rule.outcome()
