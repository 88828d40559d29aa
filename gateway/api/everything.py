"""``Patient/{id}/$everything`` (FHIR R4): the Patient and every resource in their compartment that the caller may
see, as a searchset Bundle, paged with ``_count`` and ``_offset``; ``_type`` narrows the types, ``_since`` to what
changed after an instant, ``start`` and ``end`` to care dates in a range (R4 Patient-everything). Needs a
legitimate relationship with the person; each resource is reduced to the caller's sharing profile; one AuditEvent
records the access.

Paging is exact at any size: the compartment is read type by type (and, with ``start``/``end``, dated then
undated), each part in pages of the store's largest page, so ``total`` counts every resource the caller may see and
the links walk all of them. Where the caller's profile shows every resource of a type (perhaps with fewer elements),
that type costs one query for its part of the page (its size from the store's count); where some are withheld
(sensitive ones, for recipients other than NHS providers) the type is read through to count what is shown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.api.access import check_person, minimised, shown_of_type
from gateway.api.deps import CallerDep, repository
from gateway.api.fhir import base_url
from gateway.api.render import render_search
from gateway.auth import Caller
from gateway.errors import InvalidRequest
from gateway.store.dates import date_range
from gateway.store.records import StoredResource
from gateway.store.repository import FhirRepository
from gateway.store.search import SearchResult
from gateway.store.searchparams import parameter
from mappings.fhir import SUPPORTED_TYPES

router = APIRouter(prefix="/fhir", tags=["FHIR R4 operations"])

#: How many resources one store search is asked for while reading a compartment (the store may answer fewer: its
#: largest page, ``KWG_MAX_PAGE_SIZE``; the reading goes on until the store says there are no more).
CHUNK = 500

#: The clinical ("care") date of each compartment type that has one: the search parameter that ``start`` and
#: ``end`` are applied to. Types not listed (Patient, RelatedPerson) have no care date and are never narrowed.
CARE_DATE: dict[str, str] = {
    "CareTeam": "date",  # period
    "EpisodeOfCare": "date",  # period
    "Encounter": "date",  # period
    "Flag": "date",  # period
    "Observation": "date",  # effective[x]
    "Condition": "onset-date",  # onset[x]
    "Task": "period",  # executionPeriod
    "Consent": "date",  # dateTime
    "ServiceRequest": "occurrence",  # occurrence[x]
    "CarePlan": "date",  # period
    "Composition": "date",  # date
    "DocumentReference": "date",  # date
    "Provenance": "recorded",  # recorded
    "AuditEvent": "date",  # recorded
}


def compartment_param(res_type: str) -> str | None:
    """The search parameter that puts a resource in a Patient's compartment, if the type has one."""
    for name in ("patient", "subject"):
        found = parameter(res_type, name)
        if found is not None and (not found.targets or "Patient" in found.targets):
            return name
    return None


@dataclass(frozen=True, slots=True)
class Part:
    """One search over the compartment: a type and the parameters that select its part of the answer."""

    res_type: str
    params: tuple[tuple[str, str], ...]


def parts(
    patient_id: str, types: Sequence[str], *, since: str | None, start: str | None, end: str | None
) -> list[Part]:
    """The searches that together read the person's compartment, in the order the Bundle lists them.

    ``_since`` keeps what changed after that instant. With ``start``/``end`` a type with a care date is read twice:
    the resources whose care date overlaps the range, then those without a care date (which a range cannot place
    outside itself, so they are kept)."""
    found: list[Part] = []
    for res_type in types:
        name = compartment_param(res_type)
        if name is None or res_type == "Patient":
            continue
        base = [(name, f"Patient/{patient_id}")]
        if since:
            base.append(("_lastUpdated", f"gt{since}"))
        care = CARE_DATE.get(res_type)
        if care is None or not (start or end):
            found.append(Part(res_type, tuple(base)))
            continue
        ranged = [*base, *([(care, f"ge{start}")] if start else []), *([(care, f"le{end}")] if end else [])]
        found.append(Part(res_type, tuple(ranged)))
        found.append(Part(res_type, (*base, (f"{care}:missing", "true"))))
    return found


@dataclass(slots=True)
class Window:
    """The page being filled: resources number ``offset`` to ``offset + count - 1`` of all those shown."""

    offset: int
    count: int
    seen: int = 0  # how many shown resources come before the part being read
    page: list[StoredResource] = field(default_factory=list)

    def add(self, stored: StoredResource) -> None:
        """One more shown resource, kept when it falls in the page."""
        if self.offset <= self.seen < self.offset + self.count:
            self.page.append(stored)
        self.seen += 1

    def room(self) -> tuple[int, int]:
        """Where in the next part the page goes on (its offset there) and how many more it takes."""
        skip = max(0, self.offset - self.seen)
        return skip, self.offset + self.count - self.seen - skip


