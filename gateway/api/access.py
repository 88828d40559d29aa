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
from gateway.sync import sharing
from gateway.sync.sharing import Recipient


def person_of(stored: StoredResource) -> str | None:
    if stored.content is None:
        return None
    if stored.res_type == "Patient":
        return stored.res_id
    return patient_id_of(orjson.loads(stored.content))


def policy(request: Request) -> AccessPolicy:
    found: AccessPolicy = request.app.state.access
    return found


#: Organisation types → the sharing profile (gateway.sync.sharing) their reads are reduced to. An ICB, like an
#: NHS provider, reads the full record; a type not listed reads nothing about people.
RECIPIENTS: dict[str, Recipient] = {
    "nhs-provider": Recipient.NHS_PROVIDER,
    "icb": Recipient.NHS_PROVIDER,
    "local-authority": Recipient.LOCAL_AUTHORITY,
    "school": Recipient.SCHOOL,
    "childrens-home": Recipient.CHILDRENS_HOME,
    "youth-justice": Recipient.YOUTH_JUSTICE,
}


def minimised(caller: Caller, stored: StoredResource) -> StoredResource | None:
    """The resource as this caller's organisation type may see it (least data), or None when it may not at all."""
    if caller.development or stored.content is None:
        return stored
    recipient = RECIPIENTS.get(caller.organisation_type)
    if recipient is None:
        return None
    resource = orjson.loads(stored.content)
    reduced = sharing.reduce(recipient, resource)
    if reduced is None:
        return None
    return stored if reduced is resource else replace(stored, content=orjson.dumps(reduced))


async def check_read(request: Request, caller: Caller, repo: FhirRepository, stored: StoredResource) -> StoredResource:
    """Refuse (403, audited) a read of a person's data without a legitimate relationship, or of a resource the
    caller's sharing profile does not include; flag break-glass. Returns the resource reduced to that profile."""
    if caller.development:
        return stored
    person = person_of(stored)
    if person is None:
        return stored
    shown = minimised(caller, stored)
    if shown is None:
        request.app.state.audit.interaction(
            caller,
            "read",
            references=(stored.reference,),
            patients=(person,),
            outcome="4",
            description="refused: not in the sharing profile",
        )
        raise Forbidden(f"a {caller.organisation_type} organisation does not receive {stored.res_type} resources")
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
    return shown


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

    def shown(items: list[StoredResource]) -> list[StoredResource]:
        return [m for m in (minimised(caller, i) for i in items) if m is not None]

    matches = shown([m for m in result.matches if await ok(m)])
    includes = shown([i for i in result.includes if await ok(i)])
    if len(matches) == len(result.matches) and len(includes) == len(result.includes):
        return replace(result, matches=matches, includes=includes)
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
