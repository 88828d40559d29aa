"""One export job, run by a worker from the start: idempotent (the job's folder is emptied first, so a run that a
killed worker left half done is simply run again), never run by two workers at once (:func:`jobs.claim`), bounded to
the resources as they were at kick-off (last updated no later than the job's transactionTime: what changed after
it is for the next export with ``_since``), and stopped after the page in hand when the job is cancelled."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import GatewayError
from gateway.export import jobs, reader
from gateway.export.access import policy_for, shaper_for
from gateway.export.reader import Row
from gateway.export.scope import Kind, Selection
from gateway.export.writer import OutputFile, write_type
from gateway.settings import Settings
from gateway.store.repository import SqlFhirRepository

log = logging.getLogger(__name__)


#: Seconds between progress updates (the heartbeat that tells the sweep the job's worker is alive). After every
#: other page the worker only looks whether the job was cancelled.
PROGRESS_EVERY = 0.5

#: Reads one type's selected rows in pages (:func:`gateway.export.reader.pages`).
Pages = Callable[[AsyncEngine, Selection, int], AsyncIterator[Sequence[Row]]]


class Cancelled(Exception):
    """The job was deleted while it ran."""


def job_folder(settings: Settings, job_id: str) -> Path:
    return settings.resolved_export_folder / job_id


def remove_files(settings: Settings, job_id: str) -> None:
    shutil.rmtree(job_folder(settings, job_id), ignore_errors=True)


def group_members(content: bytes) -> tuple[str, ...]:
    """The ids of the Patients a Group lists as (not inactive) members."""
    group = orjson.loads(content)
    found: list[str] = []
    for member in group.get("member", ()):
        if not isinstance(member, dict) or member.get("inactive") is True:
            continue
        ref = (member.get("entity") or {}).get("reference")
        if isinstance(ref, str) and ref.startswith("Patient/"):
            found.append(ref.split("/", 2)[1])
    return tuple(sorted(set(found)))


async def run_export(engine: AsyncEngine, settings: Settings, job_id: str, *, read: Pages = reader.pages) -> str:
    """Run the job; what became of it (done, failed, cancelled, or skipped when there was nothing to run: the job is
    gone, finished, or another worker runs it)."""
    job = await jobs.load(engine, job_id)
    if (
        job is None
        or job.status not in (jobs.ACCEPTED, jobs.RUNNING)
        or not await jobs.claim(engine, job_id, stalled_after=settings.export_stalled_seconds)
    ):
        return "skipped"
    folder = job_folder(settings, job_id)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    repo = SqlFhirRepository(engine)
    shaper = shaper_for(job.caller, policy_for(settings), repo)
    try:
        patients: tuple[str, ...] | None = None
        if job.kind is Kind.GROUP:
            assert job.group_id is not None
            patients = group_members((await repo.read("Group", job.group_id)).content or b"{}")
        files: list[OutputFile] = []
        last_mark = [time.monotonic()]
        for number, res_type in enumerate(job.types, start=1):

            async def progress(count: int, res_type: str = res_type, number: int = number) -> None:
                if time.monotonic() - last_mark[0] < PROGRESS_EVERY:
                    if not await jobs.exists(engine, job_id):
                        raise Cancelled
                    return
                last_mark[0] = time.monotonic()
                text = f"{res_type} ({number} of {len(job.types)} types): {count} resources"
                if not await jobs.mark(engine, job_id, jobs.RUNNING, text):
                    raise Cancelled

            selection = Selection(res_type, job.kind, patients, job.since, job.transaction_time)
            files += await write_type(
                res_type,
                read(engine, selection, settings.export_page_size),
                folder,
                part_size=settings.export_file_resources,
                shaper=shaper,
                progress=progress,
            )
        if not await jobs.finish(engine, job_id, files):
            raise Cancelled
    except Cancelled:
        shutil.rmtree(folder, ignore_errors=True)
        log.info("export %s cancelled while running", job_id)
        return "cancelled"
    except GatewayError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        await jobs.fail(engine, job_id, exc.message)
        return "failed"
    except Exception as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if not await jobs.exists(engine, job_id):  # cancelled under our feet (its folder removed mid-write)
            log.info("export %s cancelled while running", job_id)
            return "cancelled"
        log.exception("export %s failed", job_id)
        await jobs.fail(engine, job_id, f"internal error ({type(exc).__name__})")
        return "failed"
    log.info("export %s done: %d file(s)", job_id, len(files))
    return "done"


def run_job(settings: Settings, job_id: str) -> str:
    """Run one job on its own event loop and engine (a worker thread shares nothing with other tasks)."""
    import asyncio

    from gateway.store.db import create_engine

    async def main() -> str:
        engine = create_engine(settings)
        try:
            return await run_export(engine, settings, job_id)
        finally:
            await engine.dispose()

    return asyncio.run(main())