async def chunks(
    repo: FhirRepository, res_type: str, params: Sequence[tuple[str, str]]
) -> AsyncIterator[list[StoredResource]]:
    """Every match of a search, in pages of up to :data:`CHUNK` (by id), until the store has no more."""
    offset = 0
    while True:
        paging = [("_sort", "_id"), ("_count", str(CHUNK)), ("_offset", str(offset)), ("_total", "none")]
        result = await repo.search(res_type, [*params, *paging])
        if result.matches:
            yield result.matches
        if not result.has_next or not result.matches:
            return
        offset += len(result.matches)


async def _read_all(repo: FhirRepository, caller: Caller, part: Part, window: Window) -> None:
    """A part whose resources are shown one by one: read through, counting what the caller may see."""
    async for found in chunks(repo, part.res_type, part.params):
        for stored in found:
            shown = minimised(caller, stored)
            if shown is not None:
                window.add(shown)


async def _read_window(repo: FhirRepository, caller: Caller, part: Part, window: Window) -> None:
    """A part whose every resource is shown: read only its share of the page; its size from the store."""
    skip, wanted = window.room()
    if wanted <= 0:
        counted = await repo.search(part.res_type, [*part.params, ("_summary", "count")])
        window.seen += counted.total or 0
        return
    params = [*part.params, ("_sort", "_id")]
    result = await repo.search(part.res_type, [*params, ("_count", str(min(wanted, CHUNK))), ("_offset", str(skip))])
    size = result.total or 0
    got = result.matches
    while result.has_next and len(got) < wanted:
        more = [("_count", str(min(wanted - len(got), CHUNK))), ("_offset", str(skip + len(got))), ("_total", "none")]
        result = await repo.search(part.res_type, [*params, *more])
        if not result.matches:
            break
        got = [*got, *result.matches]
    window.page += [m for m in (minimised(caller, r) for r in got) if m is not None]
    window.seen += size


async def gather(
    repo: FhirRepository,
    caller: Caller,
    patient: StoredResource | None,
    found: Sequence[Part],
    *,
    offset: int,
    count: int,
) -> tuple[list[StoredResource], int]:
    """One page of what the caller may see (the Patient first, then each part in turn) and how many there are."""
    window = Window(offset, count)
    if patient is not None and (shown := minimised(caller, patient)) is not None:
        window.add(shown)
    for part in found:
        kind = shown_of_type(caller, part.res_type)
        if kind == "all":
            await _read_window(repo, caller, part, window)
        elif kind == "some":
            await _read_all(repo, caller, part, window)
    return window.page, window.seen


def _date(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        date_range(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name} must be a FHIR date (2025, 2025-03 or 2025-03-14), not {value!r}") from exc
    return value


@router.get("/Patient/{patient_id}/$everything", summary="Everything about one person (Patient $everything)")
async def everything(
    patient_id: str,
    request: Request,
    caller: CallerDep,
    count: Annotated[int, Query(alias="_count", ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(alias="_offset", ge=0)] = 0,
    types: Annotated[str | None, Query(alias="_type")] = None,
    since: Annotated[str | None, Query(alias="_since")] = None,
    start: Annotated[str | None, Query(description="Care dates from (R4 Patient-everything)")] = None,
    end: Annotated[str | None, Query(description="Care dates up to (R4 Patient-everything)")] = None,
) -> Response:
    repo = repository(request)
    patient = await repo.read("Patient", patient_id)  # 404 / 410 for an unknown or deleted person
    await check_person(request, caller, repo, patient_id)
    wanted = sorted(SUPPORTED_TYPES) if types is None else [t.strip() for t in types.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in SUPPORTED_TYPES]
    if unknown:
        raise InvalidRequest(f"_type names types this server does not hold: {', '.join(unknown)}")
    if since is not None:
        _date("_since", since)
    found = parts(patient_id, wanted, since=since, start=_date("start", start), end=_date("end", end))
    first = patient if "Patient" in wanted else None
    page, total = await gather(repo, caller, first, found, offset=offset, count=count)
    request.app.state.audit.interaction(
        caller, "operation", tuple(page), patients=(patient_id,), query=f"Patient/{patient_id}/$everything"
    )
    kept = [(k, v) for k, v in (("_type", types), ("_since", since), ("start", start), ("end", end)) if v]
    result = SearchResult(
        matches=page, total=total, offset=offset, count=count, has_next=offset + count < total, params=kept
    )
    return render_search(result, f"Patient/{patient_id}/$everything", base_url(request))
