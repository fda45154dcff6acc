"""The recipient directory (issue 18 part 1): organisations by ODS code, with a name, a secure e-mail address
and a FHIR endpoint, so a structured contact that names only the code can be completed.

A new table: nothing already stored changes.

Revision ID: 0011_recipient_directory
Revises: 0010_task_assignee
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

import wnb.store.tables

# Named, not numbered alone: other branches (h/registry) add migrations after 0009/0010 too; at merge the
# down_revision chain must be made one line again.
revision = "0011_recipient_directory"
down_revision = "0010_task_assignee"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recipient",
        sa.Column("ods_code", AutoString(), nullable=False),
        sa.Column("name", AutoString(), nullable=False),
        sa.Column("email", AutoString(), nullable=True),
        sa.Column("endpoint", AutoString(), nullable=True),
        sa.Column("updated_at", wnb.store.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ods_code"),
    )


def downgrade() -> None:
    """Drops the directory: contacts naming only an ODS code show the code alone again."""
    op.drop_table("recipient")
