"""Tables of the HL7 v2 inbox (same metadata as the FHIR store, so one migration history).

``hl7_message`` keeps each accepted cohort message durably before its ACK: the raw bytes (purged after the
retention period), the envelope, processing status and errors. ``UNIQUE(sending_facility, control_id)`` makes a
resent message (same MSH-4 + MSH-10) a duplicate that is ACKed but stored once. ``hl7_feed_count`` counts what was
received per day, sender and event, including the messages about people outside the cohort, which are not kept.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text, UniqueConstraint

from gateway.store.models import PrimaryKeyInt, metadata

hl7_message = Table(
    "hl7_message",
    metadata,
    Column("id", PrimaryKeyInt, primary_key=True, autoincrement=True),
    Column("sending_application", String(64), nullable=False),
    Column("sending_facility", String(64), nullable=False),
    Column("control_id", String(64), nullable=False),
    Column("message_type", String(16), nullable=False),  # e.g. ADT^A01
    Column("patient_key", String(64), nullable=True),  # NHS number or local id: per-patient ordering
    Column("peer", String(64), nullable=True),
    Column("received_at", BigInteger, nullable=False),
    Column("raw", LargeBinary, nullable=True),  # None once purged
    Column("summary", Text, nullable=True),  # parsed summary (JSON): event, trigger time, visit, ...
    Column("ack_code", String(2), nullable=True),  # AA | AE | AR as sent
    Column("status", String(16), nullable=False),  # received | processed | failed | purged
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    Column("processed_at", BigInteger, nullable=True),
    UniqueConstraint("sending_facility", "control_id", name="uq_hl7_message_sender_control"),
    Index("ix_hl7_message_status", "status", "id"),
    Index("ix_hl7_message_patient", "patient_key", "id"),
)

hl7_feed_count = Table(
    "hl7_feed_count",
    metadata,
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("sending_facility", String(64), primary_key=True),
    Column("message_type", String(16), primary_key=True),
    Column("outcome", String(16), primary_key=True),  # stored | duplicate | not_in_cohort | rejected
    Column("count", BigInteger, nullable=False, default=0),
)
