"""The worklist's index (issue 16): a role's open tasks by due time, which wnb.store.worklist filters, counts,
sorts and pages in the database.

Revision ID: 0015_task_worklist_index
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "0015_task_worklist_index"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_task_role", "task", ["owner_role", "status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_task_role", table_name="task")
