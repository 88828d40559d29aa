"""The HL7 v2 message log: what the processing step reads, reprocess after a fix, purge of raw content.

This is the seam between the listener (which only stores and ACKs) and the processing of cohort messages (mapping
to FHIR, register alerts), which runs elsewhere (Celery workers). :func:`process_pending` hands stored messages,
oldest first, to a :class:`MessageHandler` and records the outcome; :func:`reprocess` puts messages back in the
queue; :func:`purge_raw` removes raw content after the retention period while the summary, status and counts stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.db import begin_write
from gateway.store.hl7_tables import hl7_feed_count, hl7_message
from gateway.store.timeutil import now_us

RECEIVED = "received"
PROCESSED = "processed"
FAILED = "failed"

DAY_US = 86_400 * 1_000_000


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    sending_facility: str
    control_id: str
    message_type: str
    patient_key: str | None
    raw: bytes


class MessageHandler(Protocol):
    async def __call__(self, message: StoredMessage) -> None:
        """Process one cohort message; raise to record it as failed (with the error) for a later reprocess."""
        ...


async def pending(engine: AsyncEngine, limit: int = 100) -> list[StoredMessage]:
    """Messages stored and not yet processed, in the order received."""
    stmt = (
        select(
            hl7_message.c.id,
            hl7_message.c.sending_facility,
            hl7_message.c.control_id,
            hl7_message.c.message_type,
            hl7_message.c.patient_key,
            hl7_message.c.raw,
        )
        .where(hl7_message.c.status == RECEIVED, hl7_message.c.raw.is_not(None))
        .order_by(hl7_message.c.id)
        .limit(limit)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [StoredMessage(r[0], r[1], r[2], r[3], r[4], bytes(r[5])) for r in rows]


async def mark(engine: AsyncEngine, message_id: int, status: str, error: str | None = None) -> None:
    conn = await begin_write(engine)
    try:
        async with conn.begin():
            await conn.execute(
                update(hl7_message)
                .where(hl7_message.c.id == message_id)
                .values(status=status, error=error, processed_at=now_us(), attempts=hl7_message.c.attempts + 1)
            )
    finally:
        await conn.close()


async def process_pending(engine: AsyncEngine, handler: MessageHandler, limit: int = 100) -> int:
    """Hand up to ``limit`` pending messages to ``handler`` one by one; returns how many were handled."""
    messages = await pending(engine, limit)
    for message in messages:
        try:
            await handler(message)
        except Exception as exc:  # recorded on the message; the next one goes on
            await mark(engine, message.id, FAILED, f"{type(exc).__name__}: {exc}"[:2000])
        else:
            await mark(engine, message.id, PROCESSED)
    return len(messages)


async def reprocess(engine: AsyncEngine, ids: Sequence[int] | None = None) -> int:
    """Queue messages again (the given ids, or every failed one) as long as their raw content is kept."""
    stmt = update(hl7_message).where(hl7_message.c.raw.is_not(None))
    stmt = (
        stmt.where(hl7_message.c.id.in_(list(ids))) if ids is not None else stmt.where(hl7_message.c.status == FAILED)
    )
    conn = await begin_write(engine)
    try:
        async with conn.begin():
            result = await conn.execute(stmt.values(status=RECEIVED, error=None))
    finally:
        await conn.close()
    return int(result.rowcount or 0)


async def purge_raw(engine: AsyncEngine, retention_days: int, *, now: int | None = None) -> int:
    """Remove raw content received more than ``retention_days`` ago; returns how many messages were purged.

    Messages not yet processed keep their content (they still have to be mapped)."""
    cutoff = (now if now is not None else now_us()) - retention_days * DAY_US
    stmt = (
        update(hl7_message)
        .where(
            hl7_message.c.received_at < cutoff,
            hl7_message.c.raw.is_not(None),
            hl7_message.c.status != RECEIVED,
        )
        .values(raw=None)
    )
    conn = await begin_write(engine)
    try:
        async with conn.begin():
            result = await conn.execute(stmt)
    finally:
        await conn.close()
    return int(result.rowcount or 0)


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    """A message as the message log shows it (the raw content only when asked for and still kept)."""

    id: int
    sending_application: str
    sending_facility: str
    control_id: str
    message_type: str
    received_at: int
    ack_code: str | None
    status: str
    attempts: int
    error: str | None
    processed_at: int | None
    summary: str | None
    raw_kept: bool
    raw: bytes | None = None


_LOG_COLUMNS = (
    hl7_message.c.id,
    hl7_message.c.sending_application,
    hl7_message.c.sending_facility,
    hl7_message.c.control_id,
    hl7_message.c.message_type,
    hl7_message.c.received_at,
    hl7_message.c.ack_code,
    hl7_message.c.status,
    hl7_message.c.attempts,
    hl7_message.c.error,
    hl7_message.c.processed_at,
    hl7_message.c.summary,
    hl7_message.c.raw.is_not(None).label("raw_kept"),
)


async def list_messages(
    engine: AsyncEngine,
    *,
    status: str | None = None,
    sending_facility: str | None = None,
    after: int = 0,
    limit: int = 50,
) -> list[LoggedMessage]:
    """The message log in the order received (``after``: ids greater than this, for paging)."""
    stmt = select(*_LOG_COLUMNS).where(hl7_message.c.id > after).order_by(hl7_message.c.id).limit(limit)
    if status is not None:
        stmt = stmt.where(hl7_message.c.status == status)
    if sending_facility is not None:
        stmt = stmt.where(hl7_message.c.sending_facility == sending_facility)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [_logged(row._mapping) for row in rows]


async def get_message(engine: AsyncEngine, message_id: int) -> LoggedMessage | None:
    """One message with its raw content (None once purged)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(*_LOG_COLUMNS, hl7_message.c.raw).where(hl7_message.c.id == message_id))
        ).first()
    if row is None:
        return None
    raw = row._mapping["raw"]
    return _logged(row._mapping, raw=None if raw is None else bytes(raw))


