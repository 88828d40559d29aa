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

from gateway.auth import Caller
from gateway.origins import client_origin
from gateway.store.records import Outcome, WriteResult
from gateway.store.repository import FhirRepository
from gateway.store.timeutil import to_instant
from mappings.provenance import Activity, Origin
from mappings.provenance import provenance as build

#: What a write did → its v3 DataOperation; outcomes not listed wrote nothing.
ACTIVITIES: dict[Outcome, Activity] = {
    Outcome.CREATED: Activity.CREATE,
    Outcome.UPDATED: Activity.UPDATE,
    Outcome.DELETED: Activity.DELETE,
}


def provenance(origin: Origin, target: str, recorded: str, activity: Activity, provenance_id: str) -> dict[str, Any]:
    """The Provenance of one client write (the same builder as the domain API's and the connectors')."""
    return build(provenance_id=provenance_id, targets=[target], recorded=recorded, activity=activity, origin=origin)


def provenances(caller: Caller, results: Sequence[WriteResult]) -> list[tuple[dict[str, Any], str]]:
    """A Provenance (with a fresh id) for each result that wrote a version; none for the development caller."""
    origin = client_origin(caller)
    if origin is None:
        return []
    made = []
    for result in results:
        stored = result.resource
        if stored is None or result.outcome not in ACTIVITIES:
            continue
        target = f"{stored.reference}/_history/{stored.version_id}"
        pid = str(uuid.uuid4())
        made.append((provenance(origin, target, to_instant(stored.last_updated), ACTIVITIES[result.outcome], pid), pid))
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
