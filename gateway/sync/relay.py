"""The relay: outbox events become delivery rows, one per destination whose sharing profile admits the change.

One relay runs at a time (a PostgreSQL advisory lock; SQLite's single writer), so deliveries are created in outbox
order and a patient's changes keep their order within a lane. Relaying is idempotent: a delivery is unique per
(destination, outbox event), and events are marked relayed in the same transaction that creates their deliveries.
The relay returns the lanes that got work, so the caller can nudge Celery; if the nudge is lost (broker down), the
sweep finds the pending deliveries later.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store.db import begin_write
from gateway.store.models import outbox, resource, sp_reference, sp_token
from gateway.store.timeutil import now_us
from gateway.sync import sharing
from gateway.sync.destinations import Destination
from gateway.sync.lists import id_in, text_in
from gateway.sync.tables import delivery
from mappings.keyworking.urls import RECIPIENT_TYPE

log = logging.getLogger(__name__)

#: Advisory lock key of the relay on PostgreSQL ("kwgrelay" in ASCII, as a 64-bit integer).
RELAY_LOCK_KEY = 0x6B7767_72656C6179 & 0x7FFFFFFFFFFFFFFF

#: Decides, for the destinations it knows (FHIR Subscriptions), which outbox events (ids) they get: name → ids.
#: Destinations it does not name follow their sharing profile alone.
Matcher = Callable[[Sequence[Any]], Awaitable[dict[str, set[int]]]]
#: Where the destinations come from each cycle, with their matcher (gateway.sync.directory).
DestinationSource = Callable[[], Awaitable[tuple[Sequence[Destination], Matcher | None]]]


@dataclass(slots=True)
class RelayReport:
    events: int = 0
    deliveries: int = 0
    lanes: set[tuple[str, int]] = field(default_factory=set)


def lane_of(patient_id: str | None, res_type: str, res_id: str, lanes: int) -> int:
    """The lane of a change: by patient, so one patient's changes stay in order; by resource when there is none."""
    key = f"Patient/{patient_id}" if patient_id else f"{res_type}/{res_id}"
    return zlib.crc32(key.encode()) % lanes


async def _take_relay_lock(conn: AsyncConnection) -> bool:
    if conn.dialect.name != "postgresql":
        return True  # SQLite: the write transaction (BEGIN IMMEDIATE) already excludes every other writer
    return bool((await conn.execute(text(f"SELECT pg_try_advisory_xact_lock({RELAY_LOCK_KEY})"))).scalar())


