"""Applying the access policy to FHIR answers: a read needs a legitimate relationship with the person the resource
is about (403 and a refused AuditEvent otherwise); a search, a history and a Bundle's GET entries leave out the
people the caller may not see; everything shown is reduced to the caller's sharing profile; AuditEvents follow
their own rule (:mod:`gateway.access.audit_events`). Access that only break-glass allowed is audited, flagged BTG."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import orjson
from fastapi import Request

from gateway.access import audit_events
from gateway.access.policy import AccessPolicy, Decision
from gateway.auth import Caller
from gateway.errors import Forbidden, Gone, NotFound
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


def shown_of_type(caller: Caller, res_type: str) -> Literal["all", "some", "none"]:
    """How many of a type's resources :func:`minimised` lets through for this caller: all of them (perhaps with
    fewer elements), none, or some (resources labelled sensitive are withheld, so each must be looked at)."""
    if caller.development:
        return "all"
    recipient = RECIPIENTS.get(caller.organisation_type)
    if recipient is None or not sharing.allows(recipient, res_type):
        return "none"
    return "all" if recipient is sharing.Recipient.NHS_PROVIDER else "some"


async def owned_subscription(request: Request, caller: Caller, subscription_id: str) -> bool:
    """Whether the caller's organisation made this Subscription (only it reads, changes or deletes it)."""
    if caller.development:
        return True
    from gateway.sync import subscriptions  # it applies these access rules to notifications: imported late

    owner = await subscriptions.owner_organisation(request.app.state.engine, subscription_id)
    return owner is not None and owner.upper() == caller.organisation.upper()


@dataclass(frozen=True, slots=True)
class Judgement:
    """What a caller may see of one stored version: ``shown`` (reduced to its sharing profile), or None and why
    (``refusal``, the audit's words; ``message``, the caller's); the person it is about; and whether only
    break-glass let it through."""

    shown: StoredResource | None
    person: str | None = None
    refusal: str | None = None
    message: str | None = None
    break_glass: bool = False


