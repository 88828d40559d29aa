"""Which stored resources make up a record: the main resource first, then those that belong to it.

The FHIR store is the only copy of a record; reading one means collecting its resources and handing them to the
pure ``from_fhir`` mapping. Resources derived from a record carry ids derived from its id (``<id>-consent``,
``<id>-views``, ``<id>-report``) and are read by id; the rest are found by the search parameters that point at the
main resource (rating Observations by patient and code, then by ``focus``; recommendation Tasks by encounter).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from gateway.errors import Gone, NotFound
from gateway.store.records import StoredResource
from gateway.store.repository import FhirRepository
from mappings.keyworking import contact, register, review, urls
from mappings.keyworking.elements import Resource
from mappings.keyworking.mapping import MAIN_RESOURCE
from mappings.keyworking.records import (
    CareTeam,
    Contact,
    KeyworkingCase,
    Person,
    Record,
    RegisterEntry,
    ReviewMeeting,
)
from mappings.keyworking.terminology import ObservationCode, TaskType

#: The most resources of one kind a record gathers in one search (a register entry's rating decisions).
GATHER_LIMIT = "500"


def parse(stored: StoredResource) -> Resource:
    assert stored.content is not None
    resource: Resource = orjson.loads(stored.content)
    return resource


async def read_optional(repo: FhirRepository, res_type: str, res_id: str) -> Resource | None:
    """The resource, or None when it was never written or has been deleted."""
    try:
        return parse(await repo.read(res_type, res_id))
    except (NotFound, Gone):
        return None


async def search(repo: FhirRepository, res_type: str, params: Sequence[tuple[str, str]]) -> list[Resource]:
    result = await repo.search(res_type, [*params, ("_count", GATHER_LIMIT)])
    return [parse(r) for r in result.matches]


def _points_at(resource: Resource, element: str, reference: str) -> bool:
    value: Any = resource.get(element)
    values = value if isinstance(value, list) else [value]
    return any(isinstance(v, dict) and v.get("reference") == reference for v in values)


async def gather(repo: FhirRepository, kind: type[Record], record_id: str) -> list[Resource]:
    """The main resource of record ``record_id`` of this kind and the resources that belong to it.

    Raises :class:`NotFound` (or :class:`Gone`) when there is no main resource.
    """
    main_type = MAIN_RESOURCE[kind]
    main = parse(await repo.read(main_type, record_id))
    return [main, *await belonging_to(repo, kind, main)]


async def belonging_to(repo: FhirRepository, kind: type[Record], main: Resource) -> list[Resource]:
    """The resources other than the main one that make up the record whose main resource is ``main``."""
    rid = str(main["id"])
    found: list[Resource | None] = []
    if kind is Person:
        found += await search(repo, "Condition", [("subject", f"Patient/{rid}")])
    elif kind is RegisterEntry:
        patient = str(main.get("patient", {}).get("reference", ""))
        code = f"{urls.code_system('keyworking-observation')}|{ObservationCode.DSR_RATING.value}"
        ratings = await search(repo, "Observation", [("subject", patient), ("code", code)])
        found += [o for o in ratings if _points_at(o, "focus", f"EpisodeOfCare/{rid}")]
        found += await read_each(repo, [("Flag", register.flag_id(rid)), ("Consent", register.consent_id(rid))])
    elif kind is Contact:
        found.append(await read_optional(repo, "Observation", contact.views_id(rid)))
    elif kind is ReviewMeeting:
        report, consent = await read_each(
            repo, [("Composition", review.report_id(rid)), ("Consent", review.consent_id(rid))]
        )
        found.append(report)
        tasks = await search(repo, "Task", [("encounter", f"Encounter/{rid}")])
        found += [t for t in tasks if _is_recommendation(t)]
        found.append(consent)
    elif kind not in (KeyworkingCase, CareTeam):
        raise TypeError(f"no gathering rule for {kind.__name__}")
    return [r for r in found if r is not None]


async def read_each(repo: FhirRepository, keys: Sequence[tuple[str, str]]) -> list[Resource | None]:
    """Each resource (None when never written or deleted), read in one statement."""
    return [None if stored is None else parse(stored) for stored in await repo.read_current(keys)]


def _is_recommendation(task: Resource) -> bool:
    code = task.get("code", {})
    return any(
        c.get("system") == urls.CS_TASK_TYPE and c.get("code") == TaskType.CETR_RECOMMENDATION.value
        for c in code.get("coding", ())
    )
