"""Keyworking records kept as profiled FHIR: write a record's resources in one transaction, read records back.

:class:`KeyworkingRecords` is what the domain API calls. A write maps the record (pure, ``mappings``), stores every
resource it maps to with its id derived from the record's (so writing the same record again is an update, never a
duplicate), deletes the resources an earlier version had and this one has not, and applies the register rules, all
in one repository transaction: the store validates each resource against its profile, and nothing is written when
any part fails. A read gathers the resources and maps them back; there is no second copy of a record.

A change to an existing record (a lifecycle move, a new rating) reads it, applies a pure function, and writes it
back only if nobody changed it meanwhile (``If-Match`` on the main resource's version): a concurrent change answers
409 and the caller retries.

Failures: pydantic ``ValidationError`` (the record is wrong: 422 naming the field), ``ImpossibleTransition`` (the
state forbids it: 409), :class:`~gateway.errors.NotFound` for unknown ids. The API turns them into
OperationOutcomes in one place.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Generic, NoReturn, Protocol, TypeVar

from gateway.domain.gather import belonging_to, gather, parse, read_optional, search
from gateway.errors import Conflict, Gone, NotFound, PreconditionFailed, UnprocessableRecord
from gateway.errors import Issue as GatewayIssue
from gateway.store.records import Outcome as StoreOutcome
from gateway.store.records import StoredResource, WriteResult
from gateway.store.repository import FhirRepository
from mappings.keyworking import lifecycle
from mappings.keyworking.elements import Resource
from mappings.keyworking.errors import ImpossibleTransition, NotOurShape
from mappings.keyworking.mapping import MAIN_RESOURCE, from_fhir, to_fhir
from mappings.keyworking.records import (
    CareTeam,
    Contact,
    KeyworkingCase,
    Person,
    Record,
    RegisterEntry,
    ReviewMeeting,
    check_age,
)
from mappings.provenance import Activity, Origin, provenance, versioned

R = TypeVar("R", bound=Record)

#: Kinds whose records name a person (``person_id``), checked to exist on every write.
PERSON_BOUND: tuple[type[Record], ...] = (RegisterEntry, KeyworkingCase, CareTeam, Contact, ReviewMeeting)

#: The search that lists a person's records of each kind (the main resource's reference to the Patient).
PERSON_PARAM: dict[type[Record], str] = {
    RegisterEntry: "patient",
    KeyworkingCase: "patient",
    CareTeam: "subject",
    Contact: "subject",
    ReviewMeeting: "subject",
}


#: Runs inside the write transaction after the record's resources are stored: the register rules.
class AfterWrite(Protocol):
    """What runs after a record's resources are written, inside the write's transaction (the register rules)."""

    def concerns(self, before: Record | None, after: Record) -> bool:
        """Whether this change is one the hook acts on (pure and cheap: other writes skip the transaction scope)."""
        ...

    async def __call__(self, repo: FhirRepository, before: Record | None, after: Record) -> None: ...


def new_record_id(seed: str | None = None) -> str:
    """An id for a new record: random, or derived from ``seed`` (client + Idempotency-Key) so a retry reuses it."""
    if seed is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:keyworking-gateway:record:{seed}"))


def record_id_of(record: Record) -> str:
    """The id of a record that has one (every record kind the service stores has an ``id`` field)."""
    rid = getattr(record, "id", None)
    if not isinstance(rid, str):
        raise TypeError(f"{type(record).__name__} has no id")
    return rid


def kind_name(kind: type[Record]) -> str:
    return {
        Person: "person",
        RegisterEntry: "register entry",
        KeyworkingCase: "keyworking case",
        CareTeam: "care team",
        Contact: "contact",
        ReviewMeeting: "C(E)TR or LAEP meeting",
    }.get(kind, kind.__name__)


@dataclass(frozen=True, slots=True)
class Saved(Generic[R]):
    """A record as written, the version of its main resource, and whether this write created it."""

    record: R
    version: int
    created: bool


class KeyworkingRecords:
    """Keyworking records over one FHIR repository (the app's, or a test's rolled-back one)."""

    def __init__(
        self,
        repo: FhirRepository,
        *,
        today: Callable[[], date] | None = None,
        after_write: AfterWrite | None = None,
        origin: Origin | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.repo = repo
        self.today = today or (lambda: datetime.now(UTC).date())
        self.after_write = after_write
        #: Whom each record write is attributed to (a Provenance per write); None writes none (the development
        #: caller, or a writer that records its own, as the HL7 processing does).
        self.origin = origin
        self.now = now or (lambda: datetime.now(UTC))

    def attributed(self, origin: Origin | None) -> KeyworkingRecords:
        """This service with its writes attributed to ``origin``."""
        return KeyworkingRecords(self.repo, today=self.today, after_write=self.after_write, origin=origin, now=self.now)

    @asynccontextmanager
    async def together(self) -> AsyncIterator[KeyworkingRecords]:
        """A service whose writes all commit together, or none do (e.g. a keyworker change on a case and its team)."""
        async with self.repo.transaction() as tx:
            yield KeyworkingRecords(
                tx, today=self.today, after_write=self.after_write, origin=self.origin, now=self.now
            )

    # -- reads ----------------------------------------------------------------------------------------------------

    async def get(self, kind: type[R], record_id: str) -> R:
        """The record of this kind with this id; NotFound when there is none (or the id is another kind's)."""
        try:
            resources = await gather(self.repo, kind, record_id)
        except (NotFound, Gone):
            raise NotFound(f"there is no {kind_name(kind)} {record_id!r}") from None
        return self._read(kind, resources, record_id)

    async def version_of(self, kind: type[Record], record_id: str) -> int:
        return (await self.repo.read(MAIN_RESOURCE[kind], record_id)).version_id

    async def for_person(self, kind: type[R], person_id: str) -> list[R]:
        """A person's records of this kind, oldest first (by id order within the same instant)."""
        await self._require_person(person_id)
        mains = await search(
            self.repo, MAIN_RESOURCE[kind], [(PERSON_PARAM[kind], f"Patient/{person_id}"), ("_sort", "_lastUpdated")]
        )
        records = []
        for main in mains:
            try:
                records.append(from_fhir(kind, [main, *await belonging_to(self.repo, kind, main)]))
            except NotOurShape:
                continue  # another kind sharing the resource type (a contact among meetings, a case among entries)
        return records

    async def people_by_identifier(self, system: str, value: str) -> list[Person]:
        patients = await search(self.repo, "Patient", [("identifier", f"{system}|{value}")])
        return [from_fhir(Person, [p, *await belonging_to(self.repo, Person, p)]) for p in patients]

    def _read(self, kind: type[R], resources: Sequence[Resource], record_id: str) -> R:
        try:
            return from_fhir(kind, resources)
        except NotOurShape:
            # The id names a resource of the right type that is not this kind of record (or not ours at all).
            raise NotFound(f"there is no {kind_name(kind)} {record_id!r}") from None

    # -- writes ---------------------------------------------------------------------------------------------------

    async def create(self, record: R, *, record_id: str | None = None) -> Saved[R]:
        """Store a new record under ``record_id`` (or a fresh one). Writing the same id again replaces it."""
        rid = record_id or new_record_id()
        return await self.put(record.model_copy(update={"id": rid}))

    async def put(self, record: R, *, if_match: int | None = None) -> Saved[R]:
        """Store this whole record (create or replace), applying the checks a whole-record write needs."""
        kind = type(record)
        # The stored record's main resource and the person it names, in one read (one round trip, one hop).
        person_id = getattr(record, "person_id", None) if kind is not Person else None
        keys = [(MAIN_RESOURCE[kind], record_id_of(record))]
        if isinstance(person_id, str):
            keys.append(("Patient", person_id))
        found = await self.repo.read_current(keys)
        before = await self._snapshot(kind, found[0]) if found[0] is not None else None
        person_known = found[1] is not None if len(found) > 1 else None
        await self._check(record, before.record if before else None, person_known=person_known)
        return await self._write(record, before, if_match)

    async def change(self, kind: type[R], record_id: str, step: Callable[[R], R]) -> Saved[R]:
        """Read the record, apply ``step`` (a pure lifecycle function), and write the result if nobody else did."""
        before = await self._existing(kind, record_id)
        if before is None:
            raise NotFound(f"there is no {kind_name(kind)} {record_id!r}")
        after = step(before.record)
        await self._check(after, before.record)
        return await self._write(after, before, before.version, raced=True)

    async def _existing(self, kind: type[R], record_id: str) -> _Snapshot[R] | None:
        """The stored record with its resources and main version; None when there is none."""
        try:
            stored_main = await self.repo.read(MAIN_RESOURCE[kind], record_id)
        except (NotFound, Gone):
            return None
        return await self._snapshot(kind, stored_main)

    async def _snapshot(self, kind: type[R], stored_main: StoredResource) -> _Snapshot[R]:
        """The record whose main resource is ``stored_main``, read with the resources that belong to it."""
        record_id = stored_main.res_id
        main = parse(stored_main)
        resources = [main, *await belonging_to(self.repo, kind, main)]
        try:
            record = from_fhir(kind, resources)
        except NotOurShape as exc:
            raise Conflict(
                f"{MAIN_RESOURCE[kind]}/{record_id} exists and is not a {kind_name(kind)}; choose another id",
                issues=[GatewayIssue("conflict", exc.message, (exc.path,))],
            ) from None
        return _Snapshot(record, resources, stored_main.version_id)

    async def _check(self, record: Record, before: Record | None, *, person_known: bool | None = None) -> None:
        """The checks a write needs; ``person_known`` is whether the named person exists, when already read."""
        if isinstance(record, Person):
            if before is None:
                check_age(record, self.today())
            return
        person_id = getattr(record, "person_id", None)
        if person_id is not None:
            if before is not None and getattr(before, "person_id", None) != person_id:
                raise Conflict(
                    f"a {kind_name(type(record))} cannot move to another person",
                    issues=[GatewayIssue("conflict", "person_id differs from the stored record", ("person_id",))],
                )
            if before is None:
                if person_known is None:
                    await self._require_person(person_id, field="person_id")
                elif not person_known:
                    raise _no_person(person_id, "person_id")
        if isinstance(record, KeyworkingCase):
            lifecycle.check_history(record)
            if isinstance(before, KeyworkingCase) and before.phase.value == "closed" and record != before:
                raise ImpossibleTransition(
                    "the case is already closed; a closed case stays closed",
                    state="closed",
                    field="phase",
                    requested=record.phase.value,
                )

    async def _require_person(self, person_id: str, *, field: str = "person_id") -> None:
        if await read_optional(self.repo, "Patient", person_id) is None:
            raise _no_person(person_id, field)

    async def _write(
        self, record: R, before: _Snapshot[R] | None, if_match: int | None, *, raced: bool = False
    ) -> Saved[R]:
        """Write what changed: the main resource (always, when anything changed: its version guards the record),
        the other resources whose content differs, and deletions of those the new version no longer has; with an
        origin, a Provenance naming the versions written, in the same batched plan (no plan of its own)."""
        kind = type(record)
        resources = to_fhir(record)
        old = {key_of(r): r for r in (before.resources if before else ())}
        changed = [r for r in resources[1:] if not same_content(old.get(key_of(r)), r)]
        stale = [key for key in old if key not in {key_of(r) for r in resources}]
        main = resources[0]
        main_changed = not same_content(old.get(key_of(main)), main)
        if before is not None and not (main_changed or changed or stale):
            if if_match is not None and if_match != before.version and not raced:
                raise PreconditionFailed(f"If-Match version {if_match} is stale: the record is at {before.version}")
            return Saved(from_fhir(kind, resources), before.version, created=False)
        if if_match is not None and (before is None or if_match != before.version):
            # Refused before anything is written (the version is checked again, under the row lock, below).
            at = f"at version {before.version}" if before is not None else "not stored"
            self._refuse_stale(record, raced, f"If-Match version {if_match} is stale: the record is {at}")
        batch = [main, *changed]
        for resource in batch:
            self.repo.check(resource, resource["resourceType"])  # update_many does not validate
        hook = self.after_write
        if hook is not None and not hook.concerns(before.record if before else None, record):
            hook = None
        # The versions this write makes, known before it is made so the Provenance can go in the same batch:
        # the next version of each resource read with the record, version 1 of one it did not have.
        expected = Versions({key_of(r): next_version(old.get(key_of(r))) for r in batch})
        gone = Versions({key: next_version(old[key]) for key in stale})
        activity = Activity.CREATE if before is None else Activity.UPDATE
        provenance_id = str(uuid.uuid4())
        # A record that gains a resource may be taking back an id deleted earlier (a diagnosis made again), whose
        # next version is not 1: such writes, like guarded ones, run in a scope that is retried if it was so.
        guarded = if_match is not None or bool(stale) or hook is not None
        regained = self.origin is not None and before is not None and any(key not in old for key in expected)
        if not (guarded or regained):
            # One batched write is already one transaction: no scope (and savepoint) around it.
            attribution = self._provenance(provenance_id, expected, gone, activity)
            results = await self.repo.update_many([(r, r["id"]) for r in [*batch, *attribution]])
            written = Versions.of(results[: len(batch)])
            if attribution and written != expected:
                # A concurrent writer (or an id deleted earlier) moved the versions on: name the ones written.
                corrected = self._provenance(provenance_id, written, gone, activity)[0]
                await self.repo.update("Provenance", provenance_id, corrected)
            return Saved(from_fhir(kind, resources), written[key_of(main)], created=before is None)
        changes = _Changes(record, before, batch, stale, hook, if_match, activity, provenance_id)
        for _attempt in range(2):
            try:
                version = await self._write_scoped(changes, expected, gone)
            except _VersionsMoved as moved:
                expected, gone = moved.written, moved.gone  # rolled back: again, naming the versions seen
                continue
            except PreconditionFailed:
                if not raced:
                    raise  # the client's If-Match was stale: 412
                self._refuse_stale(record, raced, "")
            return Saved(from_fhir(kind, resources), version, created=before is None)
        what = f"the {kind_name(kind)} {record_id_of(record)!r}"
        raise Conflict(f"{what} changed while this request was handled; read it and try again")

    async def _write_scoped(self, changes: _Changes[R], expected: Versions, gone: Versions) -> int:
        """The write in one transaction scope; the main resource's new version. Any failure rolls all of it back
        (no savepoint per interaction); :class:`_VersionsMoved` when the Provenance would name the wrong ones."""
        main_key = key_of(changes.batch[0])
        if_match = changes.if_match
        async with self.repo.transaction(savepoints=False) as tx:
            attribution = self._provenance(changes.provenance_id, expected, gone, changes.activity)
            results = await tx.update_many([(r, r["id"]) for r in [*changes.batch, *attribution]])
            written = Versions.of(results[: len(changes.batch)])
            if if_match is not None and written[main_key] != if_match + 1:
                # The version guard: the batch read the main row's version under its lock.
                raise PreconditionFailed(
                    f"If-Match version {if_match} is stale: the record is at version {written[main_key] - 1}"
                )
            deleted = Versions()
            for res_type, res_id in changes.stale:
                result = await tx.delete(res_type, res_id)
                if result.resource is not None and result.outcome is StoreOutcome.DELETED:
                    deleted[(res_type, res_id)] = result.resource.version_id
            if attribution and (written != expected or deleted != gone):
                raise _VersionsMoved(written, deleted)
            if changes.hook is not None:
                before = changes.before.record if changes.before else None
                await changes.hook(tx, before, changes.record)
        return written[main_key]

    def _provenance(self, provenance_id: str, written: Versions, gone: Versions, activity: Activity) -> list[Resource]:
        """The write's Provenance (none without an origin): every version written, deletions included."""
        if self.origin is None:
            return []
        targets = [versioned(t, i, v) for (t, i), v in [*written.items(), *gone.items()]]
        recorded = self.now().astimezone(UTC).isoformat(timespec="microseconds")
        return [
            provenance(
                provenance_id=provenance_id,
                targets=targets,
                recorded=recorded,
                activity=activity,
                origin=self.origin,
            )
        ]

    def _refuse_stale(self, record: Record, raced: bool, message: str) -> NoReturn:
        """412 for a client's stale If-Match; 409 when the record changed under a read-modify-write of ours."""
        if not raced:
            raise PreconditionFailed(message)
        what = f"the {kind_name(type(record))} {record_id_of(record)!r}"
        raise Conflict(f"{what} changed while this request was handled; read it and try again") from None


@dataclass(frozen=True, slots=True)
class _Changes(Generic[R]):
    """What one record write stores: the resources (main first), the ids it deletes, the rules to run after."""

    record: R
    before: _Snapshot[R] | None
    batch: list[Resource]
    stale: list[tuple[str, str]]
    hook: AfterWrite | None
    if_match: int | None
    activity: Activity
    provenance_id: str


class Versions(dict[tuple[str, str], int]):
    """The version of each (type, id) a write made (or is expected to make)."""

    @classmethod
    def of(cls, results: Sequence[WriteResult]) -> Versions:
        versions = cls()
        for result in results:
            assert result.resource is not None
            versions[(result.resource.res_type, result.resource.res_id)] = result.resource.version_id
        return versions


class _VersionsMoved(Exception):
    """The versions written are not those the Provenance named (rolled back; written again naming these)."""

    def __init__(self, written: Versions, gone: Versions) -> None:
        super().__init__("the versions written differ from those expected")
        self.written = written
        self.gone = gone


def key_of(resource: Resource) -> tuple[str, str]:
    return (str(resource["resourceType"]), str(resource["id"]))


def next_version(stored: Resource | None) -> int:
    """The version a write of this resource makes: one more than the stored one's, 1 for one not stored."""
    if stored is None:
        return 1
    meta = stored.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return int(version) + 1 if isinstance(version, str) and version.isdigit() else 1


def _no_person(person_id: str, field: str) -> UnprocessableRecord:
    return UnprocessableRecord(
        f"there is no person {person_id!r}",
        issues=[GatewayIssue("invalid", f"there is no person {person_id!r}; create the person first", (field,))],
    )


@dataclass(frozen=True, slots=True)
class _Snapshot(Generic[R]):
    """A stored record, the resources it was read from, and its main resource's version."""

    record: R
    resources: list[Resource]
    version: int


def same_content(stored: Resource | None, new: Resource) -> bool:
    """Whether a stored resource already says what ``new`` says (ignoring the server's versionId/lastUpdated)."""
    if stored is None:
        return False
    if {k: v for k, v in stored.items() if k != "meta"} != {k: v for k, v in new.items() if k != "meta"}:
        return False
    server = ("versionId", "lastUpdated")
    stored_meta = {k: v for k, v in stored.get("meta", {}).items() if k not in server}
    return stored_meta == {k: v for k, v in new.get("meta", {}).items() if k not in server}


async def read_resource(repo: FhirRepository, res_type: str, res_id: str) -> tuple[Resource, int]:
    """One stored resource and its version (for the recommendation status updates, which patch a Task)."""
    try:
        stored = await repo.read(res_type, res_id)
    except (NotFound, Gone):
        raise NotFound(f"there is no {res_type} {res_id!r}") from None
    return parse(stored), stored.version_id


def issue(message: str, field: str) -> list[GatewayIssue]:
    return [GatewayIssue("invalid", message, (field,))]


def as_dict(record: Record) -> dict[str, Any]:
    return record.model_dump(mode="json", exclude_none=True)
