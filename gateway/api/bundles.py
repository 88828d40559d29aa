"""``POST /fhir``: a ``batch`` or ``transaction`` Bundle in, its response Bundle out (http.html#transaction).

The work lives in :mod:`gateway.bundles`; this module joins its steps: check the Bundle, run it as the caller may
(:class:`CallerGuard`), write the answer. Each entry meets the rules its REST interaction meets: a GET is a read
(403 when refused: the entry's response in a batch, the whole answer in a transaction) or a search (what the
caller may not see left out), reduced to the caller's sharing profile and audited like one; a write needs the
legitimate relationship a read needs and gets its Provenance in the same transaction scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from gateway.api.access import Screen
from gateway.api.provenance import ACTIVITIES, add_provenance
from gateway.api.write_access import RELATIONSHIP_TYPES, WriteScreen
from gateway.auth import Caller
from gateway.bundles.entries import EntryRequest, Interaction, parse_bundle
from gateway.bundles.guard import OPEN
from gateway.bundles.processor import run_batch, run_transaction
from gateway.bundles.response import render_response, return_preference
from gateway.store.records import StoredResource, WriteResult
from gateway.store.repository import FhirRepository
from gateway.store.search import SearchResult

#: Entry interactions → the restful-interaction code their AuditEvents carry.
AUDITED_AS = {
    Interaction.READ: "read",
    Interaction.VREAD: "vread",
    Interaction.SEARCH: "search-type",
    Interaction.CREATE: "create",
    Interaction.UPDATE: "update",
    Interaction.CONDITIONAL_UPDATE: "update",
    Interaction.DELETE: "delete",
    Interaction.CONDITIONAL_DELETE: "delete",
}


class CallerGuard:
    """The request's caller's rules for each entry (a :class:`gateway.bundles.guard.EntryGuard`); it remembers
    what was written and whom it concerned, for the Bundle's AuditEvent."""

    def __init__(self, request: Request, caller: Caller, repo: FhirRepository) -> None:
        self.request = request
        self.caller = caller
        self.writes = WriteScreen(request, caller, repo)
        self.checks_writes = not caller.development
        self.written_versions: list[StoredResource] = []
        self._relationships: dict[str, None] = {}

    @property
    def patients(self) -> tuple[str, ...]:
        """The people the Bundle's writes concern (those of the versions replaced or deleted too)."""
        return tuple(self.writes.patients)

    async def read(self, repo: FhirRepository, entry: EntryRequest, stored: StoredResource) -> StoredResource:
        # A vread, a read, or a conditional create's match (answered with the match: a read of it).
        interaction = "vread" if entry.interaction is Interaction.VREAD else "read"
        shown = await Screen(self.request, self.caller, repo).read(stored, interaction)
        self.request.app.state.audit.interaction(self.caller, interaction, (shown,))
        return shown

    async def search(self, repo: FhirRepository, entry: EntryRequest, result: SearchResult) -> SearchResult:
        screened = await Screen(self.request, self.caller, repo).search(result)
        query = f"{entry.res_type}?{urlencode(entry.params)}"
        self.request.app.state.audit.interaction(self.caller, "search-type", tuple(screened.matches), query=query)
        return screened

    async def write(self, repo: FhirRepository, entry: EntryRequest, changed: Sequence[StoredResource]) -> None:
        reference = f"{entry.res_type}/{entry.res_id}" if entry.res_id else entry.res_type
        people = await self.writes.authorise(
            AUDITED_AS.get(entry.interaction, "update"),
            (reference,),
            changed=changed,
            new=[entry.resource] if entry.resource is not None else [],
            repo=repo,
        )
        if entry.res_type in RELATIONSHIP_TYPES:
            self._relationships.update(dict.fromkeys(people))

    async def written(self, repo: FhirRepository, results: Sequence[WriteResult]) -> None:
        await add_provenance(repo, self.caller, results)
        self.written_versions += [r.resource for r in results if r.resource is not None and r.outcome in ACTIVITIES]

    def settle(self) -> None:
        """After the Bundle (committed or not): forget cached relationships its writes may have changed."""
        self.writes.relationships_changed("CareTeam", self._relationships)


@dataclass(frozen=True, slots=True)
class BundleAnswer:
    body: bytes
    written: tuple[StoredResource, ...]  # the versions the Bundle wrote (deletions too)
    patients: tuple[str, ...]  # the people its writes concern


async def process_bundle(
    repo: FhirRepository, body: Any, base: str, *, prefer: str = "", guard: CallerGuard | None = None
) -> BundleAnswer:
    """The response Bundle. A transaction that fails raises the failing entry's error (nothing is kept).
    Without a guard nothing is checked (callers that have checked elsewhere)."""
    parsed = parse_bundle(body, base)
    strict = "handling=lenient" not in prefer
    run = run_transaction if parsed.kind == "transaction" else run_batch
    try:
        results = await run(repo, parsed.entries, base, strict=strict, guard=guard if guard is not None else OPEN)
    finally:
        if guard is not None:
            guard.settle()
    answer = render_response(parsed.kind, results, base, return_preference(prefer))
    if guard is None:
        return BundleAnswer(answer, (), ())
    return BundleAnswer(answer, tuple(guard.written_versions), guard.patients)
