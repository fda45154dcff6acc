"""Who runs a proposal's background backtest (issue 15): the process (`host:pid`) and its latest heartbeat, so a job
whose process has gone (a restart, a crash) is marked interrupted instead of showing "running" for ever.

A job queued or running before this revision has no owner: it is taken as interrupted once read.

Revision ID: 0016_ruleset_job_owner
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from wnb.store.tables import UTCDateTime

revision = "0016_ruleset_job_owner"
down_revision = "0015_task_worklist_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ruleset_job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", AutoString(), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    """Drops the columns: a job's process can no longer be told gone."""
    with op.batch_alter_table("ruleset_job", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("owner")
