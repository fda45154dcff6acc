"""The ruleset registry (issue 15): every version proposed, decided, activated and retired, with its evidence.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

import wnb.store.tables

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = wnb.store.tables.UTCDateTime
    op.create_table(
        "ruleset_version",
        sa.Column("version", AutoString(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.Column("proposed_by", AutoString(), nullable=False),
        sa.Column("proposed_at", utc(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("approved_by", AutoString(), nullable=True),
        sa.Column("approved_at", utc(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("rejected_by", AutoString(), nullable=True),
        sa.Column("rejected_at", utc(), nullable=True),
        sa.Column("activated_by", AutoString(), nullable=True),
        sa.Column("activated_at", utc(), nullable=True),
        sa.Column("active_from", utc(), nullable=True),
        sa.Column("retired_at", utc(), nullable=True),
        sa.Column("compared_against", AutoString(), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("rollback", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("ruleset_version", schema=None) as batch_op:
        batch_op.create_index("ix_ruleset_version_status", ["status"], unique=False)


def downgrade() -> None:
    """Drops the registry: the ruleset in WNB_RULES_DIR is registered again, as not yet approved, on next start."""
    with op.batch_alter_table("ruleset_version", schema=None) as batch_op:
        batch_op.drop_index("ix_ruleset_version_status")
    op.drop_table("ruleset_version")
