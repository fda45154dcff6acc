"""The recipient directory (issue 18 part 1): organisations by ODS code, with a name, a secure e-mail address
and a FHIR endpoint, so a structured contact that names only the code can be completed.

A new table: nothing already stored changes.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

import wnb.store.tables

revision = "0013"
down_revision = "0012"
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
