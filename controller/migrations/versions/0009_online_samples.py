"""online samples (how many nodes were online, every few minutes: the dashboard's chart);
cameras' names per node (alerts carry only a camera's id)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "online_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("online", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_online_samples_at", "online_samples", ["at"])
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("camera_names", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("camera_names")
    op.drop_index("ix_online_samples_at", table_name="online_samples")
    op.drop_table("online_samples")
