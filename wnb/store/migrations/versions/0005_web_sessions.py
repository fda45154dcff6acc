"""Sessions of the pages kept on the server, and failed sign-ins counted per (account, address).

Revision ID: 0005
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

import wnb.store.tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", AutoString(), nullable=False),
        sa.Column("user_name", AutoString(), nullable=False),
        sa.Column("created_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("expires_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.create_index("ix_web_session_user_name", ["user_name"], unique=False)
    op.create_table(
        "sign_in_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_name", AutoString(), nullable=False),
        sa.Column("address", AutoString(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("last_failed_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("refused_until", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_name", "address", name="uq_sign_in_failure_user_address"),
    )
    with op.batch_alter_table("sign_in_failure", schema=None) as batch_op:
        batch_op.create_index("ix_sign_in_failure_last_failed_at", ["last_failed_at"], unique=False)


def downgrade() -> None:
    """Drops both tables: everyone signs in again, and failure counts start afresh."""
    with op.batch_alter_table("sign_in_failure", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_failure_last_failed_at")
    op.drop_table("sign_in_failure")
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.drop_index("ix_web_session_user_name")
    op.drop_table("web_session")
