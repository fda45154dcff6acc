"""The safety case reports of ruleset versions, each with its hash, and the background jobs of proposals made on
the pages (issue 15).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

import wnb.store.tables

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = wnb.store.tables.UTCDateTime
    op.create_table(
        "ruleset_report",
        sa.Column("version", AutoString(), nullable=False),
        sa.Column("sha256", AutoString(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("made_by", AutoString(), nullable=False),
        sa.Column("made_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("version", "sha256"),
    )
    op.create_table(
        "ruleset_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", AutoString(), nullable=False),
        sa.Column("stage", AutoString(), nullable=False),
        sa.Column("proposed_by", AutoString(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("candidate", AutoString(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("started_at", utc(), nullable=False),
        sa.Column("finished_at", utc(), nullable=True),
        sa.Column("version", AutoString(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    """Drops the stored reports (made again from the registry on request) and the proposals' job states."""
    op.drop_table("ruleset_job")
    op.drop_table("ruleset_report")
