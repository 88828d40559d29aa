"""Provenance for writes by authenticated clients: who wrote it (the client, for its organisation), what it did
(v3 DataOperation: create, update, delete), when, and why (purpose of use), in the same transaction as the write.
The development caller's writes carry none, and neither does a write that changed nothing (a conditional create
that matched, a delete of what was not there).

Every FHIR write path uses these: create and update (:func:`write_with_provenance`), conditional update, delete,
conditional delete (:func:`writes_with_provenance`) and each write of a batch or transaction Bundle
(:func:`add_provenance`, inside the Bundle's transaction scope)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from gateway.audit.events import CLIENT_SYSTEM, PURPOSE_SYSTEM, PURPOSES
from gateway.auth import Caller
from gateway.store.records import Outcome, WriteResult
from gateway.store.repository import FhirRepository
from gateway.store.timeutil import to_instant
from mappings.identifiers import ODS_ORGANISATION_SYSTEM

DATA_OPERATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
#: What a write did → its v3 DataOperation (code, display); outcomes not listed wrote nothing.
ACTIVITIES: dict[Outcome, tuple[str, str]] = {
    Outcome.CREATED: ("CREATE", "create"),
    Outcome.UPDATED: ("UPDATE", "revise"),
    Outcome.DELETED: ("DELETE", "delete"),
}


def provenance(caller: Caller, target: str, recorded: str, activity: Outcome | None = None) -> dict[str, Any]:
    code, display = PURPOSES.get(caller.purpose.upper(), ("TREAT", "treatment"))
    resource: dict[str, Any] = {
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
    if activity in ACTIVITIES:
        op, op_display = ACTIVITIES[activity]
        resource["activity"] = {"coding": [{"system": DATA_OPERATION_SYSTEM, "code": op, "display": op_display}]}
    return resource


def provenances(caller: Caller, results: Sequence[WriteResult]) -> list[tuple[dict[str, Any], str]]:
    """A Provenance (with a fresh id) for each result that wrote a version; none for the development caller."""
    if caller.development:
        return []
    made = []
    for result in results:
        stored = result.resource
        if stored is None or result.outcome not in ACTIVITIES:
            continue
        target = f"{stored.reference}/_history/{stored.version_id}"
        resource = provenance(caller, target, to_instant(stored.last_updated), result.outcome)
        made.append((resource, str(uuid.uuid4())))
    return made


async def add_provenance(tx: FhirRepository, caller: Caller, results: Sequence[WriteResult]) -> None:
    """Store the Provenance of ``results`` through ``tx`` (call inside the writes' transaction scope)."""
    made = provenances(caller, results)
    if made:
        await tx.create_many(made)


async def write_with_provenance(
    repo: FhirRepository, caller: Caller, write: Callable[[FhirRepository], Awaitable[WriteResult]]
) -> WriteResult:
    """Run ``write``; for a real client, add its Provenance in the same transaction."""
    if caller.development:
        return await write(repo)
    async with repo.transaction() as tx:
        result = await write(tx)
        await add_provenance(tx, caller, [result])
    return result


async def writes_with_provenance(
    repo: FhirRepository, caller: Caller, write: Callable[[FhirRepository], Awaitable[list[WriteResult]]]
) -> list[WriteResult]:
    """Run ``write`` (several results: a conditional delete); for a real client, add each Provenance in the same
    transaction."""
    if caller.development:
        return await write(repo)
    async with repo.transaction() as tx:
        results = await write(tx)
        await add_provenance(tx, caller, results)
    return results
