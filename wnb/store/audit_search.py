"""The audit log page's query: records filtered by actor, action, subject and time, newest first, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, cast, func, select

from wnb.store.tables import AuditRow

_audit = AuditRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__


@dataclass(frozen=True)
class AuditFilter:
    """What the page asks for: each part empty (or None, or 0) when not asked; `before` a seq, for older pages."""

    actor: str = ""
    action: str = ""
    subject: str = ""
    since: datetime | None = None
    until: datetime | None = None
    before: int = 0


@dataclass(frozen=True)
class AuditPage:
    records: list[dict[str, Any]]  # newest first
    more: bool  # an older page follows
    actions: list[str]  # every action the log holds, for the page's choice
    total: int  # records in the whole log


def audit_page(connection: Connection, wanted: AuditFilter, size: int) -> AuditPage:
    """At most `size` records matching `wanted`, newest first, and what the page shows beside them."""
    table = _audit
    query = select(table).order_by(table.c.seq.desc()).limit(size + 1)  # one more: is there an older page?
    if wanted.actor:
        query = query.where(table.c.actor.contains(wanted.actor.strip(), autoescape=True))
    if wanted.action:
        query = query.where(table.c.action == wanted.action)
    if wanted.subject:
        query = query.where(cast(table.c.subject, String).contains(f'"{wanted.subject.strip()}"', autoescape=True))
    if wanted.before > 0:
        query = query.where(table.c.seq < wanted.before)
    if wanted.since is not None:
        query = query.where(table.c.at >= wanted.since)
    if wanted.until is not None:
        query = query.where(table.c.at < wanted.until)
    records = [dict(row._mapping) for row in connection.execute(query)]
    actions = [row[0] for row in connection.execute(select(table.c.action).distinct().order_by(table.c.action))]
    total = connection.execute(select(func.count()).select_from(table)).scalar_one()
    return AuditPage(records[:size], len(records) > size, actions, total)
