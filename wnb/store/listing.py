"""Read flags, tasks, rejects and the outbox as the command line, API and scenarios show them (ARCHITECTURE §4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, func, select

from wnb.core.errors import NotFound
from wnb.store import repo
from wnb.store.tables import OutboxRow

_outbox = OutboxRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__


def _links_by_item(connection: Connection, kind: str, ids: list[int]) -> dict[int, list[str]]:
    """Each flag's or task's (kind) linked events as source/event_id, in the order linked; any number of ids."""
    found: dict[int, list[str]] = {}
    for part in repo.in_list_slices(ids):
        query = (
            select(repo.links.c.item_id, repo.events.c.event_id, repo.events.c.source)
            .join(repo.events, repo.events.c.id == repo.links.c.event_pk)
            .where(and_(repo.links.c.kind == kind, repo.links.c.item_id.in_(part)))
            .order_by(repo.links.c.id)
        )
        for row in connection.execute(query):
            found.setdefault(row.item_id, []).append(f"{row.source}/{row.event_id}")
    return found


def flags(connection: Connection, include_closed: bool = False, nhs_number: str | None = None) -> list[dict[str, Any]]:
    query = select(repo.flags).order_by(repo.flags.c.id)
    if not include_closed:
        query = query.where(repo.flags.c.status == "active")
    if nhs_number:
        query = query.where(repo.flags.c.nhs_number == nhs_number)
    rows = list(connection.execute(query))
    events = _links_by_item(connection, "flag", [row.id for row in rows])
    return [
        {
            "id": f"F{row.id}",
            "nhs_number": row.nhs_number,
            "code": row.code,
            "level": row.level,
            "status": row.status,
            "rule_ids": list(row.rule_ids),
            "raised_at": row.raised_at.isoformat(),
            "event_ids": events.get(row.id, []),
        }
        for row in rows
    ]


def tasks(
    connection: Connection,
    include_closed: bool = False,
    role: str | None = None,
    nhs_number: str | None = None,
    code: str | None = None,
    assignee: str | None = None,
) -> list[dict[str, Any]]:
    """Tasks soonest due first: open ones (or every one), of a role, a person, a code, or assigned to someone."""
    query = select(repo.tasks).order_by(repo.tasks.c.due_at, repo.tasks.c.id)
    if assignee:
        query = query.where(repo.tasks.c.assignee == assignee)
    if code:
        query = query.where(repo.tasks.c.code == code)
    if not include_closed:
        query = query.where(repo.tasks.c.status.in_(repo.OPEN_STATUSES))
    if role:
        query = query.where(repo.tasks.c.owner_role == role)
    if nhs_number:
        query = query.where(repo.tasks.c.nhs_number == nhs_number)
    return task_items(connection, list(connection.execute(query)))


def task_items(connection: Connection, rows: list[Any]) -> list[dict[str, Any]]:
    """Task rows as the command line, API and pages show them, with their linked events, in the order given."""
    events = _links_by_item(connection, "task", [row.id for row in rows])
    return [
        {
            "id": f"T{row.id}",
            "nhs_number": row.nhs_number,
            "service": row.service,
            "code": row.code,
            "owner_role": row.owner_role,
            "status": row.status,
            "due_at": row.due_at.isoformat().replace("+00:00", "Z"),
            "escalation_level": row.escalation_level,
            "assignee": row.assignee,  # the person it is assigned to; None while it is with its role
            "rule_ids": list(row.rule_ids),
            "event_ids": events.get(row.id, []),
        }
        for row in rows
    ]


def rejects(connection: Connection, include_handled: bool = False) -> list[dict[str, Any]]:
    query = select(repo.rejects).order_by(repo.rejects.c.id)
    if not include_handled:
        query = query.where(repo.rejects.c.handled_at.is_(None))
    return [
        {
            "id": f"R{row.id}",
            "kind": row.kind,  # reject (refused) or stale-outcome (stored as stale, disagrees with what is stored)
            "received_at": row.received_at.isoformat(),  # the first time; a row sent again is counted, not repeated
            "received_count": row.received_count,
            "last_received_at": row.last_received_at.isoformat(),
            "origin": row.origin,
            "line": row.line,
            "source": row.source,
            "event_id": row.event_id,
            "field": row.field,
            "reason": row.reason,
            "raw": row.raw,
            "raw_encoding": row.raw_encoding,  # text, or base64 of the bytes received (wnb.core.limits.storable_raw)
        }
        for row in connection.execute(query)
    ]


def outbox(connection: Connection, include_sent: bool = False) -> list[dict[str, Any]]:
    """Outbox rows, oldest first: those not delivered (pending, sending, uncertain, failed), or every one."""
    query = select(_outbox).order_by(_outbox.c.id)
    if not include_sent:
        query = query.where(_outbox.c.status != "sent")
    return [
        {
            "id": row.id,
            "status": row.status,
            "recipient": row.recipient,
            "notification": row.dedupe_key.removesuffix(f":{row.recipient}"),
            "subject": row.subject,
            "attempts": row.attempts,
            "last_error": row.last_error,
            "created_at": row.created_at.isoformat(),
            "next_attempt_at": row.next_attempt_at.isoformat(),
            "sent_at": row.sent_at.isoformat() if row.sent_at else None,
            "admin_task": f"T{row.admin_task_id}" if row.admin_task_id is not None else None,
        }
        for row in connection.execute(query)
    ]


def count_rejects(connection: Connection) -> int:
    """Rejected rows only: the stale outcomes the queue also lists are stored events, not rejects."""
    query = select(func.count()).select_from(repo.rejects).where(repo.rejects.c.kind == "reject")
    return int(connection.execute(query).scalar_one())


def find_open_task(connection: Connection, nhs_number: str, service: str, code: str) -> str:
    row = repo.open_task(connection, nhs_number, service, code)
    if row is None:
        raise NotFound(f"no open task {code} in {service} for {nhs_number}")
    return f"T{row.id}"


def find_active_flag(connection: Connection, nhs_number: str, code: str) -> str:
    row = repo.active_flag(connection, nhs_number, code)
    if row is None:
        raise NotFound(f"no active flag {code} for {nhs_number}")
    return f"F{row.id}"
