"""The access rules of a read, applied to each exported resource for a non-development caller.

A resource about a person the caller's organisation has no legitimate relationship with is left out
(:meth:`AccessPolicy.decide`, decided once per person per export); what remains is reduced to the organisation's
sharing profile (:func:`gateway.api.access.minimised`). The development caller gets no shaper: the stored bytes go
out as they are.
"""

from __future__ import annotations

from gateway.access.policy import AccessPolicy
from gateway.api.access import minimised, person_of
from gateway.auth import Caller
from gateway.export.reader import Row
from gateway.export.writer import Shaper
from gateway.settings import Settings
from gateway.store.records import StoredResource
from gateway.store.repository import FhirRepository


def policy_for(settings: Settings) -> AccessPolicy:
    def types(text: str) -> frozenset[str]:
        return frozenset(t.strip().lower() for t in text.split(",") if t.strip())

    return AccessPolicy(
        agreements=types(settings.sharing_agreements), break_glass_types=types(settings.break_glass_types)
    )


def shaper_for(caller: Caller, policy: AccessPolicy, repo: FhirRepository) -> Shaper | None:
    if caller.development:
        return None
    allowed: dict[str, bool] = {}

    async def shape(res_type: str, row: Row) -> bytes | None:
        res_id, content = row
        stored = StoredResource(res_type, res_id, 0, 0, content)
        person = person_of(stored)
        if person is not None:
            if person not in allowed:
                allowed[person] = (await policy.decide(repo, caller, person)).allowed
            if not allowed[person]:
                return None
        shown = minimised(caller, stored)
        return None if shown is None else shown.content

    return shape
