"""Legitimate-relationship access: an organisation sees a young person's data only when it has a reason the
gateway can check.

A caller's organisation may read a person's data when (checked in this order):

1. it is on the person's care team now: a CareTeam about the person has a participant acting for it
   (``onBehalfOf`` by ODS code, LA code or school URN) whose period has not ended;
2. it manages the person's register entry or keyworking case (``EpisodeOfCare.managingOrganization``);
3. a data sharing agreement covers its organisation type (``KWG_SHARING_AGREEMENTS``, e.g. ``icb``);
4. it states a break-glass reason (``X-Break-Glass``) and its organisation type may break glass
   (``KWG_BREAK_GLASS_TYPES``): allowed, audited and flagged.

Otherwise: a read answers 403 (and an AuditEvent records the refusal), and a search leaves the person out of its
results. The development caller (authentication off, development only) sees everything. Answers are cached per
(organisation, person) for ``ttl`` seconds, so a busy client does not pay two searches per read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.auth import Caller
from gateway.domain.gather import search
from gateway.errors import Forbidden
from gateway.store.repository import FhirRepository

Resource = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str  # care-team, manages, agreement, break-glass, development, none


def _identifiers(value: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(value, dict):
        identifier = value.get("identifier")
        if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
            out.add(identifier["value"].upper())
    return out


def _current(period: Any, today: str) -> bool:
    end = period.get("end") if isinstance(period, dict) else None
    return not isinstance(end, str) or end[:10] >= today


class AccessPolicy:
    def __init__(
        self,
        *,
        agreements: frozenset[str] = frozenset(),
        break_glass_types: frozenset[str] = frozenset(),
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.agreements = agreements
        self.break_glass_types = break_glass_types
        self.ttl = ttl
        self.clock = clock
        #: person → organisation → (when, the relationship found or None); by person, so a write about one
        #: person's care team drops that person's answers at once.
        self._cache: dict[str, dict[str, tuple[float, str | None]]] = {}

    async def decide(self, repo: FhirRepository, caller: Caller, person_id: str) -> Decision:
        if caller.development:
            return Decision(True, "development")
        if caller.organisation_type in self.agreements:
            return Decision(True, "agreement")
        relationship = await self._relationship(repo, caller.organisation.upper(), person_id)
        if relationship is not None:
            return Decision(True, relationship)
        if caller.break_glass and caller.organisation_type in self.break_glass_types:
            return Decision(True, "break-glass")
        return Decision(False, "none")

    async def check(self, repo: FhirRepository, caller: Caller, person_id: str) -> Decision:
        decision = await self.decide(repo, caller, person_id)
        if not decision.allowed:
            raise Forbidden(
                f"organisation {caller.organisation} has no legitimate relationship with this person "
                "(not on their care team, not managing their register entry or case, no data sharing agreement)"
            )
        return decision

    async def _relationship(self, repo: FhirRepository, organisation: str, person_id: str) -> str | None:
        cached = self._cache.get(person_id, {}).get(organisation)
        now = self.clock()
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        found = await self._look_up(repo, organisation, person_id)
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache.setdefault(person_id, {})[organisation] = (now, found)
        return found

    async def _look_up(self, repo: FhirRepository, organisation: str, person_id: str) -> str | None:
        today = datetime.now(UTC).date().isoformat()
        for team in await search(repo, "CareTeam", [("subject", f"Patient/{person_id}")]):
            if team.get("status") in ("inactive", "entered-in-error"):
                continue
            for participant in team.get("participant", ()):
                if not isinstance(participant, dict) or not _current(participant.get("period"), today):
                    continue
                if organisation in _identifiers(participant.get("onBehalfOf")):
                    return "care-team"
        for episode in await search(repo, "EpisodeOfCare", [("patient", f"Patient/{person_id}")]):
            if episode.get("status") in ("finished", "cancelled", "entered-in-error"):
                continue
            if organisation in _identifiers(episode.get("managingOrganization")):
                return "manages"
        return None

    def forget(self, person_id: str | None = None) -> None:
        """Drop cached answers: about one person (after a write to their care team, register entry or case in
        this process), or all of them (tests)."""
        if person_id is None:
            self._cache.clear()
        else:
            self._cache.pop(person_id, None)
