"""What a Bundle's caller may do, asked entry by entry: the same rules as the REST interactions.

The processor knows entries, not callers: it asks an :class:`EntryGuard` before and after each step. The API
gives one for the request's caller (:mod:`gateway.api.bundles`): GET entries are screened as reads and searches
(403 for a refused read; a search leaves out what the caller may not see; resources reduced to the caller's sharing
profile; each audited), writes need the relationship a read needs, and each write gets its Provenance in the same
transaction scope. :data:`OPEN` asks nothing (code that has checked elsewhere, and tests of the processor alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.bundles.entries import EntryRequest
from gateway.store.records import StoredResource, WriteResult
from gateway.store.repository import FhirRepository
from gateway.store.search import SearchResult


class EntryGuard(Protocol):
    #: Whether :meth:`write` checks anything (when not, the versions it would be given are not read).
    checks_writes: bool

    async def read(self, repo: FhirRepository, entry: EntryRequest, stored: StoredResource) -> StoredResource:
        """The resource as the caller may see it; raises Forbidden when it may not."""
        ...

    async def search(self, repo: FhirRepository, entry: EntryRequest, result: SearchResult) -> SearchResult:
        """The search result without what the caller may not see."""
        ...

    async def write(self, repo: FhirRepository, entry: EntryRequest, changed: Sequence[StoredResource]) -> None:
        """Raises Forbidden unless the caller may replace or delete ``changed`` (the stored versions the entry
        changes; none for a create) with the entry's resource (if any)."""
        ...

    async def written(self, repo: FhirRepository, results: Sequence[WriteResult]) -> None:
        """After writes, inside their transaction scope (their Provenance goes in with them)."""
        ...


class OpenGuard:
    """Asks nothing: everything is allowed, nothing is added."""

    checks_writes = False

    async def read(self, repo: FhirRepository, entry: EntryRequest, stored: StoredResource) -> StoredResource:
        return stored

    async def search(self, repo: FhirRepository, entry: EntryRequest, result: SearchResult) -> SearchResult:
        return result

    async def write(self, repo: FhirRepository, entry: EntryRequest, changed: Sequence[StoredResource]) -> None:
        return None

    async def written(self, repo: FhirRepository, results: Sequence[WriteResult]) -> None:
        return None


OPEN: EntryGuard = OpenGuard()
