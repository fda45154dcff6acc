"""The queries the service runs, in SQLAlchemy Core (the hot path of ingestion stays light)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, insert, select, update

from wnb.domain import Appointment, EventState, PersonContext, TaskStatus
from wnb.nhs import Attendance, Outcome, Priority
from wnb.store.tables import (
    EventRow,
    FlagRow,
    FollowUpRow,
    LinkRow,
    PersonContextRow,
    RejectRow,
    TaskHistoryRow,
    TaskRow,
)

events = EventRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__
contexts = PersonContextRow.__table__  # type: ignore[attr-defined]
flags = FlagRow.__table__  # type: ignore[attr-defined]
tasks = TaskRow.__table__  # type: ignore[attr-defined]
task_history = TaskHistoryRow.__table__  # type: ignore[attr-defined]
links = LinkRow.__table__  # type: ignore[attr-defined]
follow_ups = FollowUpRow.__table__  # type: ignore[attr-defined]
rejects = RejectRow.__table__  # type: ignore[attr-defined]

OPEN_STATUSES = (TaskStatus.REQUESTED.value, TaskStatus.ACCEPTED.value)


def insert_row(connection: Connection, table: Any, values: dict[str, Any]) -> int:
    """Insert one row and return its integer primary key."""
    result = connection.execute(insert(table).values(values))
    return int(result.inserted_primary_key[0])


def appointment_of(row: Row[Any]) -> Appointment:
    return Appointment(
        source=row.source,
        appointment_id=row.appointment_id,
        service=row.service,
        appointment_at=row.appointment_at,
        attendance=Attendance(row.attendance),
        priority=Priority(row.priority) if row.priority else None,
        outcome=Outcome(row.outcome) if row.outcome else None,
        recorded_at=row.recorded_at,
        event_pk=row.id,
    )


def event_exists(connection: Connection, source: str, event_id: str) -> bool:
    query = select(events.c.id).where(and_(events.c.source == source, events.c.event_id == event_id))
    return connection.execute(query).first() is not None


def current_event(connection: Connection, source: str, appointment_id: str) -> Row[Any] | None:
    query = select(events).where(
        and_(
            events.c.source == source,
            events.c.appointment_id == appointment_id,
            events.c.state == EventState.CURRENT.value,
        )
    )
    return connection.execute(query).first()


def event_by_pk(connection: Connection, pk: int) -> Row[Any] | None:
    return connection.execute(select(events).where(events.c.id == pk)).first()


def person_history(connection: Connection, nhs_number: str) -> list[Appointment]:
    """The person's appointments as they stand now; withdrawn (entered-in-error) ones left out."""
    query = select(events).where(
        and_(
            events.c.nhs_number == nhs_number,
            events.c.state == EventState.CURRENT.value,
            events.c.attendance != Attendance.ENTERED_IN_ERROR.value,
        )
    )
    return [appointment_of(row) for row in connection.execute(query)]


def person_context(connection: Connection, nhs_number: str) -> PersonContext | None:
    row = connection.execute(select(contexts.c.document).where(contexts.c.nhs_number == nhs_number)).first()
    return None if row is None else PersonContext.model_validate(row.document)


def save_context(connection: Connection, context: PersonContext, at: datetime) -> bool:
    """Insert or replace a person's context; True when it was new."""
    document = context.model_dump(mode="json")
    exists = connection.execute(
        select(contexts.c.nhs_number).where(contexts.c.nhs_number == context.nhs_number)
    ).first()
    if exists:
        connection.execute(
            update(contexts)
            .where(contexts.c.nhs_number == context.nhs_number)
            .values(document=document, updated_at=at)
        )
        return False
    connection.execute(insert(contexts).values(nhs_number=context.nhs_number, document=document, updated_at=at))
    return True


def completed_tasks(connection: Connection, nhs_number: str, code: str) -> list[tuple[str, datetime]]:
    """(service, completed_at) of the person's completed tasks with this code."""
    query = select(tasks.c.service, tasks.c.updated_at).where(
        and_(
            tasks.c.nhs_number == nhs_number,
            tasks.c.code == code,
            tasks.c.status == TaskStatus.COMPLETED.value,
        )
    )
    return [(row.service, row.updated_at) for row in connection.execute(query)]


def active_flag(connection: Connection, nhs_number: str, code: str) -> Row[Any] | None:
    query = select(flags).where(
        and_(flags.c.nhs_number == nhs_number, flags.c.code == code, flags.c.status == "active")
    )
    return connection.execute(query).first()


def open_task(connection: Connection, nhs_number: str, service: str, code: str) -> Row[Any] | None:
    query = select(tasks).where(
        and_(
            tasks.c.nhs_number == nhs_number,
            tasks.c.service == service,
            tasks.c.code == code,
            tasks.c.status.in_(OPEN_STATUSES),
        )
    )
    return connection.execute(query).first()


def flag_by_id(connection: Connection, flag_id: int) -> Row[Any] | None:
    return connection.execute(select(flags).where(flags.c.id == flag_id)).first()


def task_by_id(connection: Connection, task_id: int) -> Row[Any] | None:
    return connection.execute(select(tasks).where(tasks.c.id == task_id)).first()


def active_links(connection: Connection, kind: str, item_id: int) -> list[Row[Any]]:
    query = select(links).where(and_(links.c.kind == kind, links.c.item_id == item_id, links.c.active))
    return list(connection.execute(query))


def all_links(connection: Connection, kind: str, item_id: int) -> list[Row[Any]]:
    query = select(links).where(and_(links.c.kind == kind, links.c.item_id == item_id)).order_by(links.c.id)
    return list(connection.execute(query))


def appointment_links(connection: Connection, source: str, appointment_id: str) -> list[Row[Any]]:
    query = select(links).where(
        and_(links.c.source == source, links.c.appointment_id == appointment_id, links.c.active)
    )
    return list(connection.execute(query))


def is_linked(connection: Connection, kind: str, item_id: int, source: str, appointment_id: str) -> bool:
    query = select(links.c.id).where(
        and_(
            links.c.kind == kind,
            links.c.item_id == item_id,
            links.c.source == source,
            links.c.appointment_id == appointment_id,
            links.c.active,
        )
    )
    return connection.execute(query).first() is not None


def task_history_of(connection: Connection, task_id: int) -> list[Row[Any]]:
    query = select(task_history).where(task_history.c.task_id == task_id).order_by(task_history.c.id)
    return list(connection.execute(query))
