"""The data-quality queue holds stale outcomes too: a `kind` column (`reject` or `stale-outcome`).

A stale event whose attendance differs from the stored one is listed for a person to look at (DOMAIN.md §6);
it is not a reject (the event stays stored). Every row queued before this revision is a reject.

Revision ID: 0007
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reject", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", AutoString(), nullable=False, server_default="reject"))


def downgrade() -> None:
    """Drops the kind; stale-outcome items are deleted first, so what stays is the rejects it held before."""
    op.execute("DELETE FROM reject WHERE kind = 'stale-outcome'")
    with op.batch_alter_table("reject", schema=None) as batch_op:
        batch_op.drop_column("kind")
