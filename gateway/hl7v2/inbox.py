"""The durable HL7 v2 inbox with group commit.

Every connection hands its message to :meth:`HL7Inbox.append` and waits. One writer task takes everything that is
waiting (up to ``max_batch``), writes it in ONE database transaction, commits (SQLite ``synchronous=FULL`` /
PostgreSQL fsync), and only then wakes the waiting connections, which send their ACKs. Throughput grows with the
number of connections while every ACK still follows a durable commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.db import begin_write
from gateway.store.hl7_tables import hl7_feed_count, hl7_message
from gateway.store.timeutil import now_us


class Stored(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class InboxItem:
    sending_application: str
    sending_facility: str
    control_id: str
    message_type: str
    patient_key: str | None
    peer: str | None
    raw: bytes


@dataclass(slots=True)
class _Waiting:
    item: InboxItem
    future: asyncio.Future[Stored]


def _day(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).strftime("%Y-%m-%d")


class HL7Inbox:
    def __init__(self, engine: AsyncEngine, *, max_batch: int = 500) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._uncounted: Counter[tuple[str, str, str, str]] = Counter()

    async def start(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._run(), name="hl7-inbox-writer")

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        await self._flush_counts()

    async def append(self, item: InboxItem) -> Stored:
        """Store one message durably (or recognise it as a duplicate). Returns after the commit."""
        if self._writer is None:
            raise RuntimeError("the inbox writer is not running")
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Waiting(item, future))
        return await future

    def count(self, sending_facility: str, message_type: str, outcome: str) -> None:
        """Count a message that is not stored (e.g. not in the cohort); flushed with the next batch."""
        self._uncounted[(_day(now_us()), sending_facility, message_type, outcome)] += 1

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await self._write(batch)
            except Exception as exc:  # every waiting connection learns of the failure and answers AE
                for waiting in batch:
                    if not waiting.future.done():
                        waiting.future.set_exception(exc)
                continue
            for waiting, result in zip(batch, results, strict=True):
                if not waiting.future.done():
                    waiting.future.set_result(result)

    def _insert(self, dialect: str) -> Any:
        if dialect == "postgresql":
            return postgresql.insert(hl7_message)
        return sqlite.insert(hl7_message)

    async def _write(self, batch: list[_Waiting]) -> list[Stored]:
        ts = now_us()
        keys = [(w.item.sending_facility, w.item.control_id) for w in batch]
        first_index: dict[tuple[str, str], int] = {}
        for i, key in enumerate(keys):
            first_index.setdefault(key, i)
        rows = [
            {
                "sending_application": w.item.sending_application,
                "sending_facility": w.item.sending_facility,
                "control_id": w.item.control_id,
                "message_type": w.item.message_type,
                "patient_key": w.item.patient_key,
                "peer": w.item.peer,
                "received_at": ts,
                "raw": w.item.raw,
                "status": "received",
                "attempts": 0,
            }
            for i, w in enumerate(batch)
            if first_index[keys[i]] == i
        ]
        conn = await begin_write(self.engine)
        try:
            async with conn.begin():
                stmt = (
                    self._insert(conn.dialect.name)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=["sending_facility", "control_id"])
                    .returning(hl7_message.c.sending_facility, hl7_message.c.control_id)
                )
                inserted = {(r[0], r[1]) for r in (await conn.execute(stmt)).all()}
                results = [
                    Stored.STORED if first_index[key] == i and key in inserted else Stored.DUPLICATE
                    for i, key in enumerate(keys)
                ]
                for item, result in zip((w.item for w in batch), results, strict=True):
                    self._uncounted[(_day(ts), item.sending_facility, item.message_type, result.value)] += 1
                await self._write_counts(conn)
        finally:
            await conn.close()
        return results

    async def _flush_counts(self) -> None:
        if not self._uncounted:
            return
        conn = await begin_write(self.engine)
        try:
            async with conn.begin():
                await self._write_counts(conn)
        finally:
            await conn.close()

    async def _write_counts(self, conn: Any) -> None:
        if not self._uncounted:
            return
        pending, self._uncounted = self._uncounted, Counter()
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        for (day, facility, message_type, outcome), n in pending.items():
            stmt = dialect_insert(hl7_feed_count).values(
                day=day, sending_facility=facility, message_type=message_type, outcome=outcome, count=n
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["day", "sending_facility", "message_type", "outcome"],
                set_={"count": hl7_feed_count.c.count + n},
            )
            await conn.execute(stmt)

    async def mark(self, message_id: int, status: str, error: str | None = None) -> None:
        conn = await begin_write(self.engine)
        try:
            async with conn.begin():
                await conn.execute(
                    update(hl7_message)
                    .where(hl7_message.c.id == message_id)
                    .values(status=status, error=error, processed_at=now_us(), attempts=hl7_message.c.attempts + 1)
                )
        finally:
            await conn.close()

    async def counts(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(hl7_feed_count))).mappings().all()
        return [dict(r) for r in rows]
