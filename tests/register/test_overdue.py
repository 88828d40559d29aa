"""The overdue sweep: which open Tasks are past due, the patched resources, and that the store finds them."""

from __future__ import annotations

import copy
import uuid
from datetime import date, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.register import tasks
from gateway.register.overdue import (
    CS_TASK_BUSINESS_STATUS,
    OVERDUE,
    due_date,
    is_flagged_overdue,
    is_overdue,
    sweep_overdue,
)
from gateway.register.rules import RatingChanged, on_rating_changed
from gateway.store.indexing import extract
from gateway.store.repository import SqlFhirRepository
from mappings.keyworking.terminology import DsrRating
from tests.register.builders import entry

D = date.fromisoformat


def admission_tasks() -> list[dict[str, Any]]:
    """Post-admission (due 2027-01-11), RCA (01-25), oversight visit (02-03), inpatient C(E)TR (03-23)."""
    event = RatingChanged.latest(entry((DsrRating.AMBER, "2026-01-05"), (DsrRating.BLUE, "2026-12-23")))
    return [tasks.to_fhir(t) for t in on_rating_changed(event).raise_tasks]


def test_open_tasks_past_due_are_flagged_and_keep_their_status() -> None:
    resources = admission_tasks()
    before = copy.deepcopy(resources)
    result = sweep_overdue(resources, D("2027-01-26"))
    assert sorted(due_date(t) for t in result.flagged) == [D("2027-01-11"), D("2027-01-25")]  # type: ignore[type-var]
    for task in result.flagged:
        assert task["businessStatus"] == OVERDUE
        assert task["status"] == "requested"
        original = next(r for r in before if r["id"] == task["id"])
        assert {k: v for k, v in task.items() if k != "businessStatus"} == original
    assert result.cleared == ()
    assert resources == before  # pure: the input is not changed


def test_due_today_is_not_overdue_and_closed_tasks_are_never_flagged() -> None:
    task = admission_tasks()[0]
    assert not is_overdue(task, D("2027-01-11"))
    assert is_overdue(task, D("2027-01-12"))
    for status in ("completed", "cancelled", "failed"):
        assert sweep_overdue([{**task, "status": status}], D("2027-06-01")).changed == ()


def test_the_sweep_is_idempotent_and_clears_rescheduled_tasks() -> None:
    today = D("2027-01-26")
    first = sweep_overdue(admission_tasks(), today)
    assert sweep_overdue(first.flagged, today).changed == ()
    rescheduled = {**first.flagged[0], "restriction": {"period": {"end": "2027-02-10"}}}
    result = sweep_overdue([rescheduled], today)
    assert result.flagged == () and len(result.cleared) == 1
    assert "businessStatus" not in result.cleared[0]
    # A completed Task keeps the record that it was late.
    assert sweep_overdue([{**first.flagged[0], "status": "completed"}], today).changed == ()


def test_another_system_s_business_status_is_left_alone() -> None:
    task = {**admission_tasks()[0], "businessStatus": {"text": "Waiting for the ward"}}
    assert sweep_overdue([task], D("2027-06-01")).changed == ()
    assert not is_flagged_overdue(task)


def test_recommendation_tasks_and_datetime_due_dates_are_swept_too() -> None:
    recommendation = {
        "resourceType": "Task",
        "id": "m-1-rec-1",
        "status": "accepted",
        "intent": "plan",
        "restriction": {"period": {"end": "2027-01-05T17:00:00+00:00"}},
    }
    assert [t["id"] for t in sweep_overdue([recommendation], D("2027-01-06")).flagged] == ["m-1-rec-1"]
    assert sweep_overdue([{"resourceType": "Task", "status": "requested"}], D("2027-01-06")).changed == ()
    assert sweep_overdue([{**recommendation, "resourceType": "Flag"}], D("2027-01-06")).changed == ()


def test_the_flag_is_indexed_as_a_business_status_token() -> None:
    flagged = sweep_overdue(admission_tasks(), D("2027-01-26")).flagged[0]
    assert ("business-status", CS_TASK_BUSINESS_STATUS, "overdue") in extract(flagged).tokens


async def test_task_search_by_business_status_finds_the_overdue_tasks(repo: SqlFhirRepository) -> None:
    tag = uuid.uuid4().hex[:8]
    resources = [{**t, "for": {"reference": f"Patient/p-{tag}"}} for t in admission_tasks()]
    for task in resources:
        await repo.update("Task", task["id"], task)
    for task in sweep_overdue(resources, D("2027-01-26")).changed:
        await repo.update("Task", task["id"], task)
    mine = ("subject", f"Patient/p-{tag}")
    found = await repo.search("Task", [("business-status", "overdue"), mine])
    assert len(found.matches) == 2
    coded = await repo.search("Task", [("business-status", f"{CS_TASK_BUSINESS_STATUS}|overdue"), mine])
    assert len(coded.matches) == 2
    assert len((await repo.search("Task", [("status", "requested"), mine])).matches) == 4


@given(st.dates(min_value=date(2026, 12, 1), max_value=date(2027, 12, 31)), st.integers(0, 30))
def test_a_task_is_flagged_exactly_when_open_and_past_due(today: date, shift: int) -> None:
    task = admission_tasks()[0]
    due = today - timedelta(days=shift - 15)
    task["restriction"] = {"period": {"end": due.isoformat()}}
    flagged = sweep_overdue([task], today).flagged
    assert bool(flagged) == (due < today)
