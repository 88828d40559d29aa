"""Export jobs in the database: create, read, claim, move through their states, delete. Every function is one short
transaction, so a job's state survives any process and a killed worker's job can be run again from the start.

A worker runs a job only after :func:`claim` moved it to ``running`` (one conditional update, so two messages for
one job never run it twice at once); a running job's ``updated_at`` advances with its progress (at least every
half second of work), and one whose progress stopped for ``KWG_EXPORT_STALLED_SECONDS`` may be claimed again: its
worker is gone. :func:`stalled` finds those, and the accepted jobs no worker took for as long (queueing failed, or
the message was lost); the sweep queues them again (:mod:`gateway.export.requeue`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.auth import Caller
from gateway.export.scope import Kind
from gateway.export.tables import export_job
from gateway.export.writer import OutputFile
from gateway.store.db import begin_write, write_turn
from gateway.store.timeutil import now_us

ACCEPTED, RUNNING, DONE, FAILED = "accepted", "running", "done", "failed"
SECOND_US = 1_000_000


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    caller: Caller
    kind: Kind
    group_id: str | None
    types: tuple[str, ...]
    since: int | None
    request_url: str
    status: str
    progress: str
    transaction_time: int
    output: tuple[OutputFile, ...]
    error: str | None
    updated_at: int = 0


def caller_json(caller: Caller) -> str:
    return orjson.dumps(
        {
            "client_id": caller.client_id,
            "organisation": caller.organisation,
            "organisation_type": caller.organisation_type,
            "purpose": caller.purpose,
            "scopes": sorted(caller.scopes),
            "development": caller.development,
        }
    ).decode()


def caller_from_json(text: str) -> Caller:
    data: dict[str, Any] = orjson.loads(text)
    return Caller(
        client_id=data["client_id"],
        organisation=data["organisation"],
        purpose=data["purpose"],
        scopes=frozenset(data["scopes"]),
        development=bool(data["development"]),
        organisation_type=data["organisation_type"],
    )


def _job(row: Any) -> Job:
    output = orjson.loads(row.output) if row.output else []
    return Job(
        id=row.id,
        caller=caller_from_json(row.caller),
        kind=Kind(row.kind),
        group_id=row.group_id,
        types=tuple(t for t in row.types.split(",") if t),
        since=row.since,
        request_url=row.request_url,
        status=row.status,
        progress=row.progress,
        transaction_time=row.transaction_time,
        output=tuple(OutputFile(o["type"], o["name"], o["count"]) for o in output),
        error=row.error,
        updated_at=row.updated_at,
    )


async def _write(engine: AsyncEngine, statement: Any) -> int:
    async with write_turn(engine):
        conn = await begin_write(engine)
        try:
            async with conn.begin():
                result = await conn.execute(statement)
                return int(result.rowcount or 0)
        finally:
            await conn.close()


async def create(
    engine: AsyncEngine,
    job_id: str,
    caller: Caller,
    kind: Kind,
    types: tuple[str, ...],
    *,
    since: int | None,
    group_id: str | None,
    request_url: str,
) -> None:
    now = now_us()
    await _write(
        engine,
        export_job.insert().values(
            id=job_id,
            client_id=caller.client_id,
            caller=caller_json(caller),
            kind=kind.value,
            group_id=group_id,
            types=",".join(types),
            since=since,
            request_url=request_url,
            status=ACCEPTED,
            progress="accepted",
            transaction_time=now,
            created_at=now,
            updated_at=now,
        ),
    )


async def load(engine: AsyncEngine, job_id: str) -> Job | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(export_job).where(export_job.c.id == job_id))).first()
    return None if row is None else _job(row)


async def exists(engine: AsyncEngine, job_id: str) -> bool:
    async with engine.connect() as conn:
        found = await conn.execute(select(export_job.c.id).where(export_job.c.id == job_id))
        return found.first() is not None


async def claim(engine: AsyncEngine, job_id: str, *, stalled_after: float, now: int | None = None) -> bool:
    """Take the job for this worker (``running``, progress "starting"): True when it was accepted, or running with
    no progress for ``stalled_after`` seconds; False when it is gone, finished, or another worker runs it."""
    now = now_us() if now is None else now
    limit = now - int(stalled_after * SECOND_US)
    statement = (
        update(export_job)
        .where(
            export_job.c.id == job_id,
            or_(
                export_job.c.status == ACCEPTED,
                and_(export_job.c.status == RUNNING, export_job.c.updated_at < limit),
            ),
        )
        .values(status=RUNNING, progress="starting", updated_at=now)
    )
    return await _write(engine, statement) > 0


async def stalled(engine: AsyncEngine, *, after: float, now: int | None = None) -> list[Job]:
    """The jobs waiting for a worker that is not coming: accepted and untaken for ``after`` seconds (since kick-off
    or the last time they were queued), or running without progress for as long."""
    limit = (now_us() if now is None else now) - int(after * SECOND_US)
    query = (
        select(export_job)
        .where(export_job.c.status.in_((ACCEPTED, RUNNING)), export_job.c.updated_at < limit)
        .order_by(export_job.c.created_at)
    )
    async with engine.connect() as conn:
        return [_job(row) for row in (await conn.execute(query)).all()]


async def requeued(engine: AsyncEngine, job: Job, *, now: int | None = None) -> bool:
    """Record that a stalled job is queued again (``accepted``, its clock restarted), unless it changed since it was
    found stalled (a worker took it, or another sweep queued it): False then, and it must not be queued."""
    statement = (
        update(export_job)
        .where(export_job.c.id == job.id, export_job.c.status == job.status, export_job.c.updated_at == job.updated_at)
        .values(status=ACCEPTED, progress="queued again", updated_at=now_us() if now is None else now)
    )
    return await _write(engine, statement) > 0


async def mark(engine: AsyncEngine, job_id: str, status: str, progress: str) -> bool:
    """Set the job's state; False when the job is gone (cancelled)."""
    statement = (
        update(export_job)
        .where(export_job.c.id == job_id)
        .values(status=status, progress=progress[:200], updated_at=now_us())
    )
    return await _write(engine, statement) > 0


async def finish(engine: AsyncEngine, job_id: str, files: list[OutputFile]) -> bool:
    output = orjson.dumps([{"type": f.res_type, "name": f.name, "count": f.count} for f in files]).decode()
    statement = (
        update(export_job)
        .where(export_job.c.id == job_id)
        .values(status=DONE, progress="done", output=output, updated_at=now_us())
    )
    return await _write(engine, statement) > 0


async def fail(engine: AsyncEngine, job_id: str, error: str) -> None:
    statement = (
        update(export_job)
        .where(export_job.c.id == job_id)
        .values(status=FAILED, progress="failed", error=error[:2000], updated_at=now_us())
    )
    await _write(engine, statement)


async def remove(engine: AsyncEngine, job_id: str) -> bool:
    return await _write(engine, delete(export_job).where(export_job.c.id == job_id)) > 0
