"""The delivery rows: what is due in a lane, lane leases, outcomes, the attempt log, dead letters and replay.

Plain SQL through SQLAlchemy Core on both dialects. Every state change is one short transaction, so a worker killed
at any point leaves the rows consistent: at worst a batch that reached the destination is still pending and is sent
again (destinations receive idempotent updates, so a repeat changes nothing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import Row, and_, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store.db import begin_write
from gateway.store.models import resource_version
from gateway.store.timeutil import now_us
from gateway.sync.lists import id_in, versions_query
from gateway.sync.tables import delivery, delivery_attempt, delivery_lane

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


@dataclass(frozen=True, slots=True)
class DueDelivery:
    id: int
    destination: str
    lane: int
    res_type: str
    res_id: str
    version_id: int
    method: str
    patient_id: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one attempt at one delivery, for the log."""

    delivery_id: int
    outcome: str  # delivered | retry | refused | dead | withheld
    status: int | None
    error: str | None
    duration_ms: int


async def _write(engine: AsyncEngine) -> AsyncConnection:
    return await begin_write(engine)


@asynccontextmanager
async def _one_statement(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for one writing statement, which is atomic on its own: on PostgreSQL in autocommit (one round
    trip, no BEGIN and COMMIT around it), on SQLite in a write transaction (its single writer's turn)."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn
        return
    conn = await _write(engine)
    try:
        async with conn.begin():
            yield conn
    finally:
        await conn.close()


# -- lanes ----------------------------------------------------------------------------------------------------------


async def claim_lane(engine: AsyncEngine, destination: str, lane: int, owner: str, lease_seconds: float) -> bool:
    """Take the lane for ``lease_seconds`` unless someone else holds a live lease. True when taken.

    One upsert: the lane's row is made if it is new, and its lease taken only where it has lapsed or is already
    this owner's (an extension); the row comes back only when the lease is ours.
    """
    now = now_us()
    until = now + int(lease_seconds * 1_000_000)
    dialect_insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    claim = (
        dialect_insert(delivery_lane)
        .values(destination=destination, lane=lane, owner=owner, leased_until=until)
        .on_conflict_do_update(
            index_elements=["destination", "lane"],
            set_={"owner": owner, "leased_until": until},
            where=or_(delivery_lane.c.leased_until < now, delivery_lane.c.owner == owner),
        )
        .returning(delivery_lane.c.lane)
    )
    async with _one_statement(engine) as conn:
        return (await conn.execute(claim)).first() is not None


async def release_lane(engine: AsyncEngine, destination: str, lane: int, owner: str) -> None:
    async with _one_statement(engine) as conn:
        await conn.execute(
            update(delivery_lane)
            .where(
                delivery_lane.c.destination == destination,
                delivery_lane.c.lane == lane,
                delivery_lane.c.owner == owner,
            )
            .values(owner=None, leased_until=0)
        )


# -- what is due ----------------------------------------------------------------------------------------------------


def _due(row: Row[tuple[object, ...]]) -> DueDelivery:
    return DueDelivery(
        id=int(row.id),
        destination=str(row.destination),
        lane=int(row.lane),
        res_type=str(row.res_type),
        res_id=str(row.res_id),
        version_id=int(row.version_id),
        method=str(row.method),
        patient_id=row.patient_id if row.patient_id is None else str(row.patient_id),
        attempts=int(row.attempts),
    )


async def due_in_lane(engine: AsyncEngine, destination: str, lane: int, limit: int) -> tuple[list[DueDelivery], int]:
    """The lane's next pending deliveries, in order, up to the first that is held back for a retry.

    Returns them and, when the head of the lane is held back, the microseconds until it is due (else 0).
    """
    now = now_us()
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(delivery)
                .where(delivery.c.destination == destination, delivery.c.lane == lane, delivery.c.status == PENDING)
                .order_by(delivery.c.id)
                .limit(limit)
            )
        ).all()
    due: list[DueDelivery] = []
    for row in rows:
        if row.next_attempt_at > now:
            return due, (row.next_attempt_at - now if not due else 0)
        due.append(_due(row))
    return due, 0


async def lanes_with_work(engine: AsyncEngine) -> list[tuple[str, int]]:
    """Lanes with a due pending delivery and no live lease (what the sweep nudges)."""
    now = now_us()
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(delivery.c.destination, delivery.c.lane)
                .select_from(
                    delivery.outerjoin(
                        delivery_lane,
                        and_(
                            delivery_lane.c.destination == delivery.c.destination,
                            delivery_lane.c.lane == delivery.c.lane,
                        ),
                    )
                )
                .where(
                    delivery.c.status == PENDING,
                    delivery.c.next_attempt_at <= now,
                    or_(delivery_lane.c.leased_until.is_(None), delivery_lane.c.leased_until < now),
                )
                .group_by(delivery.c.destination, delivery.c.lane)
            )
        ).all()
    return [(str(r.destination), int(r.lane)) for r in rows]


