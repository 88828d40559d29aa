"""Writes about a person need the legitimate relationship (or data sharing agreement) a read of their data needs.

A write concerns the people its resources are about: those of the versions it changes or deletes, and those its
new content is about. The caller's organisation must be allowed by :class:`~gateway.access.policy.AccessPolicy`
for each of them, except:

- a person the gateway does not hold (no current ``Patient/<id>``) named only by the new content: creating a new
  Patient, and data about a person created in the same transaction, needs no relationship (scopes still apply);
- a new register entry (an EpisodeOfCare of type DSR that does not exist yet: a referral to the Dynamic Support
  Register) may be made for any person: that is how an organisation comes to manage a person's entry.

Break-glass does not open writes: it is for reading in an emergency. A refused write is 403 with an AuditEvent
(outcome 4) naming the caller's organisation and the person; nothing is written. The development caller writes
freely. A write to a care team, register entry or case may change who has a relationship: this process's cached
answers for that person are dropped (:meth:`WriteScreen.relationships_changed`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from fastapi import Request

from gateway.api.access import owned_subscription, person_of, policy
from gateway.auth import Caller
from gateway.errors import Forbidden
from gateway.store.indexing import patient_id_of
from gateway.store.records import StoredResource
from gateway.store.repository import FhirRepository
from mappings.keyworking.elements import find_code
from mappings.keyworking.terminology import EpisodeType

Resource = dict[str, Any]

#: Resource types whose writes can change who has a legitimate relationship with a person.
RELATIONSHIP_TYPES = frozenset({"CareTeam", "EpisodeOfCare"})


def is_register_entry(resource: Resource) -> bool:
    """An EpisodeOfCare of type DSR: a Dynamic Support Register entry."""
    if resource.get("resourceType") != "EpisodeOfCare":
        return False
    types = resource.get("type")
    return isinstance(types, list) and any(find_code(t, EpisodeType) is EpisodeType.DSR for t in types)


def about(resources: Iterable[Resource]) -> list[str]:
    """The people the resources are about, in order, once each."""
    found = (patient_id_of(r) for r in resources)
    return list(dict.fromkeys(p for p in found if p is not None))


def changed_people(versions: Iterable[StoredResource]) -> list[str]:
    """The people the stored versions a write replaces or deletes are about."""
    found = (person_of(v) for v in versions)
    return list(dict.fromkeys(p for p in found if p is not None))


class WriteScreen:
    """The write rule for one request's caller (a route, or every entry of a Bundle)."""

    def __init__(self, request: Request, caller: Caller, repo: FhirRepository) -> None:
        self.request = request
        self.caller = caller
        self.repo = repo
        self._allowed: set[str] = set()
        self._held: dict[str, bool] = {}
        #: The people the writes checked so far concern (for the AuditEvent of the request).
        self.patients: dict[str, None] = {}

    async def authorise(
        self,
        interaction: str,
        references: tuple[str, ...],
        *,
        changed: Sequence[StoredResource] = (),
        new: Sequence[Resource] = (),
        repo: FhirRepository | None = None,
    ) -> list[str]:
        """Forbidden (audited) unless the caller may make this write; returns the people it concerns. ``repo``:
        where to look (a Bundle's transaction scope), by default the request's repository. Whom the store holds
        is remembered for the request, so a person created by the same Bundle stays a new person."""
        if not self.caller.development:
            self._refuse_trail_writes(interaction, references, changed, new)
            await self._refuse_others_subscriptions(interaction, references, changed)
        exempt = not changed and bool(new) and all(is_register_entry(r) for r in new)
        return await self.authorise_people(
            interaction,
            references,
            changed=changed_people(changed),
            named=about(new),
            new_register_entry=exempt,
            repo=repo,
        )

    async def authorise_people(
        self,
        interaction: str,
        references: tuple[str, ...],
        *,
        changed: Sequence[str] = (),
        named: Sequence[str] = (),
        new_register_entry: bool = False,
        repo: FhirRepository | None = None,
    ) -> list[str]:
        """The same rule in terms of people (the domain API's records): ``changed``, those the stored data being
        replaced is about (always checked); ``named``, those the new data is about (checked when held, unless the
        write creates a register entry). Returns the people the write concerns."""
        before = list(dict.fromkeys(changed))
        extra = [p for p in dict.fromkeys(named) if p not in before]
        people = [*before, *extra]
        self.patients.update(dict.fromkeys(people))
        if self.caller.development:
            return people
        where = repo or self.repo
        needed = list(before)
        if not new_register_entry:
            needed += [p for p in extra if await self._is_held(where, p)]
        for person in needed:
            await self._require(where, interaction, references, person)
        return people

    def _refuse_trail_writes(
        self,
        interaction: str,
        references: tuple[str, ...],
        changed: Sequence[StoredResource],
        new: Sequence[Resource],
    ) -> None:
        """The trail is the gateway's own: no client writes an AuditEvent, and none changes or deletes a
        Provenance (a client may add one about its own data)."""
        trail = {r.get("resourceType") for r in new} & {"AuditEvent"} | {
            v.res_type for v in changed if v.res_type in ("AuditEvent", "Provenance")
        }
        if trail:
            raise self._refused(
                interaction,
                references,
                "refused: a client write to the audit trail",
                f"{' and '.join(sorted(str(t) for t in trail))} resources are the gateway's audit trail: clients "
                "may read them (as their access allows) but not write, change or delete them",
            )

    async def _refuse_others_subscriptions(
        self, interaction: str, references: tuple[str, ...], changed: Sequence[StoredResource]
    ) -> None:
        """A Subscription is changed or deleted only by the organisation that made it."""
        for version in changed:
            if version.res_type == "Subscription" and not await owned_subscription(
                self.request, self.caller, version.res_id
            ):
                raise self._refused(
                    interaction,
                    references,
                    "refused: another organisation's Subscription",
                    f"organisation {self.caller.organisation} did not make {version.reference}",
                )

    def _refused(
        self,
        interaction: str,
        references: tuple[str, ...],
        description: str,
        message: str,
        *,
        patients: tuple[str, ...] = (),
    ) -> Forbidden:
        """Audit a refused write (outcome 4, naming the people it was about) and return the 403 to raise."""
        self.request.app.state.audit.interaction(
            self.caller, interaction, references=references, patients=patients, outcome="4", description=description
        )
        return Forbidden(message)

    async def _is_held(self, repo: FhirRepository, person: str) -> bool:
        held = self._held.get(person)
        if held is None:
            held = self._held[person] = (await repo.read_current([("Patient", person)]))[0] is not None
        return held

    async def _require(self, repo: FhirRepository, interaction: str, references: tuple[str, ...], person: str) -> None:
        if person in self._allowed:
            return
        # Break-glass is for reading in an emergency, never for writing.
        caller = replace(self.caller, break_glass=None)
        decision = await policy(self.request).decide(repo, caller, person)
        if not decision.allowed:
            raise self._refused(
                interaction,
                references,
                "refused: write without a legitimate relationship",
                f"organisation {self.caller.organisation} has no legitimate relationship with the person this "
                "write is about (not on their care team, not managing their register entry or case, no data "
                "sharing agreement); break-glass does not allow writes",
                patients=(person,),
            )
        self._allowed.add(person)

    def relationships_changed(self, res_type: str, people: Iterable[str]) -> None:
        """After a write to a care team, register entry or case: forget this process's cached relationship
        answers for the people it concerns (other processes' answers expire within the policy's ttl)."""
        if res_type in RELATIONSHIP_TYPES:
            access = policy(self.request)
            for person in people:
                access.forget(person)
