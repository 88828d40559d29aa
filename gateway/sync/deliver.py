"""Draining a lane: send its due deliveries in order, in batches, and record what happened to each.

One task drains one (destination, lane) under a lease. A batch is the lane's next due deliveries (up to the
destination's batch size): each is read at its version, reduced to what the recipient may see (a change the
recipient may not see is withheld: recorded, not sent), and pushed in one go. The connector answers for each change
(accepted, or refused for good: a dead letter with the reason) or raises TransientError (nothing known to have
arrived: the whole batch is held back with backoff, or becomes dead letters once out of attempts). The lane stops at
a held-back delivery, so a patient's later changes never overtake an earlier one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.base import Change, PermanentError, PushConnector, TransientError
from gateway.store.repository import FhirRepository
from gateway.sync import deliveries, sharing
from gateway.sync.backoff import retry_delay
from gateway.sync.deliveries import Attempt, DueDelivery
from gateway.sync.destinations import Destination

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DrainReport:
    delivered: int = 0
    withheld: int = 0
    dead: int = 0
    retry_in: float | None = None  # seconds until the lane's head is due again, when it is held back
    lease_taken: bool = True


async def _changes(engine: AsyncEngine, destination: Destination, batch: list[DueDelivery]) -> list[Change | None]:
    """Each delivery as the change to send, or None when the recipient may not see it (withheld)."""
    contents = await deliveries.read_versions(engine, batch)
    out: list[Change | None] = []
    for d in batch:
        if d.method == "delete":
            out.append(Change(d.id, d.res_type, d.res_id, d.version_id, None, d.patient_id))
            continue
        content = contents[d.id]
        if content is None:
            out.append(None)  # the version is gone (purged); nothing to send
            continue
        reduced = sharing.reduce(destination.recipient, orjson.loads(content))
        out.append(None if reduced is None else Change(d.id, d.res_type, d.res_id, d.version_id, reduced, d.patient_id))
    return out


async def drain_lane(
    engine: AsyncEngine,
    repo: FhirRepository,
    destination: Destination,
    connector: PushConnector,
    lane: int,
    *,
    owner: str,
    lease_seconds: float = 60.0,
    max_batches: int = 1000,
) -> DrainReport:
    """Deliver what is due in the lane; stop when it is empty, held back, or ``max_batches`` were sent."""
    report = DrainReport()
    if not await deliveries.claim_lane(engine, destination.name, lane, owner, lease_seconds):
        report.lease_taken = False
        return report
    claimed = time.monotonic()
    try:
        for _ in range(max_batches):
            batch, wait_us = await deliveries.due_in_lane(engine, destination.name, lane, destination.batch_size)
            if not batch:
                if wait_us:
                    report.retry_in = wait_us / 1_000_000
                break
            if time.monotonic() - claimed > lease_seconds / 4:  # extend while three quarters of the lease remain
                await deliveries.claim_lane(engine, destination.name, lane, owner, lease_seconds)
                claimed = time.monotonic()
            await _send(engine, repo, destination, connector, batch, report)
            if report.retry_in is not None:
                break
    finally:
        await deliveries.release_lane(engine, destination.name, lane, owner)
    return report


async def _send(
    engine: AsyncEngine,
    repo: FhirRepository,
    destination: Destination,
    connector: PushConnector,
    batch: list[DueDelivery],
    report: DrainReport,
) -> None:
    changes = await _changes(engine, destination, batch)
    withheld = [Attempt(d.id, "withheld", None, None, 0) for d, c in zip(batch, changes, strict=True) if c is None]
    to_send = [c for c in changes if c is not None]
    started = time.monotonic()
    try:
        result = await connector.push(to_send) if to_send else None
    except TransientError as exc:
        took = int((time.monotonic() - started) * 1000)
        attempts = max(d.attempts for d in batch) + 1
        delay = retry_delay(
            attempts,
            base=destination.backoff_base_seconds,
            cap=destination.backoff_max_seconds,
            retry_after=exc.retry_after,
        )
        if withheld:
            await deliveries.record_done(engine, withheld)
            report.withheld += len(withheld)
        sent = [d for d, c in zip(batch, changes, strict=True) if c is not None]
        dead = await deliveries.record_retry(engine, sent, str(exc), exc.status, delay, destination.max_attempts, took)
        report.dead += dead
        report.retry_in = delay
        log.warning(
            "delivery to %s lane %d failed (%s); %d change(s) retry in %.1f s",
            destination.name,
            batch[0].lane,
            exc,
            len(sent) - dead,
            delay,
        )
        return
    except PermanentError as exc:  # the connector could not tell which change was refused: refuse all
        took = int((time.monotonic() - started) * 1000)
        refused = [Attempt(c.delivery_id, "refused", exc.status, exc.detail or str(exc), took) for c in to_send]
        await deliveries.record_done(engine, [*withheld, *refused])
        report.dead += len(refused)
        report.withheld += len(withheld)
        return
    took = int((time.monotonic() - started) * 1000)
    logged = list(withheld)
    if result is not None:
        for outcome in result.outcomes:
            logged.append(
                Attempt(
                    outcome.delivery_id,
                    "delivered" if outcome.accepted else "refused",
                    outcome.status,
                    None if outcome.accepted else (outcome.detail or "refused"),
                    took,
                )
            )
    await deliveries.record_done(engine, logged)
    report.delivered += sum(1 for a in logged if a.outcome == "delivered")
    report.withheld += len(withheld)
    report.dead += sum(1 for a in logged if a.outcome == "refused")
