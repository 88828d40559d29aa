"""``/api/v1/contacts``, ``/api/v1/reviews`` and ``/api/v1/recommendations``: what happens with and for a young person.

A contact (session, home or school visit, monitoring call...) is an Encounter, with the young person's views in a
linked Observation marked sensitive. A C(E)TR or LAEP meeting is an Encounter with its report (a Composition: the
four key questions), its consent to share, and one Task per recommendation; owners update a recommendation's status
through ``PATCH /recommendations/{id}`` until it is done.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.api.access import Screen, check_person
from gateway.api.deps import CallerDep, repository
from gateway.api.provenance import write_with_provenance
from gateway.api.v1.bodies import RecommendationUpdate
from gateway.api.v1.common import IdempotencyKey, IfMatch, idempotent, parse_if_match
from gateway.api.v1.crud import record_routes
from gateway.api.v1.guard import authorise_write, list_shown, read_shown, shown_answer
from gateway.domain.gather import search
from gateway.domain.service import read_resource
from gateway.errors import Conflict, InvalidRequest, NotFound, PreconditionFailed
from gateway.store.indexing import patient_id_of
from mappings.keyworking import lifecycle, urls
from mappings.keyworking.errors import NotOurShape
from mappings.keyworking.records import (
    Contact,
    OdsCode,
    Recommendation,
    RecommendationStatus,
    RecordId,
    ResourceId,
    ReviewMeeting,
)
from mappings.keyworking.review import recommendation_from_fhir
from mappings.keyworking.terminology import TaskType

router = APIRouter()
record_routes(router, Contact, "contacts")
record_routes(router, ReviewMeeting, "reviews")
for route in router.routes:
    route.tags = ["Contacts"] if "/contacts" in getattr(route, "path", "") else ["C(E)TRs and LAEPs"]  # type: ignore[attr-defined]

RECOMMENDATION = f"{urls.CS_TASK_TYPE}|{TaskType.CETR_RECOMMENDATION.value}"
OPEN = (RecommendationStatus.REQUESTED, RecommendationStatus.ACCEPTED, RecommendationStatus.IN_PROGRESS)


@router.get("/recommendations", tags=["C(E)TRs and LAEPs"], response_model=dict[str, list[Recommendation]])
async def find_recommendations(
    request: Request,
    caller: CallerDep,
    person_id: RecordId | None = None,
    owner_agency: Annotated[OdsCode | None, Query(description="ODS code of the owning agency")] = None,
    status: RecommendationStatus | None = None,
    overdue: Annotated[bool, Query(description="Only open recommendations past their due date")] = False,
) -> Response:
    """C(E)TR recommendations by person, owning agency, status, or overdue."""
    if person_id is None and owner_agency is None:
        raise InvalidRequest("give person_id or owner_agency")
    params = [("code", RECOMMENDATION)]
    if person_id is not None:
        params.append(("patient", f"Patient/{person_id}"))
    if status is not None:
        params.append(("status", status.value))
    if person_id is not None:
        await check_person(request, caller, repository(request), person_id, "search-type")
    found: list[tuple[Recommendation, str | None]] = []
    today = date.today()
    for task in await search(repository(request), "Task", params):
        try:
            recommendation = recommendation_from_fhir(task)
        except NotOurShape:
            continue
        if owner_agency is not None and recommendation.owner_agency.ods_code != owner_agency:
            continue
        if overdue and not (recommendation.status in OPEN and recommendation.due < today):
            continue
        found.append((recommendation, patient_id_of(task)))
    # As a search: recommendations about people the caller may not see are left out.
    allowed = await Screen(request, caller, repository(request)).allowed_people(
        [p for _, p in found if p is not None], "search-type"
    )
    kept = [(r, p) for r, p in found if caller.development or p in allowed]
    query = "recommendations?" + "&".join(k for k, v in (("person_id", person_id), ("owner_agency", owner_agency)) if v)
    request.app.state.audit.interaction(
        caller,
        "search-type",
        references=tuple(f"Task/{r.id}" for r, _ in kept[:50]),
        patients=tuple(dict.fromkeys(p for _, p in kept if p is not None)),
        query=query,
    )
    return list_shown(caller, [r for r, _ in kept])


@router.get("/recommendations/{recommendation_id}", tags=["C(E)TRs and LAEPs"], response_model=Recommendation)
async def read_recommendation(recommendation_id: ResourceId, request: Request, caller: CallerDep) -> Response:
    task, version = await read_resource(repository(request), "Task", recommendation_id)
    recommendation = _recommendation(task, recommendation_id)
    person = patient_id_of(task)
    if person is not None:
        await check_person(request, caller, repository(request), person)
    shown = read_shown(request, caller, recommendation, version=version)
    request.app.state.audit.interaction(
        caller, "read", references=(f"Task/{recommendation_id}",), patients=(person,) if person else ()
    )
    return shown


@router.patch("/recommendations/{recommendation_id}", tags=["C(E)TRs and LAEPs"], response_model=Recommendation)
async def update_recommendation(
    recommendation_id: ResourceId,
    update: RecommendationUpdate,
    request: Request,
    caller: CallerDep,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The owner's status update: requested → accepted → in-progress → completed (or cancelled, failed)."""
    await authorise_write(request, caller, Recommendation, recommendation_id)

    async def write(_seed: str | None) -> Response:
        repo = repository(request)
        task, version = await read_resource(repo, "Task", recommendation_id)
        expected = parse_if_match(if_match)
        if expected is not None and expected != version:
            raise PreconditionFailed(
                f"If-Match version {expected} is stale: the recommendation is at version {version}"
            )
        updated = lifecycle.update_recommendation(_recommendation(task, recommendation_id), update.status)
        meta = task.get("meta")
        kept = (
            {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")} if isinstance(meta, dict) else {}
        )
        patched = {**task, "status": updated.status.value, "meta": kept}
        try:
            result = await write_with_provenance(
                repo, caller, lambda tx: tx.update("Task", recommendation_id, patched, if_match=version)
            )
        except PreconditionFailed:
            raise Conflict("the recommendation changed while this request was handled; read it and try again") from None
        assert result.resource is not None
        return shown_answer(caller, updated, version=result.resource.version_id)

    return await idempotent(request, caller, idempotency_key, write)


def _recommendation(task: dict[str, object], recommendation_id: str) -> Recommendation:
    try:
        return recommendation_from_fhir(task)
    except NotOurShape:
        raise NotFound(f"there is no recommendation {recommendation_id!r}") from None
