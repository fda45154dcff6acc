"""The messages sent from information-sharing tasks (issue 18): the only code that touches the `communication`
table. Each write runs in the caller's writing transaction; the service audits it beside the change of its task.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from wnb.core.sharing import OUTSTANDING, AcknowledgedVia, CommunicationStatus, reference
from wnb.store.tables import CommunicationRow, OutboxRow

_messages = CommunicationRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__
_outbox = OutboxRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Communication:
    """One message as stored."""

    id: int
    reference: str
    task_id: int
    nhs_number: str
    recipient_role: str
    recipient_name: str
    recipient_organisation: str | None
    recipient_ods: str | None
    channel: str
    address: str | None
    content: dict[str, Any]
    status: str
    created_at: datetime
    created_by: str
    sent_at: datetime | None
    sent_by: str | None
    outbox_id: int | None
    ack_due_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledged_via: str | None
    status_reason: str | None

    @property
    def outstanding(self) -> bool:
        """Still out: a letter not yet marked sent, or a message sent and not yet acknowledged."""
        return self.status in OUTSTANDING


_FIELDS = [item.name for item in fields(Communication)]


def _of(row: Any) -> Communication:
    return Communication(**{name: getattr(row, name) for name in _FIELDS})


@dataclass(frozen=True)
class NewCommunication:
    """What a message is when it is made: everything but its id, reference and later steps."""

    task_id: int
    nhs_number: str
    recipient_role: str
    recipient_name: str
    recipient_organisation: str | None
    recipient_ods: str | None
    channel: str
    address: str | None
    status: CommunicationStatus


def next_reference(connection: Connection, task_id: int) -> str:
    """The reference the task's next message gets (its n-th: `WNB-T12-n`); the unique index refuses a twin."""
    count = connection.execute(
        select(func.count()).select_from(_messages).where(_messages.c.task_id == task_id)
    ).scalar_one()
    return reference(task_id, int(count) + 1)


def create(
    connection: Connection,
    new: NewCommunication,
    ref: str,
    content: dict[str, Any],
    at: datetime,
    by: str,
    sent: bool = False,
) -> Communication:
    """Store a message with its reference and content; `sent`: it left now (by `by`), a letter is marked later."""
    values: dict[str, Any] = {
        **{item.name: getattr(new, item.name) for item in fields(NewCommunication)},
        "status": new.status.value,
        "reference": ref,
        "content": content,
        "created_at": at,
        "created_by": by,
        "sent_at": at if sent else None,
        "sent_by": by if sent else None,
    }
    pk = connection.execute(insert(_messages).values(values).returning(_messages.c.id)).scalar_one()
    made = by_id(connection, int(pk))
    assert made is not None
    return made


def by_id(connection: Connection, communication_id: int) -> Communication | None:
    row = connection.execute(select(_messages).where(_messages.c.id == communication_id)).first()
    return None if row is None else _of(row)


def by_reference(connection: Connection, ref: str) -> Communication | None:
    row = connection.execute(select(_messages).where(_messages.c.reference == ref)).first()
    return None if row is None else _of(row)


def by_outbox(connection: Connection, outbox_id: int) -> Communication | None:
    """The message an outbox row carries, if it carries one."""
    row = connection.execute(select(_messages).where(_messages.c.outbox_id == outbox_id)).first()
    return None if row is None else _of(row)


def of_person(connection: Connection, nhs_number: str) -> list[Communication]:
    """A person's messages, oldest first."""
    query = (
        select(_messages).where(_messages.c.nhs_number == nhs_number).order_by(_messages.c.created_at, _messages.c.id)
    )
    return [_of(row) for row in connection.execute(query)]


def of_task(connection: Connection, task_id: int) -> list[Communication]:
    """A task's messages, oldest first."""
    query = select(_messages).where(_messages.c.task_id == task_id).order_by(_messages.c.id)
    return [_of(row) for row in connection.execute(query)]


def _set(connection: Connection, communication_id: int, **values: Any) -> Communication:
    connection.execute(update(_messages).where(_messages.c.id == communication_id).values(**values))
    changed = by_id(connection, communication_id)
    assert changed is not None
    return changed


def set_outbox(connection: Connection, communication_id: int, outbox_id: int | None) -> Communication:
    """Name the outbox row that carries the message."""
    return _set(connection, communication_id, outbox_id=outbox_id)


def set_status(
    connection: Connection, communication_id: int, status: CommunicationStatus, reason: str | None
) -> Communication:
    """A message's new status, and why (a delivery failure's reason, "not acknowledged in time")."""
    return _set(connection, communication_id, status=status.value, status_reason=reason)


def mark_sent(
    connection: Connection, communication_id: int, at: datetime, by: str, ack_due_at: datetime | None = None
) -> Communication:
    """Sent at `at` by `by` (a letter posted, a message handed over), due to be acknowledged by `ack_due_at`."""
    return _set(
        connection,
        communication_id,
        status=CommunicationStatus.SENT.value,
        sent_at=at,
        sent_by=by,
        ack_due_at=ack_due_at,
    )


def set_content(connection: Connection, communication_id: int, content: dict[str, Any]) -> Communication:
    """The message's stored content replaced (its acknowledgement link added once its id is known)."""
    return _set(connection, communication_id, content=content)


def set_ack_due(connection: Connection, communication_id: int, ack_due_at: datetime | None) -> Communication:
    """When the message must be acknowledged by (issue 18 part 3 sets it from a ruleset parameter)."""
    return _set(connection, communication_id, ack_due_at=ack_due_at)


def mark_acknowledged(
    connection: Connection, communication_id: int, at: datetime, name: str, via: AcknowledgedVia
) -> Communication:
    """Acknowledged at `at` by the person named (`name`, as they gave it), by link or by API."""
    return _set(
        connection,
        communication_id,
        status=CommunicationStatus.ACKNOWLEDGED.value,
        acknowledged_at=at,
        acknowledged_by=name,
        acknowledged_via=via.value,
    )


def due_unacknowledged(connection: Connection, now: datetime) -> list[Communication]:
    """Messages sent and not acknowledged whose acknowledgement was due by `now`, soonest first (part 3's sweep)."""
    query = (
        select(_messages)
        .where(_messages.c.status == CommunicationStatus.SENT.value, _messages.c.ack_due_at <= now)
        .order_by(_messages.c.ack_due_at, _messages.c.id)
    )
    return [_of(row) for row in connection.execute(query)]


@dataclass(frozen=True)
class Undelivered:
    """A message handed to the outbox whose row will never be sent: `failed` or `uncertain`, and why."""

    communication: Communication
    outcome: str
    error: str | None


def undelivered(connection: Connection) -> list[Undelivered]:
    """Messages still `sent` whose outbox row ended `failed` or `uncertain`: their task goes back at once."""
    query = (
        select(_messages, _outbox.c.status.label("outbox_status"), _outbox.c.last_error)
        .join(_outbox, _outbox.c.id == _messages.c.outbox_id)
        .where(_messages.c.status == CommunicationStatus.SENT.value, _outbox.c.status.in_(("failed", "uncertain")))
        .order_by(_messages.c.id)
    )
    return [Undelivered(_of(row), row.outbox_status, row.last_error) for row in connection.execute(query)]
