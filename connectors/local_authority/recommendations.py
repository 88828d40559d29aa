"""C(E)TR recommendations a local authority owns, and its status words as FHIR Task.status. Pure.

A recommendation is a Task (``mappings.keyworking.review``) whose ``owner-agency`` extension references the
agency by ODS code; the LA answers for those whose ODS code is its own. The LA's API reports progress in its own
words; :data:`LA_STATUS` is the one table turning them into Task.status codes (R4 task-status).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from mappings.keyworking import urls

TaskStatus = Literal[
    "draft",
    "requested",
    "received",
    "accepted",
    "rejected",
    "ready",
    "cancelled",
    "in-progress",
    "on-hold",
    "failed",
    "completed",
    "entered-in-error",
]

#: The LA API's status words (case and spacing ignored) and the Task.status each means.
LA_STATUS: dict[str, TaskStatus] = {
    "open": "requested",
    "not started": "requested",
    "requested": "requested",
    "accepted": "accepted",
    "in progress": "in-progress",
    "started": "in-progress",
    "on hold": "on-hold",
    "done": "completed",
    "complete": "completed",
    "completed": "completed",
    "cancelled": "cancelled",
    "withdrawn": "cancelled",
    "declined": "rejected",
    "failed": "failed",
    "not achieved": "failed",
}


def task_status(la_status: str) -> TaskStatus | None:
    """The Task.status for an LA status word, or None when the word is not one we know."""
    return LA_STATUS.get(" ".join(la_status.lower().replace("-", " ").replace("_", " ").split()))


def owner_agency_code(task: dict[str, Any]) -> str | None:
    """The ODS code in a Task's owner-agency extension, if it has one."""
    for extension in task.get("extension", ()):
        if not isinstance(extension, dict) or extension.get("url") != urls.EXT_OWNER_AGENCY:
            continue
        reference = extension.get("valueReference")
        identifier = reference.get("identifier") if isinstance(reference, dict) else None
        if isinstance(identifier, dict) and identifier.get("system") == urls.ODS_ORGANISATION:
            value = identifier.get("value")
            return value.upper() if isinstance(value, str) else None
    return None


def is_recommendation(resource: dict[str, Any]) -> bool:
    """A C(E)TR recommendation Task: our profile, or our task-type code ``cetr-recommendation``."""
    if resource.get("resourceType") != "Task":
        return False
    meta = resource.get("meta")
    if isinstance(meta, dict) and urls.CETR_RECOMMENDATION_TASK in meta.get("profile", ()):
        return True
    code = resource.get("code")
    codings = code.get("coding", ()) if isinstance(code, dict) else ()
    return any(
        isinstance(c, dict) and c.get("system") == urls.CS_TASK_TYPE and c.get("code") == "cetr-recommendation"
        for c in codings
    )


def owned_by(resources: Iterable[dict[str, Any]], ods_code: str) -> list[dict[str, Any]]:
    """The recommendation Tasks whose owner agency is the organisation with this ODS code, in the order given."""
    wanted = ods_code.upper()
    return [r for r in resources if is_recommendation(r) and owner_agency_code(r) == wanted]
