"""What a school or virtual school may see of a young person's keyworking: built by allow-list. Pure.

Education gets dates, roles and actions, never clinical detail (domain.md §7, "data minimisation per
recipient"). The document holds only:

- ``keyworkers``: CareTeam participants whose role is our ``keyworker`` code: name, agency name, and work phone
  or email numbers the CareTeam publishes (``CareTeam.telecom``);
- ``reviews``: planned Encounters (``status`` planned): the review type (our review-type code's display) and date;
- ``actions``: open rule Tasks (our task-type codes other than a C(E)TR recommendation): the type and due date;
- ``recommendations``: C(E)TR recommendation Tasks whose owner agency is the school (by URN or ODS code): the
  text of the action, its status, owner name and due date.

Nothing else is ever read: every output value is copied from one of the named elements above, so a Condition,
an Observation, a diagnosis in ``reasonCode``, a note or a view cannot reach the output (the property test in
``tests/connectors/test_education.py`` feeds it everything else).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from connectors.local_authority.recommendations import is_recommendation
from mappings.keyworking import urls
from mappings.keyworking.terminology import ReviewType, TaskType, display

OPEN_TASK = frozenset({"draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold"})
#: The element types whose changes a school can receive (everything else is never sent).
SCHOOL_TYPES = frozenset({"CareTeam", "Encounter", "Task"})
SCHOOL_URN = urls.naming_system("school-urn")

#: Review types and rule-task types by code, with the displays our terminology gives them.
_REVIEW_DISPLAY = {r.value: display(r) for r in ReviewType}
_ACTION_DISPLAY = {t.value: display(t) for t in TaskType if t is not TaskType.CETR_RECOMMENDATION}


def _our_code(concept: Any, system: str) -> str | None:
    items = concept if isinstance(concept, list) else [concept]
    for item in items:
        codings = item.get("coding", ()) if isinstance(item, dict) else ()
        for c in codings:
            if isinstance(c, dict) and c.get("system") == system and isinstance(c.get("code"), str):
                return str(c["code"])
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _display(reference: Any) -> str | None:
    return _str(reference.get("display")) if isinstance(reference, dict) else None


def _due(task: dict[str, Any]) -> str | None:
    restriction = task.get("restriction")
    period = restriction.get("period") if isinstance(restriction, dict) else None
    return _str(period.get("end")) if isinstance(period, dict) else None


def _keyworkers(team: dict[str, Any]) -> list[dict[str, Any]]:
    telecom = [
        {"system": t["system"], "value": t["value"]}
        for t in team.get("telecom", ())
        if isinstance(t, dict)
        and t.get("system") in ("phone", "email")
        and isinstance(t.get("value"), str)
        and t.get("use") in (None, "work")
    ]
    out = []
    for participant in team.get("participant", ()):
        if not isinstance(participant, dict):
            continue
        if _our_code(participant.get("role"), urls.CS_CARE_TEAM_ROLE) != "keyworker":
            continue
        period = participant.get("period")
        if isinstance(period, dict) and period.get("end") is not None:
            continue  # a former keyworker
        name = _display(participant.get("member"))
        if name is None:
            continue
        out.append({"name": name, "agency": _display(participant.get("onBehalfOf")), "contact": telecom})
    return out


def _review(encounter: dict[str, Any]) -> dict[str, Any] | None:
    if encounter.get("status") != "planned":
        return None
    code = _our_code(encounter.get("type"), urls.CS_REVIEW_TYPE)
    period = encounter.get("period")
    start = _str(period.get("start")) if isinstance(period, dict) else None
    if code not in _REVIEW_DISPLAY and start is None:
        return None
    return {"type": _REVIEW_DISPLAY.get(code or "", "Review"), "date": start}


def _school_owned(task: dict[str, Any], school: set[str]) -> bool:
    extensions = task.get("extension")
    if not isinstance(extensions, list):
        return False
    for extension in extensions:
        if not isinstance(extension, dict) or extension.get("url") != urls.EXT_OWNER_AGENCY:
            continue
        reference = extension.get("valueReference")
        identifier = reference.get("identifier") if isinstance(reference, dict) else None
        if isinstance(identifier, dict) and identifier.get("system") in (urls.ODS_ORGANISATION, SCHOOL_URN):
            return str(identifier.get("value", "")).upper() in school
    return False


def _task(task: dict[str, Any], school: set[str]) -> tuple[str, dict[str, Any]] | None:
    status = _str(task.get("status"))
    if is_recommendation(task):
        if not _school_owned(task, school):
            return None
        item = {
            "action": _str(task.get("description")),
            "status": status,
            "owner": _display(task.get("owner")),
            "due": _due(task),
        }
        return "recommendations", item
    code = _our_code(task.get("code"), urls.CS_TASK_TYPE)
    if code not in _ACTION_DISPLAY or status not in OPEN_TASK:
        return None
    return "actions", {"type": _ACTION_DISPLAY[code or ""], "due": _due(task), "status": status}


def school_document(
    resources: Iterable[dict[str, Any]], *, school_codes: Iterable[str], patient_id: str | None
) -> dict[str, Any]:
    """The minimised document for one young person, from any resources about them.

    ``school_codes``: the school's URN and/or ODS code (recommendations owned by either are the school's).
    """
    school = {c.upper() for c in school_codes}
    out: dict[str, Any] = {
        "patient_id": patient_id,
        "keyworkers": [],
        "reviews": [],
        "actions": [],
        "recommendations": [],
    }
    for resource in resources:
        kind = resource.get("resourceType")
        if kind == "CareTeam":
            out["keyworkers"] += _keyworkers(resource)
        elif kind == "Encounter":
            review = _review(resource)
            if review is not None:
                out["reviews"].append(review)
        elif kind == "Task":
            entry = _task(resource, school)
            if entry is not None:
                out[entry[0]].append(entry[1])
    return out
