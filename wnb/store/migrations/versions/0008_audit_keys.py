"""Audit records and the chain's head carry the id of the audit key that authenticates them, and its HMAC.

Records written before stay as they were (no key id, no MAC): the first keyed write appends an
`audit_rekeyed` record, and `wnb audit verify` checks the records before it by their hashes alone.

Revision ID: 0008
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("audit", "audit_head"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("key_id", AutoString(), nullable=True))
            batch_op.add_column(sa.Column("mac", AutoString(), nullable=True))


def downgrade() -> None:
    """Drops the key ids and MACs. The records written with a key then no longer verify (their hashes cover
    their key id): downgrade only a database restored from before the upgrade, or with no keyed record."""
    for table in ("audit", "audit_head"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("mac")
            batch_op.drop_column("key_id")
