"""``/api/v1/tasks``: the Tasks the register rules raised for a young person (offer a community C(E)TR, the
post-admission C(E)TR, inpatient C(E)TRs, oversight visits, 12-week reviews, monitoring contacts), with due dates,
status and whether they are overdue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.api.access import check_person
from gateway.api.deps import CallerDep, repository
from gateway.api.v1.guard import list_shown
from gateway.domain.gather import search
from gateway.register import tasks as rule_tasks
from gateway.register.outcomes import RuleTask
from gateway.register.overdue import is_overdue
from mappings.keyworking.records import RecordId

router = APIRouter(tags=["Register rules"])


@router.get("/tasks", response_model=dict[str, list[RuleTask]])
async def list_tasks(
    request: Request,
    caller: CallerDep,
    person_id: RecordId,
    overdue: Annotated[bool, Query(description="Only open Tasks past their due date")] = False,
    open_only: Annotated[bool, Query(alias="open", description="Only Tasks still to do")] = False,
) -> Response:
    """A young person's rule Tasks, soonest due first (as the caller's sharing profile allows)."""
    await check_person(request, caller, repository(request), person_id, "search-type")
    today = datetime.now(UTC).date()
    found = []
    for task in await search(repository(request), "Task", [("subject", f"Patient/{person_id}")]):
        if not rule_tasks.is_rule_task(task):
            continue
        late = is_overdue(task, today)
        if overdue and not late:
            continue
        record = rule_tasks.from_fhir(task).model_copy(update={"overdue": late})
        if open_only and not record.is_open:
            continue
        found.append(record)
    found.sort(key=lambda t: (t.due, t.id))
    request.app.state.audit.interaction(
        caller,
        "search-type",
        references=tuple(f"Task/{t.id}" for t in found[:50]),
        patients=(person_id,),
        query=f"tasks?person_id={person_id}",
    )
    return list_shown(caller, found, exclude_none=False)
