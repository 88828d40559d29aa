"""Applying the access policy to FHIR answers: a read needs a legitimate relationship with the person the resource
is about (403 and a refused AuditEvent otherwise); a search leaves out the people the caller may not see."""

from __future__ import annotations

from dataclasses import replace

import orjson
from fastapi import Request

from gateway.access.policy import AccessPolicy
from gateway.auth import Caller
from gateway.errors import Forbidden
from gateway.store.indexing import patient_id_of
from gateway.store.records import StoredResource
from gateway.store.repository import FhirRepository
from gateway.store.search import SearchResult


def person_of(stored: StoredResource) -> str | None:
    if stored.content is None:
        return None
    if stored.res_type == "Patient":
        return stored.res_id
    return patient_id_of(orjson.loads(stored.content))


def policy(request: Request) -> AccessPolicy:
    found: AccessPolicy = request.app.state.access
    return found


async def check_read(request: Request, caller: Caller, repo: FhirRepository, stored: StoredResource) -> None:
    """Refuse (403, audited) a read of a person's data without a legitimate relationship; flag break-glass."""
    if caller.development:
        return
    person = person_of(stored)
    if person is None:
        return
    decision = await policy(request).decide(repo, caller, person)
    trail = request.app.state.audit
    if not decision.allowed:
        trail.interaction(
            caller,
            "read",
            references=(stored.reference,),
            patients=(person,),
            outcome="4",
            description="refused: no legitimate relationship",
        )
        raise Forbidden(
            f"organisation {caller.organisation} has no legitimate relationship with the person this "
            f"{stored.res_type} is about; a break-glass reason may be given where your role allows it"
        )
    if decision.reason == "break-glass":
        trail.interaction(
            caller,
            "read",
            references=(stored.reference,),
            patients=(person,),
            description=f"break-glass: {caller.break_glass}",
        )


async def visible(request: Request, caller: Caller, repo: FhirRepository, result: SearchResult) -> SearchResult:
    """The search result without the resources about people the caller may not see."""
    if caller.development:
        return result
    allowed: dict[str, bool] = {}

    async def ok(stored: StoredResource) -> bool:
        person = person_of(stored)
        if person is None:
            return True
        if person not in allowed:
            allowed[person] = (await policy(request).decide(repo, caller, person)).allowed
        return allowed[person]

    matches = [m for m in result.matches if await ok(m)]
    includes = [i for i in result.includes if await ok(i)]
    if len(matches) == len(result.matches) and len(includes) == len(result.includes):
        return result
    return replace(result, matches=matches, includes=includes, total=None)


async def check_person(request: Request, caller: Caller, repo: FhirRepository, person_id: str) -> None:
    """Refuse (403, audited) access to a person's records without a legitimate relationship (the domain API)."""
    if caller.development:
        return
    decision = await policy(request).decide(repo, caller, person_id)
    if not decision.allowed:
        request.app.state.audit.interaction(
            caller, "read", patients=(person_id,), outcome="4", description="refused: no legitimate relationship"
        )
        raise Forbidden(f"organisation {caller.organisation} has no legitimate relationship with this person")