def _logged(row: Any, raw: bytes | None = None) -> LoggedMessage:
    return LoggedMessage(
        id=int(row["id"]),
        sending_application=str(row["sending_application"]),
        sending_facility=str(row["sending_facility"]),
        control_id=str(row["control_id"]),
        message_type=str(row["message_type"]),
        received_at=int(row["received_at"]),
        ack_code=row["ack_code"],
        status=str(row["status"]),
        attempts=int(row["attempts"]),
        error=row["error"],
        processed_at=row["processed_at"],
        summary=row["summary"],
        raw_kept=bool(row["raw_kept"]),
        raw=raw,
    )


async def feed_counts(engine: AsyncEngine, *, since_day: str | None = None) -> list[tuple[str, str, str, str, int]]:
    """(day, sending facility, message type, outcome, count): everything received, in and out of the cohort."""
    stmt = select(
        hl7_feed_count.c.day,
        hl7_feed_count.c.sending_facility,
        hl7_feed_count.c.message_type,
        hl7_feed_count.c.outcome,
        hl7_feed_count.c.count,
    ).order_by(hl7_feed_count.c.day, hl7_feed_count.c.sending_facility, hl7_feed_count.c.message_type)
    if since_day is not None:
        stmt = stmt.where(hl7_feed_count.c.day >= since_day)
    async with engine.connect() as conn:
        return [(str(a), str(b), str(c), str(d), int(e)) for a, b, c, d, e in (await conn.execute(stmt)).all()]


async def annotate(engine: AsyncEngine, message_id: int, key: str, value: Any) -> None:
    """Add ``key: value`` to a message's parsed summary (e.g. the hl7apy structure check of a cohort message)."""
    async with engine.connect() as conn:
        current = (await conn.execute(select(hl7_message.c.summary).where(hl7_message.c.id == message_id))).scalar()
    summary = orjson.loads(current) if current else {}
    summary[key] = value
    conn2 = await begin_write(engine)
    try:
        async with conn2.begin():
            await conn2.execute(
                update(hl7_message).where(hl7_message.c.id == message_id).values(summary=orjson.dumps(summary).decode())
            )
    finally:
        await conn2.close()