def _insert_ignoring_duplicates(conn: AsyncConnection) -> object:
    """One INSERT of a delivery row that skips a row already there; executed with many rows (executemany), its SQL
    is compiled once and cached, where a multi-row VALUES statement would be compiled anew for every batch."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    return dialect_insert(delivery).on_conflict_do_nothing(index_elements=["destination", "outbox_id"])


@dataclass(frozen=True, slots=True)
class ConsentLimits:
    """What the people's Consents say of sharing: whose consent is withdrawn or refused and not given again (no
    active Consent: nothing is sent), and, from their active Consents, the kinds of recipient a provision denies."""

    withdrawn: set[str] = field(default_factory=set)
    denied: dict[str, set[str]] = field(default_factory=dict)

    def reason(self, patient_id: str | None, recipient: str) -> str | None:
        """Why a change about this person is withheld from this recipient, or None when it may go."""
        if patient_id is None:
            return None
        if patient_id in self.withdrawn:
            return "consent withdrawn: not sent"
        if recipient in self.denied.get(patient_id, ()):
            return f"consent denies sharing with {recipient}: not sent"
        return None


async def consent_limits(conn: AsyncConnection, patient_ids: set[str]) -> ConsentLimits:
    """The :class:`ConsentLimits` of these people, from their Consents (one query)."""
    if not patient_ids:
        return ConsentLimits()
    ref, tok = sp_reference.alias("ref"), sp_token.alias("tok")
    rows = (
        await conn.execute(
            select(ref.c.target_id, tok.c.code, resource.c.content)
            .select_from(ref.join(tok, tok.c.res_pk == ref.c.res_pk).join(resource, resource.c.pk == ref.c.res_pk))
            .where(
                ref.c.res_type == "Consent",
                ref.c.param == "patient",
                ref.c.target_type == "Patient",
                text_in(ref.c.target_id, sorted(patient_ids), conn.dialect.name),
                tok.c.param == "status",
                tok.c.code.in_(("active", "inactive", "rejected")),
            )
        )
    ).all()
    statuses: dict[str, set[str]] = {}
    limits = ConsentLimits()
    for patient, code, content in rows:
        statuses.setdefault(str(patient), set()).add(str(code))
        if code == "active" and content is not None:
            denied = sharing_denied(orjson.loads(content))
            if denied:
                limits.denied.setdefault(str(patient), set()).update(denied)
    limits.withdrawn.update(p for p, codes in statuses.items() if "active" not in codes)
    return limits


def sharing_denied(consent: dict[str, Any]) -> set[str]:
    """The kinds of recipient an active Consent's provisions deny (our RegisterConsent's nested rules)."""
    root = consent.get("provision")
    rules = root.get("provision", ()) if isinstance(root, dict) else ()
    denied: set[str] = set()
    for rule in rules if isinstance(rules, list) else ():
        if isinstance(rule, dict) and rule.get("type") == "deny":
            for actor in rule.get("actor", ()):
                identifier = actor.get("reference", {}).get("identifier", {}) if isinstance(actor, dict) else {}
                if identifier.get("system") == RECIPIENT_TYPE and isinstance(identifier.get("value"), str):
                    denied.add(identifier["value"])
    return denied


async def relay_once(
    engine: AsyncEngine, destinations: Sequence[Destination], *, batch: int = 500, matcher: Matcher | None = None
) -> RelayReport:
    """Relay up to ``batch`` unrelayed outbox events; an empty report when there are none (or another relay runs)."""
    report = RelayReport()
    active = [d for d in destinations if d.enabled]
    conn = await begin_write(engine)
    try:
        async with conn.begin():
            if not await _take_relay_lock(conn):
                return report
            events = (
                await conn.execute(
                    select(
                        outbox.c.id,
                        outbox.c.res_type,
                        outbox.c.res_id,
                        outbox.c.version_id,
                        outbox.c.method,
                        outbox.c.patient_id,
                    )
                    .where(outbox.c.relayed_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(batch)
                )
            ).all()
            if not events:
                return report
            now = now_us()
            limits = await consent_limits(conn, {e.patient_id for e in events if e.patient_id})
            matched = await matcher(events) if matcher is not None else {}
            rows: list[dict[str, object]] = []
            for event in events:
                for dest in active:
                    if dest.name in matched:
                        if event.id not in matched[dest.name]:
                            continue
                    elif not sharing.allows(dest.recipient, event.res_type, dest.resource_types):
                        continue
                    lane = lane_of(event.patient_id, event.res_type, event.res_id, dest.lanes)
                    withheld = limits.reason(event.patient_id, dest.recipient)
                    rows.append(
                        {
                            "destination": dest.name,
                            "lane": lane,
                            "outbox_id": event.id,
                            "res_type": event.res_type,
                            "res_id": event.res_id,
                            "version_id": event.version_id,
                            "method": event.method,
                            "patient_id": event.patient_id,
                            "status": "withheld" if withheld else "pending",
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                            "finished_at": now if withheld else None,
                            "last_error": withheld,
                        }
                    )
                    if withheld is None:
                        report.lanes.add((dest.name, lane))
            if rows:
                await conn.execute(_insert_ignoring_duplicates(conn), rows)  # type: ignore[call-overload]
            ids = [e.id for e in events]
            await conn.execute(update(outbox).where(id_in(outbox.c.id, ids, conn.dialect.name)).values(relayed_at=now))
            report.events, report.deliveries = len(events), len(rows)
    finally:
        await conn.close()
    return report


async def run_relay(
    engine: AsyncEngine,
    destinations: Sequence[Destination],
    nudge: Callable[[set[tuple[str, int]]], object],
    *,
    interval: float,
    stop: asyncio.Event,
    source: DestinationSource | None = None,
) -> None:
    """Relay until ``stop`` is set: at once while there is a backlog, every ``interval`` seconds when idle.

    With ``source``, the destinations (and the Subscriptions' matcher) are asked for each cycle, so destinations
    made through the API and Subscriptions are seen without a restart. A database error is logged and retried
    after ``interval`` (the outbox keeps everything meanwhile).
    """
    while not stop.is_set():
        try:
            current, matcher = (destinations, None) if source is None else await source()
            report = await relay_once(engine, current, matcher=matcher)
        except Exception as exc:  # the relay must outlive a database restart; it retries
            log.warning("relay failed (%s); retrying", type(exc).__name__)
            report = RelayReport()
        if report.lanes:
            await asyncio.to_thread(nudge, report.lanes)
        if report.events == 0:
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass
