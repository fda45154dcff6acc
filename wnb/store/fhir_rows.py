"""Read flags, tasks (with the events that raised them) and audit records for the FHIR search routes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, and_, cast, func, select

from wnb.store import repo
from wnb.store.tables import AuditRow

_audit = AuditRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__


@dataclass(frozen=True)
class Search:
    """What to find: a person, statuses, codes (empty: any), and which page."""

    nhs_number: str | None = None
    statuses: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    count: int = 100
    offset: int = 0
    since: datetime | None = None  # audit records at or after
    until: datetime | None = None  # audit records at or before


def _filtered(query: Any, table: Any, search: Search) -> Any:
    if search.nhs_number:
        query = query.where(table.c.nhs_number == search.nhs_number)
    if search.statuses:
        query = query.where(table.c.status.in_(search.statuses))
    if search.codes:
        query = query.where(table.c.code.in_(search.codes))
    return query


def items(connection: Connection, kind: str, search: Search) -> tuple[int, list[dict[str, Any]]]:
    """(total matching, this page of flags or tasks, each with its `links`), oldest first."""
    table = repo.flags if kind == "flag" else repo.tasks
    total = connection.execute(_filtered(select(func.count()).select_from(table), table, search)).scalar_one()
    query = _filtered(select(table), table, search).order_by(table.c.id).limit(search.count).offset(search.offset)
    rows = [dict(row._mapping) for row in connection.execute(query)]
    by_item = links(connection, kind, [row["id"] for row in rows])
    for row in rows:
        row["links"] = by_item.get(row["id"], [])
    return int(total), rows


def links(connection: Connection, kind: str, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Each item's links: the appointment, the event (source, event id, row id) and the evaluation's audit seq."""
    found: dict[int, list[dict[str, Any]]] = {}
    if not ids:
        return found
    query = (
        select(
            repo.links.c.item_id,
            repo.links.c.source,
            repo.links.c.appointment_id,
            repo.links.c.event_pk,
            repo.links.c.audit_seq,
            repo.links.c.active,
            repo.links.c.linked_at,
            repo.events.c.event_id,
        )
        .join(repo.events, repo.events.c.id == repo.links.c.event_pk)
        .where(and_(repo.links.c.kind == kind, repo.links.c.item_id.in_(ids)))
        .order_by(repo.links.c.id)
    )
    for row in connection.execute(query):
        found.setdefault(row.item_id, []).append(dict(row._mapping))
    return found


def audit_records(connection: Connection, search: Search) -> tuple[int, list[dict[str, Any]]]:
    """(total matching, this page of audit records), in chain order."""
    conditions = []
    if search.since is not None:
        conditions.append(_audit.c.at >= search.since)
    if search.until is not None:
        conditions.append(_audit.c.at <= search.until)
    if search.nhs_number:
        conditions.append(cast(_audit.c.subject, String).like(f'%"{search.nhs_number}"%'))
    if search.codes:
        conditions.append(_audit.c.action.in_(search.codes))
    where = and_(*conditions) if conditions else None
    count_query = select(func.count()).select_from(_audit)
    page_query = select(_audit).order_by(_audit.c.seq).limit(search.count).offset(search.offset)
    if where is not None:
        count_query, page_query = count_query.where(where), page_query.where(where)
    total = connection.execute(count_query).scalar_one()
    return int(total), [dict(row._mapping) for row in connection.execute(page_query)]
