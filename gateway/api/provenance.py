"""Provenance for writes by authenticated clients: who wrote it (the client, for its organisation), when, and why
(purpose of use), in the same transaction as the write. The development caller's writes carry none."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.audit.events import CLIENT_SYSTEM, PURPOSE_SYSTEM, PURPOSES
from gateway.auth import Caller
from gateway.store.records import WriteResult
from gateway.store.repository import FhirRepository
from gateway.store.timeutil import to_instant
from mappings.identifiers import ODS_ORGANISATION_SYSTEM


def provenance(caller: Caller, target: str, recorded: str) -> dict[str, Any]:
    code, display = PURPOSES.get(caller.purpose.upper(), ("TREAT", "treatment"))
    return {
        "resourceType": "Provenance",
        "target": [{"reference": target}],
        "recorded": recorded,
        "reason": [{"coding": [{"system": PURPOSE_SYSTEM, "code": code, "display": display}]}],
        "agent": [
            {
                "who": {"identifier": {"system": CLIENT_SYSTEM, "value": caller.client_id}},
                "onBehalfOf": {"identifier": {"system": ODS_ORGANISATION_SYSTEM, "value": caller.organisation}},
            }
        ],
    }


async def write_with_provenance(
    repo: FhirRepository, caller: Caller, write: Callable[[FhirRepository], Awaitable[WriteResult]]
) -> WriteResult:
    """Run ``write``; for a real client, add its Provenance in the same transaction."""
    if caller.development:
        return await write(repo)
    async with repo.transaction() as tx:
        result = await write(tx)
        stored = result.resource
        if stored is not None:
            target = f"{stored.reference}/_history/{stored.version_id}"
            await tx.create(provenance(caller, target, to_instant(stored.last_updated)), assigned_id=str(uuid.uuid4()))
    return result
