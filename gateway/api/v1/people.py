"""``/api/v1/people``: children and young people (0-25), each a UK Core Patient with their diagnoses as Conditions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.api.deps import CallerDep
from gateway.api.v1.common import audit, records
from gateway.api.v1.crud import record_routes
from gateway.api.v1.guard import about_visible_people, list_shown
from gateway.errors import InvalidRequest
from mappings.identifiers import NHS_NUMBER_SYSTEM, normalise_nhs_number
from mappings.keyworking import urls
from mappings.keyworking.records import Person

router = APIRouter(tags=["People"])
record_routes(router, Person, "people", listed_by_person=False)


@router.get("/people", response_model=dict[str, list[Person]])
async def find_people(
    request: Request,
    caller: CallerDep,
    nhs_number: Annotated[str | None, Query(description="Ten digits, spaces allowed")] = None,
    upn: Annotated[str | None, Query(description="Unique pupil number")] = None,
) -> Response:
    """Find a young person by NHS number or unique pupil number."""
    if (nhs_number is None) == (upn is None):
        raise InvalidRequest("give exactly one of nhs_number and upn")
    service = records(request, caller)
    if nhs_number is not None:
        found = await service.people_by_identifier(NHS_NUMBER_SYSTEM, normalise_nhs_number(nhs_number))
    else:
        assert upn is not None
        found = await service.people_by_identifier(urls.UPN, upn.strip().upper())
    # As a search: the people the caller may not see are left out; the others reduced to its sharing profile.
    shown = await about_visible_people(request, caller, found)
    audit(request, caller, "search-type", shown, query="people?" + ("nhs_number" if nhs_number else "upn"))
    return list_shown(caller, shown)
