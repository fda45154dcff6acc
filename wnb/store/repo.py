"""The queries the service runs, in SQLAlchemy Core (the hot path of ingestion stays light)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, insert, select, update

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


_INSERTS: dict[str, Any] = {}
_UPDATES: dict[str, Any] = {}


def insert_row(connection: Connection, table: Any, values: dict[str, Any]) -> int:
    """Insert one row and return its integer primary key (statements are built once and reused)."""
    statement = _INSERTS.get(table.name)
    if statement is None:
        statement = _INSERTS[table.name] = insert(table)
    result = connection.execute(statement, values)
    return int(result.inserted_primary_key[0])


def update_row(connection: Connection, table: Any, pk: int, **values: Any) -> None:
    """Set some columns of the row with primary key `pk` (the statement's shape is reused)."""
    key = table.name
    statement = _UPDATES.get(key)
    if statement is None:
        statement = _UPDATES[key] = update(table).where(table.c.id == bindparam("_pk"))
    connection.execute(statement, {"_pk": pk, **values})


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


_EVENT_EXISTS = select(events.c.id).where(
    and_(events.c.source == bindparam("source"), events.c.event_id == bindparam("event_id"))
)
_CURRENT_EVENT = select(events).where(
    and_(
        events.c.source == bindparam("source"),
        events.c.appointment_id == bindparam("appointment_id"),
        events.c.state == EventState.CURRENT.value,
    )
)
_PERSON_HISTORY = select(events).where(
    and_(
        events.c.nhs_number == bindparam("nhs_number"),
        events.c.state == EventState.CURRENT.value,
        events.c.attendance != Attendance.ENTERED_IN_ERROR.value,
    )
)
_PERSON_CONTEXT = select(contexts.c.document).where(contexts.c.nhs_number == bindparam("nhs_number"))


def event_exists(connection: Connection, source: str, event_id: str) -> bool:
    return connection.execute(_EVENT_EXISTS, {"source": source, "event_id": event_id}).first() is not None


def current_event(connection: Connection, source: str, appointment_id: str) -> Row[Any] | None:
    return connection.execute(_CURRENT_EVENT, {"source": source, "appointment_id": appointment_id}).first()


_EVENT_IDS_IN = select(events.c.event_id).where(
    and_(events.c.source == bindparam("source"), events.c.event_id.in_(bindparam("ids", expanding=True)))
)
_CURRENT_IN = select(events.c.id, events.c.appointment_id, events.c.recorded_at, events.c.attendance).where(
    and_(
        events.c.source == bindparam("source"),
        events.c.appointment_id.in_(bindparam("ids", expanding=True)),
        events.c.state == EventState.CURRENT.value,
    )
)


@dataclass
class CurrentOutcome:
    """What ingestion needs of an appointment's current event."""

    id: int
    recorded_at: datetime
    attendance: str


def _by_source(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for source, key in keys:
        grouped.setdefault(source, []).append(key)
    return grouped


def existing_event_keys(connection: Connection, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (source, event_id) pairs are already stored (one query per source)."""
    found: set[tuple[str, str]] = set()
    for source, ids in _by_source(keys).items():
        rows = connection.execute(_EVENT_IDS_IN, {"source": source, "ids": ids})
        found.update((source, row.event_id) for row in rows)
    return found


def current_outcomes(
    connection: Connection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], CurrentOutcome]:
    """The current event of each (source, appointment_id) that has one."""
    found: dict[tuple[str, str], CurrentOutcome] = {}
    for source, ids in _by_source(keys).items():
        for row in connection.execute(_CURRENT_IN, {"source": source, "ids": ids}):
            found[(source, row.appointment_id)] = CurrentOutcome(row.id, row.recorded_at, row.attendance)
    return found


def event_by_pk(connection: Connection, pk: int) -> Row[Any] | None:
    return connection.execute(select(events).where(events.c.id == pk)).first()


def person_history(connection: Connection, nhs_number: str) -> list[Appointment]:
    """The person's appointments as they stand now; withdrawn (entered-in-error) ones left out."""
    return [appointment_of(row) for row in connection.execute(_PERSON_HISTORY, {"nhs_number": nhs_number})]


def person_context(connection: Connection, nhs_number: str) -> PersonContext | None:
    row = connection.execute(_PERSON_CONTEXT, {"nhs_number": nhs_number}).first()
    return None if row is None else PersonContext.model_validate(row.document)


def save_context(connection: Connection, context: PersonContext, at: datetime) -> bool:
    """Insert or replace a person's context; True when it was new."""
    document = context.model_dump(mode="json")
    exists = connection.execute(
        select(contexts.c.nhs_number).where(contexts.c.nhs_number == context.nhs_number)
    ).first()
    if exists:
        connection.execute(
            update(contexts).where(contexts.c.nhs_number == bindparam("key")),
            {"key": context.nhs_number, "document": document, "updated_at": at},
        )
        return False
    connection.execute(insert(contexts), {"nhs_number": context.nhs_number, "document": document, "updated_at": at})
    return True


_COMPLETED_TASKS = select(tasks.c.service, tasks.c.updated_at).where(
    and_(
        tasks.c.nhs_number == bindparam("nhs_number"),
        tasks.c.code == bindparam("code"),
        tasks.c.status == TaskStatus.COMPLETED.value,
    )
)
_ACTIVE_FLAG = select(flags).where(
    and_(flags.c.nhs_number == bindparam("nhs_number"), flags.c.code == bindparam("code"), flags.c.status == "active")
)
_OPEN_TASK = select(tasks).where(
    and_(
        tasks.c.nhs_number == bindparam("nhs_number"),
        tasks.c.service == bindparam("service"),
        tasks.c.code == bindparam("code"),
        tasks.c.status.in_(OPEN_STATUSES),
    )
)


def completed_tasks(connection: Connection, nhs_number: str, code: str) -> list[tuple[str, datetime]]:
    """(service, completed_at) of the person's completed tasks with this code."""
    rows = connection.execute(_COMPLETED_TASKS, {"nhs_number": nhs_number, "code": code})
    return [(row.service, row.updated_at) for row in rows]


def active_flag(connection: Connection, nhs_number: str, code: str) -> Row[Any] | None:
    return connection.execute(_ACTIVE_FLAG, {"nhs_number": nhs_number, "code": code}).first()


def open_task(connection: Connection, nhs_number: str, service: str, code: str) -> Row[Any] | None:
    return connection.execute(_OPEN_TASK, {"nhs_number": nhs_number, "service": service, "code": code}).first()


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
    return list(connection.execute(_APPOINTMENT_LINKS, {"source": source, "appointment_id": appointment_id}))


_IS_LINKED = select(links.c.id).where(
    and_(
        links.c.kind == bindparam("kind"),
        links.c.item_id == bindparam("item_id"),
        links.c.source == bindparam("source"),
        links.c.appointment_id == bindparam("appointment_id"),
        links.c.active,
    )
)
_APPOINTMENT_LINKS = select(links).where(
    and_(links.c.source == bindparam("source"), links.c.appointment_id == bindparam("appointment_id"), links.c.active)
)


def is_linked(connection: Connection, kind: str, item_id: int, source: str, appointment_id: str) -> bool:
    params = {"kind": kind, "item_id": item_id, "source": source, "appointment_id": appointment_id}
    return connection.execute(_IS_LINKED, params).first() is not None


_FOLLOW_UP = select(follow_ups).where(
    and_(follow_ups.c.source == bindparam("source"), follow_ups.c.appointment_id == bindparam("appointment_id"))
)


def follow_up_of(connection: Connection, source: str, appointment_id: str) -> Row[Any] | None:
    return connection.execute(_FOLLOW_UP, {"source": source, "appointment_id": appointment_id}).first()


def task_history_of(connection: Connection, task_id: int) -> list[Row[Any]]:
    query = select(task_history).where(task_history.c.task_id == task_id).order_by(task_history.c.id)
    return list(connection.execute(query))
