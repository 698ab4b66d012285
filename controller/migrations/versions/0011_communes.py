"""communes as data, and the commune of every commune-owned record and account

A database from before (one commune) keeps every row: its communes are read from the rows
that already named one (nodes, zones, lexicon, alerts, the log, holidays), and when there
is exactly one, the announcements, schedules, groups, live sessions and relay slots made
there are stamped with it. Accounts stay province accounts (they saw everything and still
do); commune accounts are made afterwards.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 08:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAMPED = ("announcements", "schedules", "node_groups", "live_broadcasts", "relay_slots")
"""Tables that gain a commune and get the only commune of a one-commune database."""
INDEXED = STAMPED
NAMED_BEFORE = ("nodes", "zones", "lexicon_entries", "alerts", "playback_log",
                "calendar_exceptions")
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


def upgrade() -> None:
    communes = op.create_table(
        "communes",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    for table in (*STAMPED, "users", "stream_sources"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("commune", sa.String(length=64), nullable=True))
            if table in INDEXED:
                batch.create_index(f"ix_{table}_commune", ["commune"])
    conn = op.get_bind()
    known: set[str] = set()
    for table in NAMED_BEFORE:
        known.update(code for (code,) in conn.execute(
            sa.text(f"SELECT DISTINCT commune FROM {table} WHERE commune IS NOT NULL")))
    if known:
        op.bulk_insert(communes, [{"code": c, "name": c, "timezone": DEFAULT_TIMEZONE}
                                  for c in sorted(known)])
    if len(known) == 1:
        (only,) = known
        for table in STAMPED:
            conn.execute(sa.text(f"UPDATE {table} SET commune = :c"), {"c": only})


def downgrade() -> None:
    for table in (*STAMPED, "users", "stream_sources"):
        with op.batch_alter_table(table) as batch:
            if table in INDEXED:
                batch.drop_index(f"ix_{table}_commune")
            batch.drop_column("commune")
    op.drop_table("communes")
