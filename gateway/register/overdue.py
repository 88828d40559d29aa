"""The overdue sweep: which open Tasks are past their due date today, and the patched Task to store for each.

Overdue is a *business* status, not a FHIR status: the Task stays ``requested``/``accepted``/``in-progress`` (the
owner may still do it) and gains ``businessStatus`` coded ``overdue`` in our task-business-status code system, so
``Task?business-status=overdue`` finds every one (the store indexes ``business-status`` as a token). A Task whose
due date moves into the future again (rescheduled) loses the flag. A closed Task keeps it: that it was late is
part of the record (the 90% community C(E)TR standard is measured on it).

Works on any Task with ``restriction.period.end`` (rule Tasks and C(E)TR recommendations alike). Pure: today is
an argument.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from mappings.keyworking import urls
from mappings.keyworking.elements import Resource

#: Our code system for Task.businessStatus (not yet in terminology.CODE_SYSTEMS; see docs/rules.md).
CS_TASK_BUSINESS_STATUS: Final = urls.code_system("task-business-status")
OVERDUE_CODE: Final = "overdue"
OVERDUE: Final[dict[str, Any]] = {
    "coding": [{"system": CS_TASK_BUSINESS_STATUS, "code": OVERDUE_CODE, "display": "Overdue"}],
    "text": "Overdue",
}

#: FHIR Task.status codes in which the work is still to be done.
OPEN_TASK_STATUSES: Final = frozenset({"draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold"})


def due_date(task: Resource) -> date | None:
    """``restriction.period.end`` as a date (a dateTime counts by its date), or None when absent or unreadable."""
    restriction = task.get("restriction")
    period = restriction.get("period") if isinstance(restriction, dict) else None
    end = period.get("end") if isinstance(period, dict) else None
    if not isinstance(end, str) or len(end) < 10:
        return None
    try:
        return date.fromisoformat(end[:10])
    except ValueError:
        return None


def is_flagged_overdue(task: Resource) -> bool:
    """Whether the Task carries our ``overdue`` business status."""
    business = task.get("businessStatus")
    codings = business.get("coding", ()) if isinstance(business, dict) else ()
    return any(
        isinstance(c, dict) and c.get("system") == CS_TASK_BUSINESS_STATUS and c.get("code") == OVERDUE_CODE
        for c in codings
    )


def is_overdue(task: Resource, today: date) -> bool:
    """Open and due before today (due today is not yet overdue)."""
    due = due_date(task)
    return task.get("status") in OPEN_TASK_STATUSES and due is not None and due < today


@dataclass(frozen=True, slots=True)
class Sweep:
    """The Tasks to write back: newly overdue ones (flagged) and rescheduled ones (flag removed)."""

    flagged: tuple[Resource, ...] = ()
    cleared: tuple[Resource, ...] = ()

    @property
    def changed(self) -> tuple[Resource, ...]:
        return self.flagged + self.cleared


def mark_overdue(task: Resource) -> Resource:
    """A copy of the Task with ``businessStatus`` overdue; ``status`` and everything else unchanged."""
    out = copy.deepcopy(task)
    out["businessStatus"] = copy.deepcopy(OVERDUE)
    return out


def clear_overdue(task: Resource) -> Resource:
    out = copy.deepcopy(task)
    out.pop("businessStatus", None)
    return out


def sweep_overdue(tasks: Iterable[Resource], today: date) -> Sweep:
    """Which Tasks change today: open, past due and not yet flagged → flagged; flagged, open, not past due → cleared.

    A Task whose businessStatus is something other than ours is left alone (another system owns it). Running the
    sweep on its own output changes nothing.
    """
    flagged: list[Resource] = []
    cleared: list[Resource] = []
    for task in tasks:
        if task.get("resourceType") != "Task":
            continue
        flag = is_flagged_overdue(task)
        overdue = is_overdue(task, today)
        if overdue and not flag and "businessStatus" not in task:
            flagged.append(mark_overdue(task))
        elif flag and not overdue and task.get("status") in OPEN_TASK_STATUSES:
            cleared.append(clear_overdue(task))
    return Sweep(tuple(flagged), tuple(cleared))