# -- outcomes -------------------------------------------------------------------------------------------------------


async def _log(conn: AsyncConnection, attempts: Sequence[Attempt], at: int) -> None:
    if attempts:
        await conn.execute(
            insert(delivery_attempt),
            [
                {
                    "delivery_id": a.delivery_id,
                    "at": at,
                    "outcome": a.outcome,
                    "status": a.status,
                    "error": a.error,
                    "duration_ms": a.duration_ms,
                }
                for a in attempts
            ],
        )


async def record_done(engine: AsyncEngine, attempts: Sequence[Attempt]) -> None:
    """Deliveries that arrived (or were withheld by the sharing profile), and those refused for good (dead)."""
    now = now_us()
    conn = await _write(engine)
    try:
        async with conn.begin():
            for outcome, status in (("delivered", DELIVERED), ("withheld", DELIVERED), ("refused", DEAD)):
                ids = [a.delivery_id for a in attempts if a.outcome == outcome]
                if not ids:
                    continue
                values: dict[str, object] = {"status": status, "finished_at": now, "attempts": delivery.c.attempts + 1}
                if status == DEAD:
                    errors = {a.delivery_id: a.error for a in attempts if a.outcome == outcome}
                    for delivery_id in ids:
                        await conn.execute(
                            update(delivery)
                            .where(delivery.c.id == delivery_id, delivery.c.status == PENDING)
                            .values(**values, last_error=errors[delivery_id])
                        )
                else:
                    await conn.execute(
                        update(delivery)
                        .where(id_in(delivery.c.id, ids, conn.dialect.name), delivery.c.status == PENDING)
                        .values(**values, last_error=None)
                    )
            await _log(conn, attempts, now)
    finally:
        await conn.close()


async def record_retry(
    engine: AsyncEngine,
    deliveries: Sequence[DueDelivery],
    error: str,
    status: int | None,
    delay_seconds: float,
    max_attempts: int,
    duration_ms: int,
) -> int:
    """A transient failure: each delivery is held back ``delay_seconds``, or is dead once out of attempts.

    Returns how many became dead letters.
    """
    now = now_us()
    next_at = now + int(delay_seconds * 1_000_000)
    dead = [d.id for d in deliveries if d.attempts + 1 >= max_attempts]
    retry = [d.id for d in deliveries if d.attempts + 1 < max_attempts]
    conn = await _write(engine)
    try:
        async with conn.begin():
            if retry:
                await conn.execute(
                    update(delivery)
                    .where(id_in(delivery.c.id, retry, conn.dialect.name), delivery.c.status == PENDING)
                    .values(attempts=delivery.c.attempts + 1, next_attempt_at=next_at, last_error=error)
                )
            if dead:
                await conn.execute(
                    update(delivery)
                    .where(id_in(delivery.c.id, dead, conn.dialect.name), delivery.c.status == PENDING)
                    .values(
                        attempts=delivery.c.attempts + 1,
                        status=DEAD,
                        finished_at=now,
                        last_error=f"gave up after {max_attempts} attempts; last: {error}",
                    )
                )
            await _log(
                conn,
                [Attempt(i, "dead" if i in dead else "retry", status, error, duration_ms) for i in retry + dead],
                now,
            )
    finally:
        await conn.close()
    return len(dead)


# -- operators ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: int
    destination: str
    lane: int
    resource: str
    version_id: int
    method: str
    status: str
    attempts: int
    last_error: str | None
    created_at: int
    finished_at: int | None
    next_attempt_at: int


def _view(row: Row[tuple[object, ...]]) -> DeliveryView:
    return DeliveryView(
        id=int(row.id),
        destination=str(row.destination),
        lane=int(row.lane),
        resource=f"{row.res_type}/{row.res_id}",
        version_id=int(row.version_id),
        method=str(row.method),
        status=str(row.status),
        attempts=int(row.attempts),
        last_error=row.last_error if row.last_error is None else str(row.last_error),
        created_at=int(row.created_at),
        finished_at=row.finished_at if row.finished_at is None else int(row.finished_at),
        next_attempt_at=int(row.next_attempt_at),
    )


async def list_deliveries(
    engine: AsyncEngine, *, status: str | None = None, destination: str | None = None, limit: int = 50, after: int = 0
) -> list[DeliveryView]:
    query = select(delivery).where(delivery.c.id > after).order_by(delivery.c.id).limit(limit)
    if status is not None:
        query = query.where(delivery.c.status == status)
    if destination is not None:
        query = query.where(delivery.c.destination == destination)
    async with engine.connect() as conn:
        return [_view(r) for r in (await conn.execute(query)).all()]


async def get_delivery(engine: AsyncEngine, delivery_id: int) -> tuple[DeliveryView, list[Attempt]] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(delivery).where(delivery.c.id == delivery_id))).first()
        if row is None:
            return None
        attempts = (
            await conn.execute(
                select(delivery_attempt)
                .where(delivery_attempt.c.delivery_id == delivery_id)
                .order_by(delivery_attempt.c.id)
            )
        ).all()
    return _view(row), [Attempt(a.delivery_id, a.outcome, a.status, a.error, a.duration_ms) for a in attempts]


