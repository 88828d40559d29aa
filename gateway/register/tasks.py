"""RuleTask ⇄ FHIR Task (plain dicts, pure), and closing a Task a rule says is done or no longer needed.

The Task: ``id`` the deterministic id, ``identifier`` our rule-task system with the key (so a partner can
conditionally create or search by it), ``status`` requested (then whatever the owner sets), ``intent`` order (a
rule *orders* the work, unlike a panel's recommendation, which is a plan), ``code`` from our task-type code
system, ``description``, ``for`` the Patient, ``focus`` the EpisodeOfCare (register entry or keyworking case),
``reasonReference`` the record that raised it, ``authoredOn``, and ``restriction.period.end`` the due date, as on
recommendation Tasks, so one overdue sweep and one search serve both. An overdue Task carries ``businessStatus``
(:mod:`gateway.register.overdue`).

No profile is claimed: CETRRecommendationTask requires an ``owner``, which a rule cannot know (see docs/rules.md).
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from gateway.register.outcomes import RULE_TASK_IDENTIFIER, RuleTask, TaskClosure
from gateway.register.overdue import OVERDUE, is_flagged_overdue
from mappings.keyworking.elements import (
    Resource,
    codeable,
    fhir_date,
    fhir_datetime,
    read_code,
    read_date,
    read_datetime,
    read_ref_id,
    ref,
)
from mappings.keyworking.errors import NotOurShape
from mappings.keyworking.terminology import TaskType


def to_fhir(task: RuleTask) -> Resource:
    """The Task resource for a rule Task (no ``meta``: the store sets versionId and lastUpdated)."""
    resource: Resource = {
        "resourceType": "Task",
        "id": task.id,
        "identifier": [{"system": RULE_TASK_IDENTIFIER, "value": task.key}],
        "status": task.status.value,
    }
    if task.overdue:
        resource["businessStatus"] = copy.deepcopy(OVERDUE)
    resource |= {
        "intent": "order",
        "code": codeable(task.task_type),
        "description": task.description,
        "focus": ref("EpisodeOfCare", task.episode_id),
        "for": ref("Patient", task.person_id),
        "authoredOn": fhir_datetime(task.authored_on),
        "restriction": {"period": {"end": fhir_date(task.due)}},
        "reasonReference": {"reference": task.trigger},
    }
    return resource


def rule_task_key(resource: Resource) -> str | None:
    """The key in a Task's rule-task identifier, or None when the Task was not raised by a rule."""
    for identifier in resource.get("identifier", ()):
        if isinstance(identifier, dict) and identifier.get("system") == RULE_TASK_IDENTIFIER:
            value = identifier.get("value")
            return value if isinstance(value, str) else None
    return None


def is_rule_task(resource: Resource) -> bool:
    return resource.get("resourceType") == "Task" and rule_task_key(resource) is not None


def from_fhir(resource: Resource) -> RuleTask:
    """The RuleTask a Task describes; NotOurShape (with the element's path) when it is not one of ours."""
    path = f"Task/{resource.get('id')}"
    key = rule_task_key(resource)
    if key is None:
        raise NotOurShape(f"{path}.identifier", f"has no {RULE_TASK_IDENTIFIER} identifier")
    parts = key.split("|")
    if len(parts) != 3 or not parts[2].isdigit():
        raise NotOurShape(f"{path}.identifier", "is not <trigger>|<task type>|<sequence>")
    trigger, _, sequence = parts
    task_type = read_code(resource.get("code"), TaskType, f"{path}.code")
    if task_type.value != parts[1]:
        raise NotOurShape(f"{path}.code", f"is {task_type.value} but the identifier says {parts[1]}")
    reason = resource.get("reasonReference", {})
    if not isinstance(reason, dict) or reason.get("reference") != trigger:
        raise NotOurShape(f"{path}.reasonReference", f"does not refer to {trigger}")
    restriction = resource.get("restriction", {})
    due = restriction.get("period", {}).get("end") if isinstance(restriction, dict) else None
    record: dict[str, Any] = {
        "task_type": task_type,
        "trigger": trigger,
        "sequence": int(sequence),
        "person_id": read_ref_id(resource.get("for"), "Patient", f"{path}.for"),
        "episode_id": read_ref_id(resource.get("focus"), "EpisodeOfCare", f"{path}.focus"),
        "description": resource.get("description"),
        "due": read_date(due, f"{path}.restriction.period.end"),
        "authored_on": read_datetime(resource.get("authoredOn"), f"{path}.authoredOn"),
        "status": resource.get("status"),
        "overdue": is_flagged_overdue(resource),
    }
    try:
        task = RuleTask.model_validate(record)
    except ValidationError as exc:
        raise NotOurShape(path, str(exc)) from None
    if resource.get("id") != task.id:
        raise NotOurShape(f"{path}.id", f"is not the id its key gives ({task.id})")
    return task


def closed(resource: Resource, closure: TaskClosure) -> Resource:
    """A copy of the Task with the closure's status and its reason as ``statusReason.text``."""
    if resource.get("id") != closure.task_id:
        raise ValueError(f"the closure is for Task/{closure.task_id}, not Task/{resource.get('id')}")
    out = copy.deepcopy(resource)
    out["status"] = closure.status.value
    out["statusReason"] = {"text": closure.reason}
    return out
