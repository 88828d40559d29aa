"""Is this message about someone the gateway knows? Decided from PID-3 alone, before anything is kept.

A trust's feed carries everyone; the gateway may keep data only about its cohort (young people on the register,
people with a keyworking case). :class:`FhirCohortLookup` answers from the FHIR store's identifier index
(``sp_token`` rows of parameter ``identifier`` on Patient) with a small time-limited cache, so the hot path costs a
dictionary look-up for most messages.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.models import sp_token
from mappings.hl7v2.tokenizer import Envelope
from mappings.identifiers import NHS_NUMBER_SYSTEM


class CohortLookup(Protocol):
    async def contains(self, envelope: Envelope) -> bool:
        """True when the message's patient (NHS number or a local identifier in PID-3) is in the cohort."""
        ...


class EveryoneInCohort:
    """Keeps every message (a feed that only carries the cohort, tests, benchmarks)."""

    async def contains(self, envelope: Envelope) -> bool:
        return True


class FhirCohortLookup:
    """Looks PID-3 identifiers up among stored Patients' identifiers.

    The NHS number must match with the NHS number system; a local identifier (MRN) matches on its value, because
    trusts name their MRN systems differently. A false positive only means a message is kept and the mapping
    step finds no one; a false negative would drop an admission, so the filter errs on keeping.
    """

    def __init__(self, engine: AsyncEngine, *, ttl_seconds: float = 30.0, max_entries: int = 100_000) -> None:
        self.engine = engine
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._cache: OrderedDict[tuple[str, ...], tuple[bool, float]] = OrderedDict()

    def forget(self) -> None:
        """Drop the cache (e.g. after someone joined the register)."""
        self._cache.clear()

    async def contains(self, envelope: Envelope) -> bool:
        nhs = envelope.nhs_number
        local = tuple(sorted(i.value for i in envelope.identifiers if i.value != nhs))
        if nhs is None and not local:
            return False
        key = (nhs or "", *local)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[1] > now:
            self._cache.move_to_end(key)
            return hit[0]
        found = await self._lookup(nhs, local)
        self._cache[key] = (found, now + self.ttl_seconds)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return found

    async def _lookup(self, nhs: str | None, local: tuple[str, ...]) -> bool:
        conditions = []
        if nhs:
            conditions.append(and_(sp_token.c.system == NHS_NUMBER_SYSTEM, sp_token.c.code == nhs))
        if local:
            conditions.append(sp_token.c.code.in_(local))
        stmt = (
            select(sp_token.c.res_pk)
            .where(sp_token.c.res_type == "Patient", sp_token.c.param == "identifier", or_(*conditions))
            .limit(1)
        )
        async with self.engine.connect() as conn:
            return (await conn.execute(stmt)).first() is not None
