"""The admin task an undelivered notification opened, so each `uncertain` or `failed` outbox row has exactly one.

Rows already `uncertain` or `failed` keep no task here: the next delivery round (or `wnb serve` starting)
opens one for each of them, like for any row that has none.

Revision ID: 0009
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("admin_task_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("admin_task_id")