class Screen:
    """The access rules applied for one request's caller: each person is decided once per request.

    The same judgement serves a read (403 when refused), a search, a history and a Bundle's GET entries (the
    refused are left out). A deleted version (history) is judged by the version before it: who it was about.
    """

    def __init__(self, request: Request, caller: Caller, repo: FhirRepository) -> None:
        self.request = request
        self.caller = caller
        self.repo = repo
        self._decisions: dict[str, Decision] = {}
        #: The people whose data this screen let through, in order (for the AuditEvent).
        self.patients: dict[str, None] = {}

    async def decision(self, person: str) -> Decision:
        found = self._decisions.get(person)
        if found is None:
            found = self._decisions[person] = await policy(self.request).decide(self.repo, self.caller, person)
        return found

    async def judge(self, stored: StoredResource, *, listing: bool) -> Judgement:
        """``listing`` (search, history, a Bundle's search): a resource about nobody is reduced to the sharing
        profile as well, as searches always were; a read passes such a resource as it is."""
        caller = self.caller
        if caller.development:
            return Judgement(stored)
        basis = stored if stored.content is not None else await self._before_deletion(stored)
        if basis is None or basis.content is None:
            return Judgement(
                None,
                refusal="refused: what the deletion removed cannot be judged",
                message=f"version {stored.version_id} of {stored.reference} is a deletion whose subject is unknown",
            )
        if basis.res_type == "AuditEvent":
            agreements = policy(self.request).agreements
            if audit_events.may_see(caller, orjson.loads(basis.content), agreements):
                return Judgement(stored)
            return Judgement(
                None,
                refusal="refused: an AuditEvent of another organisation",
                message=f"organisation {caller.organisation} sees only the AuditEvents its own organisation took "
                "part in (all of them only under a data sharing agreement with AuditEvent access)",
            )
        if basis.res_type == "Subscription":  # its channel may carry the receiver's credentials
            if await owned_subscription(self.request, caller, basis.res_id):
                return Judgement(stored)
            return Judgement(
                None,
                refusal="refused: another organisation's Subscription",
                message=f"organisation {caller.organisation} sees only the Subscriptions its own clients made",
            )
        person = person_of(basis)
        if person is None and not listing:
            return Judgement(stored)
        shown = minimised(caller, basis)
        if shown is None:
            return Judgement(
                None,
                person,
                "refused: not in the sharing profile",
                f"a {caller.organisation_type} organisation does not receive {basis.res_type} resources",
            )
        glass = False
        if person is not None:
            decision = await self.decision(person)
            if not decision.allowed:
                return Judgement(
                    None,
                    person,
                    "refused: no legitimate relationship",
                    f"organisation {caller.organisation} has no legitimate relationship with the person this "
                    f"{basis.res_type} is about; a break-glass reason may be given where your role allows it",
                )
            glass = decision.reason == "break-glass"
            self.patients[person] = None
        return Judgement(shown if stored.content is not None else stored, person, break_glass=glass)

    async def _before_deletion(self, stored: StoredResource) -> StoredResource | None:
        if stored.version_id <= 1:
            return None
        try:
            return await self.repo.vread(stored.res_type, stored.res_id, stored.version_id - 1)
        except (NotFound, Gone):
            return None

    def refuse(self, interaction: str, stored: StoredResource, judgement: Judgement) -> Forbidden:
        """Audit a refusal (outcome 4, naming the person) and give the error to raise."""
        self.request.app.state.audit.interaction(
            self.caller,
            interaction,
            references=(stored.reference,),
            patients=(judgement.person,) if judgement.person else (),
            outcome="4",
            description=judgement.refusal,
        )
        return Forbidden(judgement.message or "not allowed")

    def flag_break_glass(self, interaction: str, persons: list[str], references: tuple[str, ...] = ()) -> None:
        """One AuditEvent, flagged BTG, naming the people only break-glass let the caller see."""
        if persons:
            self.request.app.state.audit.interaction(
                self.caller,
                interaction,
                references=references,
                patients=tuple(dict.fromkeys(persons)),
                description=f"break-glass: {self.caller.break_glass}",
                break_glass=True,
            )

    async def read(self, stored: StoredResource, interaction: str = "read") -> StoredResource:
        """The resource as the caller may read it; Forbidden (audited) otherwise."""
        judgement = await self.judge(stored, listing=False)
        if judgement.shown is None:
            raise self.refuse(interaction, stored, judgement)
        if judgement.break_glass and judgement.person is not None:
            self.flag_break_glass(interaction, [judgement.person], (stored.reference,))
        return judgement.shown

    async def listed(self, items: list[StoredResource], interaction: str) -> list[StoredResource]:
        """The items the caller may see, each reduced to its profile; break-glass flagged once for them all."""
        kept: list[StoredResource] = []
        glass: list[str] = []
        for item in items:
            judgement = await self.judge(item, listing=True)
            if judgement.shown is None:
                continue
            kept.append(judgement.shown)
            if judgement.break_glass and judgement.person is not None:
                glass.append(judgement.person)
        self.flag_break_glass(interaction, glass)
        return kept

    async def history(self, entries: list[StoredResource], interaction: str, *, instance: bool) -> list[StoredResource]:
        """A history page as the caller may see it. A resource's own history (``instance``) is refused (403,
        audited) when any of its versions would be, as reading it would be; a type or system history leaves out
        what the caller may not see."""
        if not instance:
            return await self.listed(entries, interaction)
        kept: list[StoredResource] = []
        glass: list[str] = []
        for entry in entries:
            judgement = await self.judge(entry, listing=False)
            if judgement.shown is None:
                raise self.refuse(interaction, entry, judgement)
            kept.append(judgement.shown)
            if judgement.break_glass and judgement.person is not None:
                glass.append(judgement.person)
        self.flag_break_glass(interaction, glass, tuple(dict.fromkeys(e.reference for e in entries)))
        return kept

    async def search(self, result: SearchResult, interaction: str = "search-type") -> SearchResult:
        """The search result without what the caller may not see (``total`` dropped when anything was left out)."""
        if self.caller.development:
            return result
        matches = await self.listed(result.matches, interaction)
        includes = await self.listed(result.includes, interaction)
        if len(matches) == len(result.matches) and len(includes) == len(result.includes):
            return replace(result, matches=matches, includes=includes)
        return replace(result, matches=matches, includes=includes, total=None)

    async def allowed_people(self, people: list[str], interaction: str) -> set[str]:
        """Which of these people the caller may see (a list leaves the others out); break-glass flagged once."""
        allowed: set[str] = set()
        glass: list[str] = []
        for person in dict.fromkeys(people):
            decision = await self.decision(person)
            if decision.allowed:
                allowed.add(person)
                self.patients[person] = None
                if decision.reason == "break-glass":
                    glass.append(person)
        self.flag_break_glass(interaction, glass)
        return allowed

    async def person(self, person_id: str, interaction: str = "read") -> Decision:
        """Refuse (403, audited) access to a person's records without a legitimate relationship; flag break-glass."""
        decision = await self.decision(person_id)
        if not decision.allowed:
            self.request.app.state.audit.interaction(
                self.caller,
                interaction,
                patients=(person_id,),
                outcome="4",
                description="refused: no legitimate relationship",
            )
            raise Forbidden(f"organisation {self.caller.organisation} has no legitimate relationship with this person")
        if decision.reason == "break-glass":
            self.flag_break_glass(interaction, [person_id])
        self.patients[person_id] = None
        return decision


async def check_read(
    request: Request, caller: Caller, repo: FhirRepository, stored: StoredResource, interaction: str = "read"
) -> StoredResource:
    """Refuse (403, audited) a read of a person's data without a legitimate relationship, of a resource the
    caller's sharing profile does not include, or of another organisation's AuditEvent; flag break-glass. Returns
    the resource reduced to that profile."""
    if caller.development:
        return stored
    return await Screen(request, caller, repo).read(stored, interaction)


async def visible(
    request: Request, caller: Caller, repo: FhirRepository, result: SearchResult, interaction: str = "search-type"
) -> SearchResult:
    """The search result without the resources the caller may not see, the rest reduced to its sharing profile."""
    if caller.development:
        return result
    return await Screen(request, caller, repo).search(result, interaction)


async def check_person(
    request: Request, caller: Caller, repo: FhirRepository, person_id: str, interaction: str = "read"
) -> None:
    """Refuse (403, audited) access to a person's records without a legitimate relationship (the domain API,
    $everything, $summary); an access that only break-glass allows is audited and flagged (BTG)."""
    if caller.development:
        return
    await Screen(request, caller, repo).person(person_id, interaction)
