"""The audit trail: AuditEvents written in batches, off the request's critical path.

Routes call :meth:`AuditTrail.record` with a small :class:`AuditEntry` (no I/O, no JSON). A background task takes
what has queued up every ``interval`` seconds (or as soon as ``batch`` entries wait), builds the AuditEvents, and
stores them in one transaction through the repository, so auditing a read costs the read a few microseconds, not a
second database round trip. The price is a window: entries queued when the process dies (at most ``interval``
seconds of them) are lost; :meth:`stop` flushes at shutdown. Writing an AuditEvent is not itself audited.

For a read, the person is found in the resource the read returned (``patient_id_of``) when the entry is built, not
while the response waits.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace

import orjson

from gateway.audit.chain import ChainHead, seal
from gateway.audit.events import AuditEntry, audit_event
from gateway.auth import Caller
from gateway.store.indexing import patient_id_of
from gateway.store.records import StoredResource
from gateway.store.repository import FhirRepository
from gateway.store.timeutil import now_us, to_instant

log = logging.getLogger(__name__)

#: Matches of a search named in its AuditEvent (beyond this, the query and the count say enough).
MAX_ENTITIES = 50


class AuditTrail:
    def __init__(
        self,
        repository: Callable[[], FhirRepository],
        *,
        interval: float = 0.2,
        batch: int = 500,
        chained: bool = False,
    ) -> None:
        self._repository = repository
        self.interval = interval
        self.batch = batch
        #: With ``chained``, this process's events form one hash chain (gateway.audit.chain).
        self.chain: ChainHead | None = ChainHead(uuid.uuid4().hex) if chained else None
        self._queue: list[tuple[AuditEntry, tuple[StoredResource, ...]]] = []
        self._wake = asyncio.Event()
        #: One flush at a time: a flush returns only once what was queued before it is stored (even if the
        #: background writer had taken it), and each batch is sealed from the chain head the one before left.
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- what routes call ----------------------------------------------------------------------------------------

    def record(self, entry: AuditEntry, resources: tuple[StoredResource, ...] = ()) -> None:
        """Queue an entry; ``resources`` are the stored resources it concerns (their persons are found later)."""
        if not self.running:
            self.dropped += 1
            return
        self._queue.append((entry, resources))
        if len(self._queue) >= self.batch:
            self._wake.set()

    def interaction(
        self,
        caller: Caller,
        interaction: str,
        resources: tuple[StoredResource, ...] = (),
        *,
        references: tuple[str, ...] = (),
        patients: tuple[str, ...] = (),
        query: str | None = None,
        outcome: str = "0",
        description: str | None = None,
        break_glass: bool = False,
    ) -> None:
        entry = AuditEntry(
            at=to_instant(now_us()),
            client_id=caller.client_id,
            organisation=caller.organisation,
            purpose=caller.purpose,
            interaction=interaction,
            references=references or tuple(r.reference for r in resources[:MAX_ENTITIES]),
            patients=patients,
            query=query,
            outcome=outcome,
            description=description,
            break_glass=break_glass,
        )
        self.record(entry, resources[:MAX_ENTITIES])

    def record_token_failure(self, error: str, description: str) -> None:
        """A refused token request (no client is known for sure: the agent is the token endpoint's caller)."""
        self.record(
            AuditEntry(
                at=to_instant(now_us()),
                client_id="unauthenticated",
                organisation="UNKNOWN",
                purpose="AUDIT",
                interaction="operation",
                outcome="4",
                description=f"token refused: {error}: {description}",
            )
        )

    # -- the writer -------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="kwg-audit-trail")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # keep auditing after a database hiccup; the batch is retried next time
                log.exception("could not write audit events; retrying")

    async def flush(self) -> int:
        """Write what has queued up (in one transaction); returns how many AuditEvents were written."""
        async with self._flushing:
            return await self._flush()

    async def _flush(self) -> int:
        if not self._queue:
            return 0
        pending, self._queue = self._queue, []
        built = [
            {**audit_event(_with_patients(entry, resources)), "id": str(uuid.uuid4())} for entry, resources in pending
        ]
        head = None
        if self.chain is not None:
            built, head = seal(built, self.chain)
        try:
            await self._repository().create_many([(event, event["id"]) for event in built])
        except Exception:
            self._queue = pending + self._queue  # sealed again, from the same head, on the next flush
            raise
        if head is not None:
            self.chain = head
        self.written += len(built)
        return len(built)


def _with_patients(entry: AuditEntry, resources: tuple[StoredResource, ...]) -> AuditEntry:
    """The entry with the persons whose data the resources are."""
    patients = list(entry.patients)
    for stored in resources:
        if stored.content is None:
            continue
        if stored.res_type == "Patient":
            patients.append(stored.res_id)
            continue
        pid = patient_id_of(orjson.loads(stored.content))
        if pid is not None:
            patients.append(pid)
    return replace(entry, patients=tuple(dict.fromkeys(patients)))
