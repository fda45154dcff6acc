"""How a reject's raw input is kept: `text` as received, or `base64` of the bytes received.

A row holding U+0000 (which PostgreSQL refuses in text) or bytes that are not UTF-8 is kept byte for byte
as base64, so the data-quality queue shows what was really sent. Rows stored before are text.

Revision ID: 0006
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reject", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw_encoding", AutoString(), nullable=False, server_default="text"))


def downgrade() -> None:
    """Drops the encoding; a base64 raw stays base64 text."""
    with op.batch_alter_table("reject", schema=None) as batch_op:
        batch_op.drop_column("raw_encoding")
