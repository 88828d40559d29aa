"""Run one Bundle entry's request against a repository and say what happened, as the entry's response will.

The same code serves both Bundle types: a batch runs each entry in its own transaction scope, a transaction
runs them all in one. Conditional updates that a transaction resolved beforehand (see
:mod:`gateway.bundles.processor`) arrive with ``res_id`` filled in and are then plain updates; a batch leaves
conditional interactions to the repository. (A transaction writes its creates itself, in one batch.)

Each step asks the :class:`~gateway.bundles.guard.EntryGuard`: a read or search is screened for the caller, a
write is authorised before it is made (a conditional delete, whose matches are known only once deleted, after, in
the same scope, which then rolls back), and what was written is handed to the guard in the same scope (Provenance).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from gateway.api.render import render_search
from gateway.bundles.entries import EntryRequest, Interaction
from gateway.bundles.guard import OPEN, EntryGuard
from gateway.errors import GatewayError, Issue, PreconditionFailed
from gateway.store.records import Outcome, StoredResource, WriteResult
from gateway.store.repository import FhirRepository


@dataclass(slots=True)
class EntryResult:
    """What one entry's response says: an HTTP status, the resource concerned, or the error."""

    status: int
    stored: StoredResource | None = None  # the version written or read (None for a search or a failure)
    body: bytes | None = None  # the response resource when it is not ``stored`` (a searchset Bundle)
    outcome: Outcome | None = None  # for writes: what the write did
    error: GatewayError | None = None
    written: bool = False  # a create/update: Prefer decides whether the resource is returned


async def perform(
    repo: FhirRepository, entry: EntryRequest, base: str, *, strict: bool, guard: EntryGuard = OPEN
) -> EntryResult:
    """Run ``entry`` as ``guard`` allows. Errors are raised with issue expressions relative to the entry (see
    :func:`in_entry`)."""
    try:
        return await _perform(repo, entry, base, strict, guard)
    except GatewayError as exc:
        raise in_entry(exc, entry) from exc


async def _perform(
    repo: FhirRepository, entry: EntryRequest, base: str, strict: bool, guard: EntryGuard
) -> EntryResult:
    kind = entry.interaction
    if kind is Interaction.READ:
        assert entry.res_id is not None
        return EntryResult(200, await guard.read(repo, entry, await repo.read(entry.res_type, entry.res_id)))
    if kind is Interaction.VREAD:
        assert entry.res_id is not None and entry.version_id is not None
        stored = await repo.vread(entry.res_type, entry.res_id, entry.version_id)
        return EntryResult(200, await guard.read(repo, entry, stored))
    if kind is Interaction.SEARCH:
        found = await guard.search(repo, entry, await repo.search(entry.res_type, entry.params, strict=strict))
        return EntryResult(200, body=bytes(render_search(found, entry.res_type, base).body))
    if kind is Interaction.CREATE:
        assert entry.resource is not None
        await _authorise(repo, entry, guard, _nothing)
        result = await repo.create(entry.resource, if_none_exist=entry.if_none_exist, assigned_id=entry.assigned_id)
        if result.outcome is Outcome.UNCHANGED and result.resource is not None:
            # A conditional create that matched answers with the match: a read of it.
            shown = await guard.read(repo, entry, result.resource)
            return EntryResult(200, shown, outcome=result.outcome, written=True)
        await guard.written(repo, [result])
        return _written(result)
    if kind is Interaction.UPDATE or (kind is Interaction.CONDITIONAL_UPDATE and entry.res_id is not None):
        assert entry.resource is not None and entry.res_id is not None
        await _authorise(repo, entry, guard, lambda: _current(repo, entry.res_type, entry.res_id))
        result = await repo.update(entry.res_type, entry.res_id, entry.resource, if_match=entry.if_match)
        await guard.written(repo, [result])
        return _written(result)
    if kind is Interaction.CONDITIONAL_UPDATE:
        assert entry.resource is not None
        await _authorise(repo, entry, guard, lambda: _matches(repo, entry))
        result = await repo.conditional_update(entry.res_type, entry.params, entry.resource, if_match=entry.if_match)
        await guard.written(repo, [result])
        return _written(result)
    if kind is Interaction.DELETE:
        assert entry.res_id is not None
        if entry.if_match is not None:
            await _check_version(repo, entry)
        await _authorise(repo, entry, guard, lambda: _current(repo, entry.res_type, entry.res_id))
        deleted = await repo.delete(entry.res_type, entry.res_id)
        await guard.written(repo, [deleted])
        return EntryResult(204, deleted.resource, outcome=deleted.outcome)
    assert kind is Interaction.CONDITIONAL_DELETE
    results = await repo.conditional_delete(entry.res_type, entry.params)
    # The matches are known once deleted: judged by the versions the deletions removed (the scope rolls back
    # when the guard refuses).
    await _authorise(repo, entry, guard, lambda: _before_deletions(repo, results))
    await guard.written(repo, results)
    return EntryResult(204, outcome=Outcome.DELETED if results else Outcome.NOTHING)


