"""Queueing stalled export jobs again, from the worker's periodic sweep.

A kick-off whose message never reached a worker (the broker was down: the API logs "could not queue bulk export")
would otherwise stay ``accepted`` for ever, and a job whose worker died half way would stay ``running``. The sweep
(``kwg.sweep``, every ``KWG_SWEEP_INTERVAL`` seconds) calls :func:`requeue_stalled`, which finds those that have
waited or made no progress for ``KWG_EXPORT_STALLED_SECONDS`` (:func:`gateway.export.jobs.stalled`), marks each
``accepted`` again (one conditional update, so two sweeps never queue one job twice) and queues
``kwg.bulk_export`` for it. A job a worker takes in the meantime is left alone, and a second message for a job is
harmless (:func:`gateway.export.jobs.claim`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.export import jobs

log = logging.getLogger(__name__)

#: Queues ``kwg.bulk_export`` for one job id; False when the broker could not take it.
Send = Callable[[str], bool]


async def requeue_stalled(engine: AsyncEngine, send: Send, *, after: float, now: int | None = None) -> list[str]:
    """Queue every job stalled for ``after`` seconds (``KWG_EXPORT_STALLED_SECONDS``) again; the ids queued. A job
    the broker refused is tried again once it has stalled as long once more."""
    queued = []
    for job in await jobs.stalled(engine, after=after, now=now):
        if not await jobs.requeued(engine, job, now=now):
            continue  # taken by a worker, or queued by another sweep, since it was found
        if send(job.id):
            log.info("bulk export %s queued again (it was %s with no worker)", job.id, job.status)
            queued.append(job.id)
    return queued
