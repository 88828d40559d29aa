"""Tables of the sync engine (same metadata as the FHIR store, one migration history: 0003).

- ``delivery``: one row per change per destination, made by the relay from the outbox. ``UNIQUE(destination,
  outbox_id)`` makes relaying an event twice harmless. ``lane`` (hash of the patient mod the lane count) keeps a
  patient's changes in one lane, delivered in ``id`` order. ``status``: pending → delivered, or → dead (refused,
  or out of attempts); ``next_attempt_at`` holds a retry back.
- ``delivery_attempt``: every attempt, with its outcome, HTTP status, error and duration (the delivery log).
- ``delivery_lane``: who is draining a lane and until when (a lease, so a killed worker's lane is taken over).
- ``sync_cursor``: how far a pull connector has read (e.g. the ``_lastUpdated`` of the last change seen).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, UniqueConstraint

from gateway.store.models import PrimaryKeyInt, metadata

delivery = Table(
    "delivery",
    metadata,
    Column("id", PrimaryKeyInt, primary_key=True, autoincrement=True),
    Column("destination", String(64), nullable=False),
    Column("lane", Integer, nullable=False),
    Column("outbox_id", BigInteger, nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("method", String(8), nullable=False),
    Column("patient_id", String(64), nullable=True),
    Column("status", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),
    UniqueConstraint("destination", "outbox_id", name="uq_delivery_destination_outbox"),
    Index("ix_delivery_lane_pending", "destination", "lane", "status", "id"),
    Index("ix_delivery_status", "status", "id"),
)

delivery_attempt = Table(
    "delivery_attempt",
    metadata,
    Column("id", PrimaryKeyInt, primary_key=True, autoincrement=True),
    Column("delivery_id", BigInteger, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),  # delivered | retry | refused | dead
    Column("status", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_delivery_attempt_delivery", "delivery_id", "id"),
)

delivery_lane = Table(
    "delivery_lane",
    metadata,
    Column("destination", String(64), primary_key=True),
    Column("lane", Integer, primary_key=True),
    Column("owner", String(128), nullable=True),
    Column("leased_until", BigInteger, nullable=False, default=0),
)

sync_cursor = Table(
    "sync_cursor",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("position", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
