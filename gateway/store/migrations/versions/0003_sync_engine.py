"""sync engine tables (outbox relay state, destinations, deliveries, dead letters)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 02:35:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # reserved and shipped empty; the sync engine tables came in 0006


def downgrade() -> None:
    pass
