"""string search index usable for prefix matching on PostgreSQL (text_pattern_ops)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite compares strings bytewise already; its range query uses the existing index
    op.drop_index("ix_sp_string_lookup", table_name="sp_string")
    op.create_index(
        "ix_sp_string_lookup",
        "sp_string",
        ["res_type", "param", "norm"],
        postgresql_ops={"norm": "text_pattern_ops"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_sp_string_lookup", table_name="sp_string")
    op.create_index("ix_sp_string_lookup", "sp_string", ["res_type", "param", "norm"])