async def _authorise(
    repo: FhirRepository,
    entry: EntryRequest,
    guard: EntryGuard,
    changed: Callable[[], Awaitable[list[StoredResource]]],
) -> None:
    """The guard's write check, given the versions the entry replaces or deletes (read only for a guard that
    checks writes), unless a transaction made it for this entry before writing anything."""
    if entry.authorised or not guard.checks_writes:
        return
    await guard.write(repo, entry, await changed())
    entry.authorised = True


async def _nothing() -> list[StoredResource]:
    return []


async def _current(repo: FhirRepository, res_type: str, res_id: str | None) -> list[StoredResource]:
    """The current version of the resource, if it exists (not deleted)."""
    assert res_id is not None
    return [s for s in await repo.read_current([(res_type, res_id)]) if s is not None]


async def _matches(repo: FhirRepository, entry: EntryRequest) -> list[StoredResource]:
    """What a conditional update's criteria match now (more than one: the update itself answers 412)."""
    criteria = [*entry.params, ("_count", "2"), ("_total", "none")]
    return (await repo.search(entry.res_type, criteria, strict=True)).matches


async def _before_deletions(repo: FhirRepository, results: Sequence[WriteResult]) -> list[StoredResource]:
    """The versions the deletions in ``results`` removed."""
    before = []
    for result in results:
        gone = result.resource
        if result.outcome is Outcome.DELETED and gone is not None and gone.version_id > 1:
            before.append(await repo.vread(gone.res_type, gone.res_id, gone.version_id - 1))
    return before


def _written(result: WriteResult) -> EntryResult:
    status = 201 if result.outcome is Outcome.CREATED else 200
    return EntryResult(status, result.resource, outcome=result.outcome, written=True)


async def _check_version(repo: FhirRepository, entry: EntryRequest) -> None:
    """``ifMatch`` on a DELETE entry: the current version must be the one named."""
    assert entry.res_id is not None
    current = await repo.read(entry.res_type, entry.res_id)
    if current.version_id != entry.if_match:
        raise PreconditionFailed(
            f"ifMatch version {entry.if_match} is stale: {current.reference} is at version {current.version_id}"
        )


def in_entry(exc: GatewayError, entry: EntryRequest) -> GatewayError:
    """The same error, its issue expressions placed inside the entry.

    ``Patient.name[0].given`` from the validator becomes ``Bundle.entry[3].resource.name[0].given``; an issue
    without an expression names the entry.
    """
    issues = [_relocate(issue, entry) for issue in exc.issues]
    relocated = type(exc)(f"{entry.path}: {exc.message}", issues=issues, headers=exc.headers)
    return relocated


def _relocate(issue: Issue, entry: EntryRequest) -> Issue:
    if not issue.expression:
        return Issue(issue.code, issue.diagnostics, (entry.path,), issue.severity)
    moved = []
    for expr in issue.expression:
        if expr.startswith("Bundle."):
            moved.append(expr)
        elif expr == entry.res_type or expr.startswith((entry.res_type + ".", entry.res_type + "[")):
            moved.append(f"{entry.path}.resource{expr[len(entry.res_type) :]}")
        elif entry.resource is not None and expr.split(".", 1)[0].split("[", 1)[0] in entry.resource:
            moved.append(f"{entry.path}.resource.{expr}")
        else:  # about the request (a search parameter, say): name the entry, keep what the store said
            moved += [entry.path, expr]
    return Issue(issue.code, issue.diagnostics, tuple(moved), issue.severity)
