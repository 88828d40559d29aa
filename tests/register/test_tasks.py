"""RuleTask ⇄ FHIR Task: the resource is valid R4, reads back exactly, and refuses Tasks that are not ours."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.register import tasks
from gateway.register.outcomes import RULE_TASK_IDENTIFIER, Closure, RuleTask, TaskClosure, TaskStatus
from gateway.register.overdue import OVERDUE
from gateway.register.rules import RatingChanged, on_rating_changed
from gateway.validation import validate_resource
from mappings.keyworking import urls
from mappings.keyworking.errors import NotOurShape
from mappings.keyworking.terminology import DsrRating, TaskType
from tests.register.builders import at, entry


def post_admission() -> RuleTask:
    event = RatingChanged.latest(entry((DsrRating.AMBER, "2026-01-05"), (DsrRating.BLUE, "2026-12-23")))
    return next(t for t in on_rating_changed(event).raise_tasks if t.task_type is TaskType.POST_ADMISSION_CETR)


def test_the_task_resource() -> None:
    task = post_admission()
    resource = tasks.to_fhir(task)
    assert resource == {
        "resourceType": "Task",
        "id": task.id,
        "identifier": [{"system": RULE_TASK_IDENTIFIER, "value": "Observation/dsr-1-rating-2|post-admission-cetr|1"}],
        "status": "requested",
        "intent": "order",
        "code": {
            "coding": [
                {"system": urls.CS_TASK_TYPE, "code": "post-admission-cetr", "display": "Hold a post-admission C(E)TR"}
            ]
        },
        "description": task.description,
        "focus": {"reference": "EpisodeOfCare/dsr-1"},
        "for": {"reference": "Patient/person-1"},
        "authoredOn": "2026-12-23T10:00:00+00:00",
        "restriction": {"period": {"end": "2027-01-11"}},
        "reasonReference": {"reference": "Observation/dsr-1-rating-2"},
    }
    assert validate_resource(resource) == []
    assert len(task.id) == 36  # a UUID: fits FHIR's 64 characters whatever the entry id


def test_round_trip_including_status_and_overdue() -> None:
    task = post_admission()
    assert tasks.from_fhir(tasks.to_fhir(task)) == task
    later = task.model_copy(update={"status": TaskStatus.IN_PROGRESS, "overdue": True})
    resource = tasks.to_fhir(later)
    assert resource["businessStatus"] == OVERDUE
    assert validate_resource(resource) == []
    assert tasks.from_fhir(resource) == later


def test_ids_depend_on_trigger_type_and_sequence_only() -> None:
    task = post_admission()
    same = task.model_copy(update={"description": "Other words", "due": task.due.replace(day=12)})
    assert same.id == task.id
    assert task.model_copy(update={"sequence": 2}).id != task.id
    assert task.model_copy(update={"trigger": "Observation/dsr-1-rating-3"}).id != task.id


def test_a_recommendation_is_not_a_rule_task() -> None:
    with pytest.raises(ValueError, match="raised by a panel"):
        RuleTask(
            task_type=TaskType.CETR_RECOMMENDATION,
            trigger="Encounter/m-1",
            person_id="p",
            episode_id="e",
            description="Do it",
            due=at("2026-01-01").date(),
            authored_on=at("2026-01-01"),
        )


def broken(change: str) -> dict[str, Any]:
    resource = tasks.to_fhir(post_admission())
    bad = copy.deepcopy(resource)
    if change == "no identifier":
        del bad["identifier"]
    elif change == "bad key":
        bad["identifier"][0]["value"] = "Observation/x|post-admission-cetr"
    elif change == "other code":
        bad["code"]["coding"][0]["code"] = "root-cause-analysis"
    elif change == "other reason":
        bad["reasonReference"] = {"reference": "Observation/other"}
    elif change == "no due date":
        del bad["restriction"]
    elif change == "focus not an episode":
        bad["focus"] = {"reference": "Composition/c-1"}
    elif change == "other id":
        bad["id"] = "task-1"
    elif change == "bad status":
        bad["status"] = "rejected"
    return bad


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ("no identifier", "Task/{id}.identifier"),
        ("bad key", "Task/{id}.identifier"),
        ("other code", "Task/{id}.code"),
        ("other reason", "Task/{id}.reasonReference"),
        ("no due date", "Task/{id}.restriction.period.end"),
        ("focus not an episode", "Task/{id}.focus"),
        ("other id", "Task/task-1.id"),
        ("bad status", "Task/{id}"),
    ],
)
def test_reading_a_task_that_is_not_ours_names_the_element(change: str, path: str) -> None:
    resource = broken(change)
    with pytest.raises(NotOurShape) as caught:
        tasks.from_fhir(resource)
    assert caught.value.path == path.format(id=post_admission().id)


def test_is_rule_task() -> None:
    resource = tasks.to_fhir(post_admission())
    assert tasks.is_rule_task(resource)
    assert not tasks.is_rule_task(broken("no identifier"))
    assert not tasks.is_rule_task({**resource, "resourceType": "ServiceRequest"})


def test_closing_a_task_keeps_everything_else() -> None:
    resource = tasks.to_fhir(post_admission())
    closure = TaskClosure(resource["id"], Closure.COMPLETED, "Held on 2027-01-06 (Encounter/m-1).")
    done = tasks.closed(resource, closure)
    assert done["status"] == "completed"
    assert done["statusReason"] == {"text": "Held on 2027-01-06 (Encounter/m-1)."}
    assert {k: v for k, v in done.items() if k not in ("status", "statusReason")} == {
        k: v for k, v in resource.items() if k != "status"
    }
    assert resource["status"] == "requested"  # the input is not changed
    assert validate_resource(done) == []
    with pytest.raises(ValueError, match="the closure is for"):
        tasks.closed(resource, TaskClosure("other", Closure.CANCELLED, "x"))
