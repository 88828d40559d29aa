"""HL7 v2 inbox (message log, feed counts)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 02:35:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hl7_message",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("sending_application", sa.String(length=64), nullable=False),
        sa.Column("sending_facility", sa.String(length=64), nullable=False),
        sa.Column("control_id", sa.String(length=64), nullable=False),
        sa.Column("message_type", sa.String(length=16), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=True),
        sa.Column("peer", sa.String(length=64), nullable=True),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("ack_code", sa.String(length=2), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("processed_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hl7_message")),
        sa.UniqueConstraint("sending_facility", "control_id", name="uq_hl7_message_sender_control"),
    )
    with op.batch_alter_table("hl7_message", schema=None) as batch_op:
        batch_op.create_index("ix_hl7_message_status", ["status", "id"], unique=False)
        batch_op.create_index("ix_hl7_message_patient", ["patient_key", "id"], unique=False)

    op.create_table(
        "hl7_feed_count",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("sending_facility", sa.String(length=64), nullable=False),
        sa.Column("message_type", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "sending_facility", "message_type", "outcome", name=op.f("pk_hl7_feed_count")
        ),
    )


def downgrade() -> None:
    op.drop_table("hl7_feed_count")
    with op.batch_alter_table("hl7_message", schema=None) as batch_op:
        batch_op.drop_index("ix_hl7_message_patient")
        batch_op.drop_index("ix_hl7_message_status")
    op.drop_table("hl7_message")
