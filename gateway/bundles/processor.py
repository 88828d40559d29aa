"""Run a checked Bundle: a transaction all or nothing, a batch entry by entry.

Transaction (FHIR R4 http.html#trules), inside one :meth:`FhirRepository.transaction` scope:

1. Any entry that failed its checks refuses the whole Bundle before the store is touched.
2. Ids are chosen for plain creates, so every ``fullUrl`` of a POST (``urn:uuid:...``) and of a PUT maps to
   ``Type/id``; two entries claiming the same fullUrl are refused.
3. DELETEs run.
4. Conditional creates and updates are resolved against the store as the DELETEs left it: a create whose
   ``ifNoneExist`` matches takes the existing id (and writes nothing), one that does not gets a fresh id; a
   conditional update takes the matched id, the body's id, or a fresh one. Criteria may name other entries'
   fullUrls, so they are resolved in rounds (an entry waits for the entries it names); a cycle is refused.
5. Two entries changing the same resource are refused.
6. Every reference in every resource, and every search value in a request URL, that equals a known fullUrl is
   rewritten to ``Type/id`` (one pass over each resource); a placeholder naming no entry is refused.
7. The guard (:mod:`gateway.bundles.guard`) authorises every POST and PUT before any is written (DELETEs are
   authorised as they run), so whom the store holds is judged as before the transaction.
8. POSTs (all checked first, then written together with one multi-row statement per table, see
   :mod:`gateway.store.bulk`), then PUTs (batched the same way unless they carry ifMatch), then GETs. What is
   written is handed to the guard in the same scope (its Provenance); GETs are screened for the caller.
   Any error (a refused entry too) rolls back everything and is the answer, its issues naming the entry
   (``Bundle.entry[3].resource.name[0].given``).

Batch (http.html#brules): every entry in its own transaction scope, in request order; a failure (a refused
entry: 403) is that entry's response and the others still commit. Entries must not refer to each other's fullUrls.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from gateway.bundles.entries import PROCESSING_ORDER, EntryRequest, Interaction
from gateway.bundles.guard import OPEN, EntryGuard
from gateway.bundles.interactions import EntryResult, in_entry, perform
from gateway.bundles.references import dangling_references, rewrite_criteria, rewrite_references
from gateway.errors import GatewayError, InvalidBundle, InvalidResource, Issue, PreconditionFailed
from gateway.store.records import Outcome
from gateway.store.repository import FhirRepository

#: Search controls that make no sense in conditional criteria; the resolver sets its own.
_NOT_CRITERIA = frozenset({"_count", "_offset", "_sort", "_total", "_summary", "_elements"})


# -- transaction ------------------------------------------------------------------------------------------------


async def run_transaction(
    repo: FhirRepository,
    parsed: Sequence[EntryRequest | GatewayError],
    base: str,
    *,
    strict: bool,
    guard: EntryGuard = OPEN,
) -> list[EntryResult]:
    entries = _all_valid(parsed)
    targets = _claim_full_urls(entries)
    ordered = sorted(entries, key=lambda e: PROCESSING_ORDER[e.method])
    results: dict[int, EntryResult] = {}
    async with repo.transaction() as tx:
        for entry in ordered:
            if entry.method != "DELETE":
                break
            _rewrite_request(entry, targets)
            results[entry.index] = await perform(tx, entry, base, strict=strict, guard=guard)
        await _resolve_conditionals(tx, entries, targets)
        _refuse_shared_targets(entries)
        for entry in entries:
            if entry.resource is not None and rewrite_references(entry.resource, targets):
                raise _dangling(entry, "resolve to no entry of this transaction")
        await _authorise_all(tx, entries, guard)
        results.update(await _create_all(tx, [e for e in entries if e.method == "POST"], guard))
        results.update(await _update_all(tx, [e for e in entries if _batchable_update(e)], guard))
        for entry in ordered:
            if entry.index in results:
                continue
            _rewrite_request(entry, targets)
            results[entry.index] = await perform(tx, entry, base, strict=strict, guard=guard)
    return [results[e.index] for e in entries]


async def _authorise_all(tx: FhirRepository, entries: list[EntryRequest], guard: EntryGuard) -> None:
    """Every create and update checked by the guard before any of them is written, so whom the store holds is
    judged as it was before the transaction (a person created by this transaction is a new person). The
    versions the updates replace are read in one statement."""
    if not guard.checks_writes:
        return
    writes = [e for e in entries if e.method in ("POST", "PUT") and e.existing is None and not e.authorised]
    keys = [(e.res_type, e.res_id) for e in writes if e.method == "PUT" and e.res_id is not None]
    current = {(s.res_type, s.res_id): s for s in await tx.read_current(keys) if s is not None} if keys else {}
    for entry in writes:
        before = current.get((entry.res_type, entry.res_id or ""))
        try:
            await guard.write(tx, entry, [before] if before is not None else [])
        except GatewayError as exc:
            raise in_entry(exc, entry) from exc
        entry.authorised = True


async def _create_all(tx: FhirRepository, creates: list[EntryRequest], guard: EntryGuard) -> dict[int, EntryResult]:
    """The POSTs: new resources checked, then written in one batch; matched conditional creates write nothing
    (and answer with the match, which the caller must be allowed to read)."""
    results: dict[int, EntryResult] = {}
    fresh: list[EntryRequest] = []
    items: list[tuple[dict[str, Any], str]] = []
    for entry in creates:
        if entry.existing is not None:  # a conditional create that matched: nothing to write
            try:
                shown = await guard.read(tx, entry, entry.existing)
            except GatewayError as exc:
                raise in_entry(exc, entry) from exc
            results[entry.index] = EntryResult(200, shown, outcome=Outcome.UNCHANGED, written=True)
            continue
        assert entry.resource is not None and entry.assigned_id is not None
        try:
            tx.check(entry.resource, entry.res_type)
        except GatewayError as exc:
            raise in_entry(exc, entry) from exc
        fresh.append(entry)
        items.append((entry.resource, entry.assigned_id))
    written = await tx.create_many(items) if items else []
    await guard.written(tx, written)
    for entry, result in zip(fresh, written, strict=True):
        results[entry.index] = EntryResult(201, result.resource, outcome=result.outcome, written=True)
    return results


def _batchable_update(entry: EntryRequest) -> bool:
    """A PUT with its target known and no version precondition (those go one by one, to answer 412 exactly)."""
    return (
        entry.method == "PUT"
        and entry.if_match is None
        and entry.res_id is not None
        and entry.resource is not None
        and entry.resource.get("id") == entry.res_id
    )


async def _update_all(tx: FhirRepository, updates: list[EntryRequest], guard: EntryGuard) -> dict[int, EntryResult]:
    """PUTs without a precondition: checked, then written in one batch (new ids are created)."""
    items: list[tuple[dict[str, Any], str]] = []
    for entry in updates:
        assert entry.resource is not None and entry.res_id is not None
        try:
            tx.check(entry.resource, entry.res_type)
        except GatewayError as exc:
            raise in_entry(exc, entry) from exc
        items.append((entry.resource, entry.res_id))
    written = await tx.update_many(items) if items else []
    await guard.written(tx, written)
    results: dict[int, EntryResult] = {}
    for entry, result in zip(updates, written, strict=True):
        status = 201 if result.outcome is Outcome.CREATED else 200
        results[entry.index] = EntryResult(status, result.resource, outcome=result.outcome, written=True)
    return results


def _all_valid(parsed: Sequence[EntryRequest | GatewayError]) -> list[EntryRequest]:
    errors = [e for e in parsed if isinstance(e, GatewayError)]
    if not errors:
        return [e for e in parsed if isinstance(e, EntryRequest)]
    kinds = {type(e) for e in errors}
    cls = kinds.pop() if len(kinds) == 1 else InvalidBundle
    issues = [issue for e in errors for issue in e.issues]
    raise cls(f"the transaction has {len(errors)} invalid entr{'y' if len(errors) == 1 else 'ies'}", issues=issues)


def _claim_full_urls(entries: list[EntryRequest]) -> dict[str, str]:
    """fullUrl → ``Type/id`` for plain creates (ids chosen now) and updates by id; refuses duplicates."""
    targets: dict[str, str] = {}
    claimed: dict[str, int] = {}
    for entry in entries:
        if entry.interaction is Interaction.CREATE and not entry.if_none_exist:
            entry.assigned_id = str(uuid.uuid4())
        if entry.full_url is None or entry.method not in ("POST", "PUT"):
            continue
        first = claimed.setdefault(entry.full_url, entry.index)
        if first != entry.index:
            message = f"Bundle.entry[{first}] and Bundle.entry[{entry.index}] have the same fullUrl {entry.full_url}"
            raise InvalidBundle(
                message,
                issues=[Issue("invalid", message, (f"Bundle.entry[{first}].fullUrl", f"{entry.path}.fullUrl"))],
            )
        if entry.assigned_id is not None:
            targets[entry.full_url] = f"{entry.res_type}/{entry.assigned_id}"
        elif entry.interaction is Interaction.UPDATE:
            targets[entry.full_url] = f"{entry.res_type}/{entry.res_id}"
    return targets


def _is_conditional(entry: EntryRequest) -> bool:
    return entry.interaction is Interaction.CONDITIONAL_UPDATE or bool(
        entry.interaction is Interaction.CREATE and entry.if_none_exist
    )


async def _resolve_conditionals(tx: FhirRepository, entries: list[EntryRequest], targets: dict[str, str]) -> None:
    pending = [e for e in entries if _is_conditional(e)]
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    while pending:
        waiting_on = {e.full_url for e in pending if e.full_url}
        later: list[EntryRequest] = []
        for entry in pending:
            criteria = [(k, v) for k, v in (entry.if_none_exist or entry.params) if k not in _NOT_CRITERIA]
            unresolved = rewrite_criteria(criteria, targets)
            if unresolved:
                if waiting_on.intersection(unresolved):
                    later.append(entry)
                    continue
                raise _unknown_placeholder(entry, unresolved)
            key = (entry.res_type, tuple(sorted(criteria)))
            first = seen.setdefault(key, entry.index)
            if first != entry.index:
                raise _same_target(first, entry, f"the same conditional criteria ({entry.res_type})")
            await _resolve(tx, entry, criteria, targets)
        if len(later) == len(pending):
            paths = tuple(f"{e.path}.request" for e in later)
            message = "conditional entries whose criteria name each other's fullUrls cannot be resolved"
            raise InvalidBundle(message, issues=[Issue("invalid", message, paths)])
        pending = later


async def _resolve(
    tx: FhirRepository, entry: EntryRequest, criteria: list[tuple[str, str]], targets: dict[str, str]
) -> None:
    try:
        found = await tx.search(entry.res_type, [*criteria, ("_count", "2"), ("_total", "none")], strict=True)
    except GatewayError as exc:
        raise in_entry(exc, entry) from exc
    matches = found.matches
    if len(matches) > 1:
        what = "ifNoneExist" if entry.interaction is Interaction.CREATE else "the conditional update"
        raise in_entry(PreconditionFailed(f"{what} matched more than one {entry.res_type}"), entry)
    if entry.interaction is Interaction.CREATE:
        entry.if_none_exist = None
        if matches:
            entry.existing = matches[0]
            reference = matches[0].reference
        else:
            entry.assigned_id = str(uuid.uuid4())
            reference = f"{entry.res_type}/{entry.assigned_id}"
    else:
        assert entry.resource is not None
        entry.params = criteria
        given = entry.resource.get("id")
        if matches:
            target = matches[0].res_id
            if given is not None and given != target:
                mismatch = InvalidResource(
                    "the body's id differs from the resource the criteria matched",
                    issues=[Issue("invalid", f"matched {matches[0].reference}", (f"{entry.res_type}.id",))],
                )
                raise in_entry(mismatch, entry)
        else:
            target = given if isinstance(given, str) else str(uuid.uuid4())
        entry.res_id = target
        entry.resource["id"] = target
        reference = f"{entry.res_type}/{target}"
    if entry.full_url is not None:
        targets[entry.full_url] = reference


def _refuse_shared_targets(entries: list[EntryRequest]) -> None:
    changed: dict[tuple[str, str], int] = {}
    for entry in entries:
        if entry.method in ("PUT", "DELETE") and entry.res_id is not None:
            first = changed.setdefault((entry.res_type, entry.res_id), entry.index)
            if first != entry.index:
                raise _same_target(first, entry, f"{entry.res_type}/{entry.res_id}")


def _same_target(first: int, entry: EntryRequest, what: str) -> InvalidBundle:
    message = f"Bundle.entry[{first}] and Bundle.entry[{entry.index}] both target {what}; a resource may change once"
    paths = (f"Bundle.entry[{first}].request.url", f"{entry.path}.request.url")
    return InvalidBundle(message, issues=[Issue("invalid", message, paths)])


def _rewrite_request(entry: EntryRequest, targets: dict[str, str]) -> None:
    if entry.params and (unresolved := rewrite_criteria(entry.params, targets)):
        raise _unknown_placeholder(entry, unresolved)


def _unknown_placeholder(entry: EntryRequest, unresolved: list[str]) -> InvalidBundle:
    element = "request.ifNoneExist" if entry.if_none_exist else "request.url"
    message = f"{', '.join(unresolved)} in {element} names no entry of this transaction"
    return InvalidBundle(f"{entry.path}: {message}", issues=[Issue("invalid", message, (f"{entry.path}.{element}",))])


def _dangling(entry: EntryRequest, why: str) -> InvalidBundle:
    assert entry.resource is not None
    found = dangling_references(entry.resource)
    issues = [Issue("invalid", f"reference {ref} must {why}", (f"{entry.path}.resource{path}",)) for path, ref in found]
    return InvalidBundle(f"{entry.path}: {len(found)} reference(s) must {why}", issues=issues)


# -- batch ------------------------------------------------------------------------------------------------------


async def run_batch(
    repo: FhirRepository,
    parsed: Sequence[EntryRequest | GatewayError],
    base: str,
    *,
    strict: bool,
    guard: EntryGuard = OPEN,
) -> list[EntryResult]:
    results: list[EntryResult] = []
    for item in parsed:
        if isinstance(item, GatewayError):
            results.append(EntryResult(item.status, error=item))
            continue
        try:
            _refuse_placeholders(item)
            if item.is_write:
                async with repo.transaction() as tx:
                    results.append(await perform(tx, item, base, strict=strict, guard=guard))
            else:
                results.append(await perform(repo, item, base, strict=strict, guard=guard))
        except GatewayError as exc:
            results.append(EntryResult(exc.status, error=exc))
    return results


def _refuse_placeholders(entry: EntryRequest) -> None:
    """A batch entry may not point at another entry's fullUrl: batch entries are independent (http.html#brules)."""
    why = "not point at a Bundle entry: batch entries are independent (send a transaction instead)"
    if entry.resource is not None and rewrite_references(entry.resource, {}):
        raise _dangling(entry, why)
    for criteria, element in ((entry.params, "request.url"), (entry.if_none_exist or [], "request.ifNoneExist")):
        unresolved = rewrite_criteria(list(criteria), {})
        if unresolved:
            message = f"{', '.join(unresolved)} in {element} must {why}"
            raise InvalidBundle(message, issues=[Issue("invalid", message, (f"{entry.path}.{element}",))])
