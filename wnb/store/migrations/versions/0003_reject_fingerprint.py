"""A reject is queued once however often its row is sent: a fingerprint (unique), a count and a last-received time.

Existing rejects are fingerprinted and copies of one row merged into the oldest (its id is the one people
saw first): it counts every copy, takes the latest receipt, reason and field, and stays open unless every
copy was handled (then it keeps the latest handling). The other copies are deleted; their audit records
(`event_rejected` naming their R ids) stay as they were, so the chain still verifies.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

import wnb.store.tables
from wnb.store.rejects import fingerprint

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_CHUNK = 500


def _merged(copies: list[Any]) -> dict[str, Any]:
    """The values of the oldest copy once every copy of its row is folded into it."""
    latest = max(copies, key=lambda copy: (copy.received_at, copy.id))
    values = {
        "keep_id": copies[0].id,
        "new_fingerprint": fingerprint(copies[0].origin, copies[0].source, copies[0].raw),
        "new_received_count": len(copies),
        "new_last_received_at": latest.received_at,
        "new_field": latest.field,
        "new_reason": latest.reason,
        "new_handled_at": None,
        "new_handled_by": None,
    }
    if all(copy.handled_at is not None for copy in copies):  # one copy still open keeps the row open
        handled = max(copies, key=lambda copy: (copy.handled_at, copy.id))
        values.update(new_handled_at=handled.handled_at, new_handled_by=handled.handled_by)
    return values


def upgrade() -> None:
    with op.batch_alter_table("reject", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fingerprint", AutoString(), nullable=True))
        batch_op.add_column(sa.Column("last_received_at", wnb.store.tables.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("received_count", sa.Integer(), nullable=True))

    reject = sa.table(
        "reject",
        *(sa.column(name) for name in ("id", "origin", "source", "raw", "field", "reason", "handled_by")),
        *(sa.column(name, wnb.store.tables.UTCDateTime()) for name in ("received_at", "handled_at")),
        sa.column("fingerprint"),
        sa.column("last_received_at", wnb.store.tables.UTCDateTime()),
        sa.column("received_count", sa.Integer()),
    )
    connection = op.get_bind()
    groups: dict[str, list[Any]] = {}
    for row in connection.execute(sa.select(reject).order_by(reject.c.id)):
        groups.setdefault(fingerprint(row.origin, row.source, row.raw), []).append(row)
    merged = [_merged(copies) for copies in groups.values()]
    changed = ("fingerprint", "received_count", "last_received_at", "field", "reason", "handled_at", "handled_by")
    update = (
        sa.update(reject)
        .where(reject.c.id == sa.bindparam("keep_id"))
        .values({name: sa.bindparam(f"new_{name}", type_=reject.c[name].type) for name in changed})
    )
    for start in range(0, len(merged), _CHUNK):
        connection.execute(update, merged[start : start + _CHUNK])
    copies = [copy.id for group in groups.values() for copy in group[1:]]
    for start in range(0, len(copies), _CHUNK):
        connection.execute(sa.delete(reject).where(reject.c.id.in_(copies[start : start + _CHUNK])))

    with op.batch_alter_table("reject", schema=None) as batch_op:
        batch_op.alter_column("fingerprint", existing_type=AutoString(), nullable=False)
        batch_op.alter_column("last_received_at", existing_type=wnb.store.tables.UTCDateTime(), nullable=False)
        batch_op.alter_column("received_count", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint("uq_reject_fingerprint", ["fingerprint"])


def downgrade() -> None:
    """Drops the fingerprint, count and last time; rejects merged by the upgrade stay merged."""
    with op.batch_alter_table("reject", schema=None) as batch_op:
        batch_op.drop_constraint("uq_reject_fingerprint", type_="unique")
        batch_op.drop_column("received_count")
        batch_op.drop_column("last_received_at")
        batch_op.drop_column("fingerprint")
