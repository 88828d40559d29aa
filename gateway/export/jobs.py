"""Export jobs in the database: create, read, move through their states, delete. Every function is one short
transaction, so a job's state survives any process and a killed worker's job can be run again from the start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.auth import Caller
from gateway.export.scope import Kind
from gateway.export.tables import export_job
from gateway.export.writer import OutputFile
from gateway.store.db import begin_write, write_turn
from gateway.store.timeutil import now_us

ACCEPTED, RUNNING, DONE, FAILED = "accepted", "running", "done", "failed"


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
