"""The durable inbox and the message log on both databases."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.hl7v2.inbox import HL7Inbox, InboxItem, Stored
from gateway.hl7v2.log import FAILED, PROCESSED, StoredMessage, pending, process_pending, purge_raw, reprocess
from gateway.store.hl7_tables import hl7_feed_count, hl7_message
from gateway.store.timeutil import now_us


def _item(facility: str, control_id: str, raw: bytes = b"MSH|^~\\&|PAS|X") -> InboxItem:
    return InboxItem("PAS", facility, control_id, "ADT^A01", "9449305552", "127.0.0.1:1", raw, '{"event":"A01"}')


async def _rows(engine: AsyncEngine, facility: str) -> list[tuple[str, bytes | None, str]]:
    async with engine.connect() as conn:
        stmt = (
            select(hl7_message.c.control_id, hl7_message.c.raw, hl7_message.c.status)
            .where(hl7_message.c.sending_facility == facility)
            .order_by(hl7_message.c.id)
        )
        return [(r[0], r[1], r[2]) for r in (await conn.execute(stmt)).all()]


async def test_concurrent_appends_are_stored_once_each_and_duplicates_recognised(engine: AsyncEngine) -> None:
    facility = uuid.uuid4().hex[:12]
    commits: list[int] = []
    inbox = HL7Inbox(engine, on_commit=commits.append, count_interval=0)
    await inbox.start()
    try:
        items = [_item(facility, f"C{i}") for i in range(20)] + [_item(facility, "C3"), _item(facility, "C3")]
        results = await asyncio.gather(*(inbox.append(i) for i in items))
        again = await inbox.append(_item(facility, "C7"))
    finally:
        await inbox.stop()
    assert results[:20] == [Stored.STORED] * 20
    assert results[20:] == [Stored.DUPLICATE, Stored.DUPLICATE]
    assert again is Stored.DUPLICATE
    rows = await _rows(engine, facility)
    assert sorted(r[0] for r in rows) == sorted(f"C{i}" for i in range(20))
    assert all(r[2] == "received" for r in rows)
    assert sum(commits) == 20
    async with engine.connect() as conn:
        counts = {
            r[0]: r[1]
            for r in await conn.execute(
                select(hl7_feed_count.c.outcome, func.sum(hl7_feed_count.c.count))
                .where(hl7_feed_count.c.sending_facility == facility)
                .group_by(hl7_feed_count.c.outcome)
            )
        }
    assert counts == {"stored": 20, "duplicate": 3}


async def test_not_in_cohort_counts_are_flushed_on_stop(engine: AsyncEngine) -> None:
    facility = uuid.uuid4().hex[:12]
    inbox = HL7Inbox(engine)
    await inbox.start()
    inbox.count(facility, "ADT^A01", "not_in_cohort")
    inbox.count(facility, "ADT^A01", "not_in_cohort")
    await inbox.stop()
    assert await _rows(engine, facility) == []
    async with engine.connect() as conn:
        total = (
            await conn.execute(
                select(func.sum(hl7_feed_count.c.count)).where(
                    hl7_feed_count.c.sending_facility == facility, hl7_feed_count.c.outcome == "not_in_cohort"
                )
            )
        ).scalar_one()
    assert total == 2


async def test_append_fails_loudly_when_the_database_write_fails(engine: AsyncEngine) -> None:
    inbox = HL7Inbox(engine)
    await inbox.start()
    try:
        bad = InboxItem("PAS", "F" * 200, "C1", "ADT^A01", None, None, b"x")  # too long for PostgreSQL
        if engine.dialect.name == "postgresql":
            with pytest.raises(Exception, match="too long"):  # asyncpg's StringDataRightTruncationError
                await inbox.append(bad)
        # the writer survives a failed batch
        assert await inbox.append(_item(uuid.uuid4().hex[:12], "C1")) is Stored.STORED
    finally:
        await inbox.stop()


async def test_process_reprocess_and_purge(engine: AsyncEngine) -> None:
    facility = uuid.uuid4().hex[:12]
    inbox = HL7Inbox(engine)
    await inbox.start()
    try:
        for control in ("ok", "boom"):
            await inbox.append(_item(facility, control, raw=f"MSH|{control}".encode()))
    finally:
        await inbox.stop()

    seen: list[str] = []

    async def handler(message: StoredMessage) -> None:
        if message.sending_facility != facility:
            return
        seen.append(message.control_id)
        if message.control_id == "boom":
            raise ValueError("mapping failed")

    while await process_pending(engine, handler, limit=500):
        pass
    assert seen == ["ok", "boom"]
    statuses = {r[0]: r[2] for r in await _rows(engine, facility)}
    assert statuses == {"ok": PROCESSED, "boom": FAILED}

    assert await reprocess(engine) >= 1
    ours = [m for m in await pending(engine, 10_000) if m.sending_facility == facility]
    assert [m.control_id for m in ours] == ["boom"]
    assert ours[0].raw == b"MSH|boom"

    # purge: nothing is younger than the cutoff now; a week later the processed message loses its raw content
    assert await purge_raw(engine, 30) == 0  # every row in the test database is younger than 30 days
    await purge_raw(engine, 7, now=now_us() + 8 * 86_400 * 1_000_000)
    rows = {r[0]: r for r in await _rows(engine, facility)}
    assert rows["ok"][1] is None  # processed and old: raw gone, the row (status, summary) stays
    assert rows["ok"][2] == PROCESSED
    assert rows["boom"][1] == b"MSH|boom"  # still waiting to be processed: kept
