"""uploads.commune: an upload (a recording, a live session's sound) is its commune's

Before, any account could make an announcement of any upload it knew the sha256 of,
another commune's recording included. A one-commune database stamps its uploads with that
commune; otherwise they stay the province's (NULL: every commune may use them, as before).
The sha256 is unique per commune now (one file in the store, a row per commune).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 14:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
"""Names for SQLite's unnamed constraints, so batch mode can drop the old one."""


def _old_unique() -> str:
    return "uploads_sha256_key" if op.get_bind().dialect.name == "postgresql" else (
        "uq_uploads_sha256")


def upgrade() -> None:
    with op.batch_alter_table("uploads", naming_convention=NAMES) as batch:
        batch.add_column(sa.Column("commune", sa.String(length=64), nullable=True))
        batch.drop_constraint(_old_unique(), type_="unique")
        batch.create_unique_constraint("uq_uploads_sha256_commune", ["sha256", "commune"])
    conn = op.get_bind()
    communes = [code for (code,) in conn.execute(sa.text("SELECT code FROM communes"))]
    if len(communes) == 1:
        conn.execute(sa.text("UPDATE uploads SET commune = :c"), {"c": communes[0]})


def downgrade() -> None:
    conn = op.get_bind()
    # one row per file again: keep each sha256's first row
    conn.execute(sa.text("DELETE FROM uploads WHERE id NOT IN "
                         "(SELECT MIN(id) FROM uploads GROUP BY sha256)"))
    with op.batch_alter_table("uploads", naming_convention=NAMES) as batch:
        batch.drop_constraint("uq_uploads_sha256_commune", type_="unique")
        batch.create_unique_constraint(_old_unique(), ["sha256"])
        batch.drop_column("commune")
