"""Information that reaches the people outside (issue 18 part 2): the messages sent from information-sharing
tasks, a task status `awaiting-acknowledgement` (open, so the one-open-task index is rebuilt to include it),
and the recipient a partner's API key acknowledges for.

Nothing stored changes: no task is awaiting acknowledgement yet, no message was sent, no key names a recipient.

Revision ID: 0017_communications
Revises: 0016_ruleset_job_owner
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from wnb.store.tables import UTCDateTime

revision = "0017_communications"
down_revision = "0016_ruleset_job_owner"
branch_labels = None
depends_on = None

_BEFORE = "status IN ('requested', 'accepted')"
_AFTER = "status IN ('requested', 'accepted', 'awaiting-acknowledgement')"  # wnb.core.kinds.OPEN_TASK_CONDITION


def _open_task_index(condition: str) -> None:
    op.drop_index("uq_task_open", table_name="task")
    op.create_index(
        "uq_task_open",
        "task",
        ["nhs_number", "service", "code"],
        unique=True,
        sqlite_where=sa.text(condition),
        postgresql_where=sa.text(condition),
    )


def upgrade() -> None:
    _open_task_index(_AFTER)
    op.create_table(
        "communication",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", AutoString(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("nhs_number", AutoString(), nullable=False),
        sa.Column("recipient_role", AutoString(), nullable=False),
        sa.Column("recipient_name", AutoString(), nullable=False),
        sa.Column("recipient_organisation", AutoString(), nullable=True),
        sa.Column("recipient_ods", AutoString(), nullable=True),
        sa.Column("channel", AutoString(), nullable=False),
        sa.Column("address", AutoString(), nullable=True),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", AutoString(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("sent_by", AutoString(), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("ack_due_at", UTCDateTime(), nullable=True),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("acknowledged_by", AutoString(), nullable=True),
        sa.Column("acknowledged_via", AutoString(), nullable=True),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference", name="uq_communication_reference"),
    )
    op.create_index("ix_communication_person", "communication", ["nhs_number"])
    op.create_index("ix_communication_task", "communication", ["task_id"])
    op.create_index("ix_communication_due", "communication", ["status", "ack_due_at"])
    op.create_index("ix_communication_outbox", "communication", ["outbox_id"])
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recipient", AutoString(), nullable=True))


def downgrade() -> None:
    """Drops the messages and the keys' recipients; a task awaiting acknowledgement goes back to `accepted` (its
    message is gone with the table), so the older index holds it."""
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_column("recipient")
    op.drop_table("communication")
    op.execute("UPDATE task SET status = 'accepted' WHERE status = 'awaiting-acknowledgement'")
    _open_task_index(_BEFORE)
