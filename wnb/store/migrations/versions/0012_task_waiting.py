"""Waiting on someone and the acknowledgement timeout (issue 16): when a task was acknowledged, and until when
it waits for a reply, with why.

A task acknowledged before this revision takes its acknowledgement time from its history (the last
`acknowledged` or `claimed` change); no task is waiting.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from wnb.store.tables import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acknowledged_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("waiting_until", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("waiting_reason", sa.Text(), nullable=True))
    op.execute(
        "UPDATE task SET acknowledged_at = (SELECT max(h.at) FROM task_history h WHERE h.task_id = task.id "
        "AND h.action IN ('acknowledged', 'claimed')) WHERE status = 'accepted'"
    )


def downgrade() -> None:
    """Drops the columns: no task waits, and the timeout has nothing to count from."""
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_column("waiting_reason")
        batch_op.drop_column("waiting_until")
        batch_op.drop_column("acknowledged_at")
