"""People own the work (issue 16): the person a task is assigned to, kept in its history too, and an account's
e-mail address, where an assignment to them is announced.

Every task already stored stays with its role (assignee NULL); every account has no address until given one.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee", AutoString(), nullable=True))
        batch_op.create_index("ix_task_assignee", ["assignee"], unique=False)
    with op.batch_alter_table("task_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee", AutoString(), nullable=True))
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", AutoString(), nullable=True))


def downgrade() -> None:
    """Drops the columns: every task goes back to its role alone, and the addresses are gone."""
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("email")
    with op.batch_alter_table("task_history", schema=None) as batch_op:
        batch_op.drop_column("assignee")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index("ix_task_assignee")
        batch_op.drop_column("assignee")
