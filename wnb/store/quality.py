"""The data-quality queue's writes and reads beyond the listing: marking a rejected row handled (audited), and
who handled which."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from wnb.core.errors import InvalidAction, NotFound
from wnb.store import repo
from wnb.store.audit import AuditLog


def mark_handled(connection: Connection, reject_id: int, actor: str, note: str, at: datetime) -> None:
    """In the caller's writing transaction: rejected row `reject_id` handled by `actor`, with its audit record."""
    rejects = repo.rejects
    row = connection.execute(select(rejects).where(rejects.c.id == reject_id)).first()
    if row is None:
        raise NotFound(f"no rejected row R{reject_id}")
    if row.handled_at is not None:
        raise InvalidAction(f"rejected row R{reject_id} was handled already by {row.handled_by}")
    connection.execute(update(rejects).where(rejects.c.id == reject_id).values(handled_at=at, handled_by=actor))
    log = AuditLog(connection)
    log.append(at, actor, "reject_handled", [f"R{reject_id}"], {"note": note or None})
    log.finish()


def handled(connection: Connection) -> dict[int, tuple[str, datetime]]:
    """Who handled each handled rejected row, and when, by row id."""
    rejects = repo.rejects
    query = select(rejects.c.id, rejects.c.handled_by, rejects.c.handled_at).where(rejects.c.handled_at.is_not(None))
    return {row.id: (row.handled_by, row.handled_at) for row in connection.execute(query)}
