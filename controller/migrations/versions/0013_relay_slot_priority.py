"""relay_slots.priority: a relay slot has a TT39 level like a schedule

Ordinary slots are held by their nodes' quiet hours, priority ones are not. Slots made
before this aired through quiet hours, so they become ``priority`` and air as they did.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("relay_slots") as batch:
        batch.add_column(sa.Column("priority", sa.String(length=16), nullable=True))
    op.execute("UPDATE relay_slots SET priority = 'priority'")
    with op.batch_alter_table("relay_slots") as batch:
        batch.alter_column("priority", existing_type=sa.String(length=16), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("relay_slots") as batch:
        batch.drop_column("priority")
