"""API keys are bound to what they may write (issue 11): event sources and safeguarding context.

Keys made before this revision get `sources` NULL and `writes_context` false: they are refused, with a
message naming `wnb keys bind`, until an administrator binds them.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sources", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("writes_context", sa.Boolean(), server_default=sa.text("false"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_column("writes_context")
        batch_op.drop_column("sources")