async def replay(engine: AsyncEngine, delivery_ids: Sequence[int]) -> list[tuple[str, int]]:
    """Dead letters back to pending, due now, attempts reset; returns the lanes to nudge."""
    if not delivery_ids:
        return []
    now = now_us()
    conn = await _write(engine)
    try:
        async with conn.begin():
            await conn.execute(
                update(delivery)
                .where(delivery.c.id.in_(list(delivery_ids)), delivery.c.status == DEAD)
                .values(status=PENDING, attempts=0, next_attempt_at=now, finished_at=None)
            )
            rows = (
                await conn.execute(
                    select(delivery.c.destination, delivery.c.lane)
                    .where(delivery.c.id.in_(list(delivery_ids)), delivery.c.status == PENDING)
                    .distinct()
                )
            ).all()
    finally:
        await conn.close()
    return [(str(r.destination), int(r.lane)) for r in rows]


async def dead_letter_ids(engine: AsyncEngine, destination: str | None = None) -> list[int]:
    query = select(delivery.c.id).where(delivery.c.status == DEAD).order_by(delivery.c.id)
    if destination is not None:
        query = query.where(delivery.c.destination == destination)
    async with engine.connect() as conn:
        return [int(r[0]) for r in (await conn.execute(query)).all()]


async def counts(engine: AsyncEngine) -> dict[str, dict[str, int]]:
    """Per destination: deliveries by status (queue depth is ``pending``)."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(delivery.c.destination, delivery.c.status, func.count()).group_by(
                    delivery.c.destination, delivery.c.status
                )
            )
        ).all()
    out: dict[str, dict[str, int]] = {}
    for destination, status, count in rows:
        out.setdefault(str(destination), {})[str(status)] = int(count)
    return out


@dataclass(frozen=True, slots=True)
class DestinationHealth:
    """What an operator wants to know about a destination at a glance."""

    pending: int
    delivered: int
    dead: int
    last_success_at: int | None
    attempts_last_hour: int
    failures_last_hour: int

    @property
    def error_rate(self) -> float:
        return self.failures_last_hour / self.attempts_last_hour if self.attempts_last_hour else 0.0


async def health(engine: AsyncEngine, destination: str) -> DestinationHealth:
    hour_ago = now_us() - 3_600_000_000
    async with engine.connect() as conn:
        by_status: dict[str, int] = dict(
            (
                await conn.execute(
                    select(delivery.c.status, func.count())
                    .where(delivery.c.destination == destination)
                    .group_by(delivery.c.status)
                )
            ).all()
        )
        last = (
            await conn.execute(
                select(func.max(delivery.c.finished_at)).where(
                    delivery.c.destination == destination, delivery.c.status == DELIVERED
                )
            )
        ).scalar()
        recent = (
            await conn.execute(
                select(delivery_attempt.c.outcome, func.count())
                .select_from(delivery_attempt.join(delivery, delivery.c.id == delivery_attempt.c.delivery_id))
                .where(delivery.c.destination == destination, delivery_attempt.c.at >= hour_ago)
                .group_by(delivery_attempt.c.outcome)
            )
        ).all()
    outcomes = {str(o): int(n) for o, n in recent}
    return DestinationHealth(
        pending=int(by_status.get(PENDING, 0)),
        delivered=int(by_status.get(DELIVERED, 0)),
        dead=int(by_status.get(DEAD, 0)),
        last_success_at=None if last is None else int(last),
        attempts_last_hour=sum(outcomes.values()),
        failures_last_hour=sum(n for o, n in outcomes.items() if o in ("retry", "refused", "dead")),
    )


async def read_versions(engine: AsyncEngine, batch: Sequence[DueDelivery]) -> dict[int, bytes | None]:
    """The stored content of each delivery's resource version, in one query (None: a deletion, or purged)."""
    wanted = {(d.res_type, d.res_id, d.version_id): d.id for d in batch if d.method != "delete"}
    found: dict[int, bytes | None] = dict.fromkeys((d.id for d in batch), None)
    if not wanted:
        return found
    keys = list(wanted)
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            for stored in (await conn.execute(versions_query(keys))).all():
                found[wanted[(stored.res_type, stored.res_id, stored.version_id)]] = stored.content
            return found
        for start in range(0, len(keys), 300):
            chunk = keys[start : start + 300]
            condition = tuple_(
                resource_version.c.res_type, resource_version.c.res_id, resource_version.c.version_id
            ).in_(chunk)
            query = select(
                resource_version.c.res_type,
                resource_version.c.res_id,
                resource_version.c.version_id,
                resource_version.c.content,
            ).where(condition)
            for row in (await conn.execute(query)).all():
                found[wanted[(row.res_type, row.res_id, row.version_id)]] = row.content
    return found
