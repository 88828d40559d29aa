"""Properties of the rules over generated records: deterministic, idempotent, and due dates after their trigger."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.register import tasks
from gateway.register.config import RulesConfig
from gateway.register.outcomes import Outcome, TaskStatus
from gateway.register.rules import CaseMoved, RatingChanged, on_case_moved, on_rating_changed
from gateway.register.working_days import bank_holidays
from mappings.keyworking import lifecycle
from mappings.keyworking.records import KeyworkingCase, RegisterEntry
from mappings.keyworking.terminology import ClosureReason, KeyworkingPhase, TaskType
from tests.mappings.strategies import cases, professionals, register_entries

WORKING_DAY_TASKS = {TaskType.OFFER_COMMUNITY_CETR, TaskType.POST_ADMISSION_CETR, TaskType.ROOT_CAUSE_ANALYSIS}

configs = st.builds(
    RulesConfig,
    post_admission_cetr_working_days=st.integers(1, 20),
    community_cetr_lookback_months=st.integers(1, 24),
    offer_community_cetr_working_days=st.integers(1, 20),
)
rated = register_entries().filter(lambda e: bool(e.ratings))


def rating_events(entry: RegisterEntry, cetr: date | None, adult: bool) -> list[RatingChanged]:
    previous = [None, *(c.rating for c in entry.ratings[:-1])]
    return [
        RatingChanged(entry, prev, change, cetr, adult=adult)
        for prev, change in zip(previous, entry.ratings, strict=True)
    ]


def check_idempotent(outcome: Outcome, again: Outcome, known_run: Outcome) -> None:
    assert outcome == again
    assert len({t.id for t in outcome.raise_tasks}) == len(outcome.raise_tasks)
    assert known_run.raise_tasks == ()


@settings(max_examples=60, deadline=None)
@given(rated, st.none() | st.dates(date(2000, 1, 1), date(2046, 1, 1)), st.booleans(), configs)
def test_rating_rules_are_deterministic_and_idempotent(
    entry: RegisterEntry, cetr: date | None, adult: bool, config: RulesConfig
) -> None:
    for event in rating_events(entry, cetr, adult):
        outcome = on_rating_changed(event, config)
        again = on_rating_changed(event, config)
        # The same event with what it raised already recorded raises nothing more.
        known = on_rating_changed(replace(event, tasks=outcome.raise_tasks), config)
        check_idempotent(outcome, again, known)
        day = event.change.at.date()
        for task in outcome.raise_tasks:
            assert task.due > day
            assert task.status is TaskStatus.REQUESTED
            assert tasks.from_fhir(tasks.to_fhir(task)) == task
            if task.task_type in WORKING_DAY_TASKS:
                assert task.due.weekday() < 5 and task.due not in bank_holidays("ENG", task.due.year)


@st.composite
def case_moves(draw: st.DrawFn) -> tuple[KeyworkingCase, KeyworkingCase]:
    case = draw(cases().filter(lambda c: bool(lifecycle.allowed_moves(c))))
    to = draw(st.sampled_from(sorted(lifecycle.allowed_moves(case))))
    on = case.phase_since + timedelta(days=draw(st.integers(0, 100)))
    if to is KeyworkingPhase.ALLOCATED:
        return case, lifecycle.allocate(case, [draw(professionals)], on)
    if to is KeyworkingPhase.CLOSED:
        return case, lifecycle.close(case, ClosureReason.GOALS_MET, on)
    return case, lifecycle.move(case, to, on)


@settings(max_examples=60, deadline=None)
@given(case_moves())
def test_case_rules_are_deterministic_and_idempotent(move: tuple[KeyworkingCase, KeyworkingCase]) -> None:
    before, after = move
    event = CaseMoved(before, after, _noon(after.phase_since))
    outcome = on_case_moved(event)
    known = on_case_moved(replace(event, tasks=outcome.raise_tasks))
    check_idempotent(outcome, on_case_moved(event), known)
    for task in outcome.raise_tasks:
        assert task.due > after.phase_since
        assert task.episode_id == after.id


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)
