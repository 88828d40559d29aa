"""The durable HL7 v2 inbox with group commit.

Every connection hands its message to :meth:`HL7Inbox.append` and waits. One writer task takes everything that is
waiting (up to ``max_batch``), writes it in ONE database transaction, commits (SQLite ``synchronous=FULL`` /
PostgreSQL fsync), and only then wakes the waiting connections, which send their ACKs. Throughput grows with the
number of connections while every ACK still follows a durable commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
    summary: str | None = None  # parsed summary (JSON) for the message log
    ack_code: str = "AA"  # the ACK this message gets once stored


@dataclass(slots=True)
class _Waiting:
    item: InboxItem
    future: asyncio.Future[Stored]


_PG_ARRAY_COLUMNS = (
    "sending_application",
    "sending_facility",
    "control_id",
    "message_type",
    "patient_key",
    "peer",
    "raw",
    "summary",
    "ack_code",
)
_PG_INSERT = (
    "INSERT INTO hl7_message (sending_application, sending_facility, control_id, message_type, patient_key, peer,"
    " raw, summary, ack_code, received_at, status, attempts)"
    " SELECT a, f, c, t, p, pe, r, s, k, $1, 'received', 0"
    " FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::text[],"
    " $10::text[]) WITH ORDINALITY AS u(a, f, c, t, p, pe, r, s, k, n) ORDER BY n"
    " ON CONFLICT (sending_facility, control_id) DO NOTHING"
    " RETURNING sending_facility, control_id"
)


def _day(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).strftime("%Y-%m-%d")


class HL7Inbox:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_batch: int = 500,
        count_interval: float = 1.0,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        """``on_commit(n)`` is called after each commit that stored ``n`` new messages (the processing seam: it
        wakes whatever hands stored messages on). Feed counts are written at most every ``count_interval``
        seconds, inside a message batch's transaction, so they add no commit of their own."""
        self.engine = engine
        self.max_batch = max_batch
        self.count_interval = count_interval
        self.on_commit = on_commit
        self._counts_written = 0.0
        self._pg: AsyncConnection | None = None  # the writer's own connection on PostgreSQL
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
        if self._pg is not None:
            await self._pg.close()
            self._pg = None
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
            stored = sum(1 for r in results if r is Stored.STORED)
            if stored and self.on_commit is not None:
                self.on_commit(stored)
            if time.monotonic() - self._counts_written >= self.count_interval:
                with contextlib.suppress(Exception):  # counts are statistics: kept in memory and retried
                    await self._flush_counts()

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
                "summary": w.item.summary,
                "ack_code": w.item.ack_code,
                "status": "received",
                "attempts": 0,
            }
            for i, w in enumerate(batch)
            if first_index[keys[i]] == i
        ]
        if self.engine.dialect.name == "postgresql":
            inserted = await self._insert_postgresql(rows)
        else:
            inserted = await self._insert_sqlalchemy(rows)
        results = [
            Stored.STORED if first_index[key] == i and key in inserted else Stored.DUPLICATE
            for i, key in enumerate(keys)
        ]
        for item, result in zip((w.item for w in batch), results, strict=True):
            self._uncounted[(_day(ts), item.sending_facility, item.message_type, result.value)] += 1
        return results

    async def _insert_sqlalchemy(self, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        conn = await begin_write(self.engine)
        try:
            async with conn.begin():
                stmt = (
                    self._insert(conn.dialect.name)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=["sending_facility", "control_id"])
                    .returning(hl7_message.c.sending_facility, hl7_message.c.control_id)
                )
                return {(r[0], r[1]) for r in (await conn.execute(stmt)).all()}
        finally:
            await conn.close()

    async def _insert_postgresql(self, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
        """One autocommit statement on asyncpg directly: the INSERT is its own transaction, so when it returns the
        batch is committed (``synchronous_commit=on``: flushed to the WAL on disk). One round trip per batch."""
        if self._pg is None:
            conn = await self.engine.connect()
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            self._pg = conn
        try:
            raw = await self._pg.get_raw_connection()
            driver: Any = raw.driver_connection
            columns = [[row[name] for row in rows] for name in _PG_ARRAY_COLUMNS]
            records = await driver.fetch(_PG_INSERT, rows[0]["received_at"], *columns)
        except Exception:
            conn, self._pg = self._pg, None
            with contextlib.suppress(Exception):
                await conn.invalidate()
                await conn.close()
            raise
        return {(r[0], r[1]) for r in records}

    async def _flush_counts(self) -> None:
        """Add the counts gathered in memory to ``hl7_feed_count``; on failure they stay in memory for next time."""
        self._counts_written = time.monotonic()
        if not self._uncounted:
            return
        pending = Counter(self._uncounted)
        conn = await begin_write(self.engine)
        try:
            async with conn.begin():
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
        finally:
            await conn.close()
        self._uncounted.subtract(pending)
        self._uncounted = +self._uncounted  # drop the zero entries

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
