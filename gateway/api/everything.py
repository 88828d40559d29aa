"""``Patient/{id}/$everything`` (FHIR R4): the Patient and every resource in their compartment that the caller may
see, as a searchset Bundle, paged with ``_count`` and ``_offset``; ``_type`` narrows the types, ``_since`` to what
changed after an instant. Needs a legitimate relationship with the person; each resource is reduced to the
caller's sharing profile; one AuditEvent records the access.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.api.access import check_person, minimised
from gateway.api.deps import CallerDep, repository
from gateway.api.fhir import base_url
from gateway.api.render import render_search
from gateway.errors import InvalidRequest
from gateway.store.records import StoredResource
from gateway.store.search import SearchResult
from gateway.store.searchparams import parameter
from mappings.fhir import SUPPORTED_TYPES

router = APIRouter(prefix="/fhir", tags=["FHIR R4 operations"])

#: How many resources of one type $everything gathers for one person (beyond it, page with _type).
PER_TYPE = 1000


def compartment_param(res_type: str) -> str | None:
    """The search parameter that puts a resource in a Patient's compartment, if the type has one."""
    for name in ("patient", "subject"):
        found = parameter(res_type, name)
        if found is not None and (not found.targets or "Patient" in found.targets):
            return name
    return None


@router.get("/Patient/{patient_id}/$everything", summary="Everything about one person (Patient $everything)")
async def everything(
    patient_id: str,
    request: Request,
    caller: CallerDep,
    count: Annotated[int, Query(alias="_count", ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(alias="_offset", ge=0)] = 0,
    types: Annotated[str | None, Query(alias="_type")] = None,
    since: Annotated[str | None, Query(alias="_since")] = None,
) -> Response:
    repo = repository(request)
    patient = await repo.read("Patient", patient_id)  # 404 / 410 for an unknown or deleted person
    await check_person(request, caller, repo, patient_id)
    wanted = sorted(SUPPORTED_TYPES) if types is None else [t.strip() for t in types.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in SUPPORTED_TYPES]
    if unknown:
        raise InvalidRequest(f"_type names types this server does not hold: {', '.join(unknown)}")
    found: list[StoredResource] = [patient] if "Patient" in wanted else []
    for res_type in wanted:
        name = compartment_param(res_type)
        if name is None or res_type == "Patient":
            continue
        params = [(name, f"Patient/{patient_id}"), ("_count", str(PER_TYPE)), ("_sort", "_id")]
        if since:
            params.append(("_lastUpdated", f"gt{since}"))
        found += (await repo.search(res_type, params)).matches
    shown = [m for m in (minimised(caller, r) for r in found) if m is not None]
    page = shown[offset : offset + count]
    request.app.state.audit.interaction(
        caller, "operation", tuple(page), patients=(patient_id,), query=f"Patient/{patient_id}/$everything"
    )
    result = SearchResult(
        matches=page,
        total=len(shown),
        offset=offset,
        count=count,
        has_next=offset + count < len(shown),
        params=[("_type", types)] if types else [],
    )
    return render_search(result, f"Patient/{patient_id}/$everything", base_url(request))
