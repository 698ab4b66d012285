"""live broadcasts (an official speaking from the browser, a relayed station)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "live_broadcasts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("started_by", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=64), nullable=True),
        sa.Column("end_reason", sa.String(length=300), nullable=True),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("recording_sha256", sa.String(length=64), nullable=True),
        sa.Column("recording_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_live_broadcasts_started_at", "live_broadcasts", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_live_broadcasts_started_at", table_name="live_broadcasts")
    op.drop_table("live_broadcasts")
