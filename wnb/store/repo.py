"""The queries the service runs, written once in SQL and run on the transaction's DBAPI connection.

Over 400 lines on purpose: these are the hot path's statements (one evaluation runs a dozen of them), kept
together so that a change to one is read beside the others it must agree with (the same columns, the same
order, the same indexes). The faces' queries are in their own modules (reports, quality, children, …).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Connection

from wnb.core.domain import Appointment, EventState, PersonContext
from wnb.core.kinds import OPEN_TASK_CONDITION
from wnb.core.nhs import Attendance, Outcome, Priority
from wnb.core.plan import OPEN_TASK_STATUSES
from wnb.core.supersede import Stored
from wnb.store.sql import Record, Sql
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

OPEN_STATUSES = OPEN_TASK_STATUSES
_OPEN = OPEN_TASK_CONDITION.removeprefix("status IN ")
_CURRENT = f"'{EventState.CURRENT.value}'"


def insert_row(connection: Connection, table: Any, values: dict[str, Any]) -> int:
    """Insert one row and return its integer primary key."""
    return Sql(connection).insert(table, values)


def update_row(connection: Connection, table: Any, pk: int, **values: Any) -> None:
    """Set some columns of the row with primary key `pk`."""
    Sql(connection).update(table, pk, values)


def appointment_of(row: Record) -> Appointment:
    """An Appointment from a stored event (validated when it was accepted, so not validated again)."""
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


@dataclass
class CurrentOutcome:
    """What ingestion needs of an appointment's current event."""

    id: int
    recorded_at: datetime
    attendance: str
    nhs_number: str
    recorded_at_given: bool = True  # false: recorded_at is when a replica received it

    @property
    def stored(self) -> Stored:
        return Stored(Attendance(self.attendance), self.recorded_at, self.recorded_at_given)


def _by_source(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for source, key in keys:
        grouped.setdefault(source, []).append(key)
    return grouped


def _in_list(values: list[str]) -> tuple[str, dict[str, Any]]:
    names = {f"v{index}": value for index, value in enumerate(values)}
    return ", ".join(f":{name}" for name in names), names


def existing_event_keys(connection: Connection, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (source, event_id) pairs are already stored (one query per source)."""
    sql, found = Sql(connection), set[tuple[str, str]]()
    for source, ids in _by_source(keys).items():
        placeholders, params = _in_list(ids)
        rows = sql.fetch_all(
            events,
            f"SELECT event_id FROM event WHERE source = :source AND event_id IN ({placeholders})",
            {"source": source, **params},
        )
        found.update((source, row.event_id) for row in rows)
    return found


def current_outcomes(connection: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], CurrentOutcome]:
    """The current event of each (source, appointment_id) that has one."""
    sql, found = Sql(connection), {}
    for source, ids in _by_source(keys).items():
        placeholders, params = _in_list(ids)
        rows = sql.fetch_all(
            events,
            "SELECT id, appointment_id, recorded_at, attendance, nhs_number, recorded_at_given FROM event "
            "WHERE source = :source "
            f"AND appointment_id IN ({placeholders}) AND state = {_CURRENT}",
            {"source": source, **params},
        )
        for row in rows:
            found[(source, row.appointment_id)] = CurrentOutcome(
                row.id, row.recorded_at, row.attendance, row.nhs_number, bool(row.recorded_at_given)
            )
    return found


def follow_ups_of(connection: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Record]:
    """The follow-up of each (source, appointment_id) that has one (one query per source)."""
    sql, found = Sql(connection), dict[tuple[str, str], Record]()
    for source, ids in _by_source(keys).items():
        for part in _slices(ids):
            placeholders, params = _in_list(part)
            rows = sql.fetch_all(
                follow_ups,
                f"SELECT * FROM follow_up WHERE source = :source AND appointment_id IN ({placeholders})",
                {"source": source, **params},
            )
            found.update(((source, row.appointment_id), row) for row in rows)
    return found


def current_event(connection: Connection, source: str, appointment_id: str) -> Record | None:
    return Sql(connection).fetch_one(
        events,
        f"SELECT * FROM event WHERE source = :source AND appointment_id = :appointment_id AND state = {_CURRENT}",
        {"source": source, "appointment_id": appointment_id},
    )


def event_by_pk(connection: Connection, pk: int) -> Record | None:
    return Sql(connection).fetch_one(events, "SELECT * FROM event WHERE id = :pk", {"pk": pk})


def person_history(connection: Connection, nhs_number: str) -> list[Appointment]:
    """The person's appointments as they stand now; withdrawn (entered-in-error) ones left out."""
    rows = Sql(connection).fetch_all(
        events,
        "SELECT id, source, appointment_id, service, appointment_at, attendance, priority, outcome, recorded_at "
        f"FROM event WHERE nhs_number = :nhs_number AND state = {_CURRENT} AND attendance != 'entered-in-error'",
        {"nhs_number": nhs_number},
    )
    return [appointment_of(row) for row in rows]


_ATTENDANCES = {item.value: item for item in Attendance}
_PRIORITIES = {item.value: item for item in Priority}
_OUTCOMES = {item.value: item for item in Outcome}
# Task status written so no index can use it: with a list of people, SQLite otherwise walks every open task
# by the (status, due_at) index (85,000 of them after a synthetic year) instead of each person's few.
_NOT_BY_STATUS = "COALESCE(status, '')"
T = TypeVar("T")
_IN_LIST_MAX = 500  # values per IN (...) list, well under every driver's limit on parameters


def _stored_time(value: Any) -> datetime:
    """A UTCDateTime column as the driver returns it (text on SQLite), as an aware UTC datetime."""
    return (datetime.fromisoformat(value) if isinstance(value, str) else value).replace(tzinfo=UTC)


def _slices(values: Collection[str]) -> Iterator[list[str]]:
    yield from in_list_slices(sorted(values))


def in_list_slices(values: list[T]) -> Iterator[list[T]]:
    """The values in runs short enough for one IN (...) list (PostgreSQL refuses more than 65,535 parameters)."""
    for start in range(0, len(values), _IN_LIST_MAX):
        yield values[start : start + _IN_LIST_MAX]


def people_histories(connection: Connection, nhs_numbers: Collection[str]) -> dict[str, list[Appointment]]:
    """person_history of many people at once: each one's appointments as they stand, in the order stored."""
    sql = Sql(connection)
    found: dict[str, list[Appointment]] = {nhs_number: [] for nhs_number in nhs_numbers}
    for part in _slices(nhs_numbers):
        placeholders, params = _in_list(part)
        cursor = sql.execute(
            "SELECT nhs_number, id, source, appointment_id, service, appointment_at, attendance, priority, outcome, "
            f"recorded_at FROM event WHERE nhs_number IN ({placeholders}) AND state = {_CURRENT} "
            "AND attendance != 'entered-in-error' ORDER BY id",
            params,
        )
        for nhs_number, pk, source, appointment_id, service, at, attendance, priority, outcome, recorded in cursor:
            found[nhs_number].append(
                Appointment(
                    source=source,
                    appointment_id=appointment_id,
                    service=service,
                    appointment_at=_stored_time(at),
                    attendance=_ATTENDANCES[attendance],
                    priority=_PRIORITIES[priority] if priority else None,
                    outcome=_OUTCOMES[outcome] if outcome else None,
                    recorded_at=_stored_time(recorded),
                    event_pk=pk,
                )
            )
    return found


def people_contexts(connection: Connection, nhs_numbers: Collection[str]) -> dict[str, PersonContext]:
    """person_context of many people at once; people without a context record are left out."""
    sql, found = Sql(connection), {}
    for part in _slices(nhs_numbers):
        placeholders, params = _in_list(part)
        cursor = sql.execute(
            f"SELECT nhs_number, document FROM person_context WHERE nhs_number IN ({placeholders})", params
        )
        for nhs_number, document in cursor:
            found[nhs_number] = _context_from(document if isinstance(document, str) else json.dumps(document))
    return found


def people_completed_tasks(
    connection: Connection, nhs_numbers: Collection[str], code: str
) -> dict[str, list[tuple[str, datetime]]]:
    """completed_tasks of many people at once."""
    sql = Sql(connection)
    found: dict[str, list[tuple[str, datetime]]] = {nhs_number: [] for nhs_number in nhs_numbers}
    for part in _slices(nhs_numbers):
        placeholders, params = _in_list(part)
        cursor = sql.execute(
            f"SELECT nhs_number, service, updated_at FROM task WHERE code = :code AND {_NOT_BY_STATUS} = 'completed' "
            f"AND nhs_number IN ({placeholders}) ORDER BY id",
            {"code": code, **params},
        )
        for nhs_number, service, updated_at in cursor:
            found[nhs_number].append((service, _stored_time(updated_at)))
    return found


def people_active_flags(connection: Connection, nhs_numbers: Collection[str]) -> dict[str, dict[str, Record]]:
    """active_flags of many people at once (people without one are left out)."""
    sql, found = Sql(connection), dict[str, dict[str, Record]]()
    for part in _slices(nhs_numbers):
        placeholders, params = _in_list(part)
        rows = sql.fetch_all(
            flags, f"SELECT * FROM flag WHERE nhs_number IN ({placeholders}) AND status = 'active' ORDER BY id", params
        )
        for row in rows:
            found.setdefault(row.nhs_number, {})[row.code] = row
    return found


def people_open_tasks(connection: Connection, nhs_numbers: Collection[str]) -> dict[str, list[Record]]:
    """The open tasks of many people at once, every service (people without one are left out)."""
    sql, found = Sql(connection), dict[str, list[Record]]()
    for part in _slices(nhs_numbers):
        placeholders, params = _in_list(part)
        rows = sql.fetch_all(
            tasks,
            f"SELECT * FROM task WHERE nhs_number IN ({placeholders}) AND {_NOT_BY_STATUS} IN {_OPEN} ORDER BY id",
            params,
        )
        for row in rows:
            found.setdefault(row.nhs_number, []).append(row)
    return found


def active_links_of(connection: Connection, flag_ids: list[int], task_ids: list[int]) -> set[tuple[str, int, str, str]]:
    """(kind, item id, source, appointment id) of every active link of these flags and tasks."""
    sql, found = Sql(connection), set[tuple[str, int, str, str]]()
    for kind, ids in (("flag", flag_ids), ("task", task_ids)):
        for part in in_list_slices(ids):
            names = {f"v{index}": pk for index, pk in enumerate(part)}
            cursor = sql.execute(
                "SELECT item_id, source, appointment_id FROM link WHERE kind = :kind AND active = :yes "
                f"AND item_id IN ({', '.join(f':{name}' for name in names)})",
                {"kind": kind, "yes": True, **names},
            )
            found.update((kind, int(item_id), source, appointment_id) for item_id, source, appointment_id in cursor)
    return found


@lru_cache(maxsize=4096)
def _context_from(document: str) -> PersonContext:
    """Parsed once per distinct stored text: a context is re-read for every evaluation of its person."""
    return PersonContext.model_validate_json(document)


def person_context(connection: Connection, nhs_number: str) -> PersonContext | None:
    document = Sql(connection).scalar(
        "SELECT document FROM person_context WHERE nhs_number = :nhs_number", {"nhs_number": nhs_number}
    )
    if document is None:
        return None
    return _context_from(document if isinstance(document, str) else json.dumps(document))


def save_context(connection: Connection, context: PersonContext, at: datetime) -> bool:
    """Insert or replace a person's context; True when it was new."""
    sql = Sql(connection)
    values = {"nhs_number": context.nhs_number, "document": context.model_dump(mode="json"), "updated_at": at}
    exists = sql.fetch_one(contexts, "SELECT nhs_number FROM person_context WHERE nhs_number = :nhs_number", values)
    if exists:
        sql.execute(
            "UPDATE person_context SET document = :document, updated_at = :updated_at WHERE nhs_number = :nhs_number",
            values,
        )
        return False
    sql.insert(contexts, values)
    return True


def completed_tasks(connection: Connection, nhs_number: str, code: str) -> list[tuple[str, datetime]]:
    """(service, completed_at) of the person's completed tasks with this code."""
    rows = Sql(connection).fetch_all(
        tasks,
        "SELECT service, updated_at FROM task WHERE nhs_number = :nhs_number AND code = :code AND status = 'completed'",
        {"nhs_number": nhs_number, "code": code},
    )
    return [(row.service, row.updated_at) for row in rows]


def active_flag(connection: Connection, nhs_number: str, code: str) -> Record | None:
    return active_flags(connection, nhs_number).get(code)


def open_task(connection: Connection, nhs_number: str, service: str, code: str) -> Record | None:
    return open_tasks(connection, nhs_number, service).get((service, code))


def active_flags(connection: Connection, nhs_number: str) -> dict[str, Record]:
    """The person's active flags by code."""
    rows = Sql(connection).fetch_all(
        flags,
        "SELECT * FROM flag WHERE nhs_number = :nhs_number AND status = 'active'",
        {"nhs_number": nhs_number},
    )
    return {row.code: row for row in rows}


def open_tasks(connection: Connection, nhs_number: str, service: str) -> dict[tuple[str, str], Record]:
    """The person's open tasks in a service by (service, code)."""
    rows = Sql(connection).fetch_all(
        tasks,
        f"SELECT * FROM task WHERE nhs_number = :nhs_number AND service = :service AND status IN {_OPEN}",
        {"nhs_number": nhs_number, "service": service},
    )
    return {(row.service, row.code): row for row in rows}


def flag_by_id(connection: Connection, flag_id: int) -> Record | None:
    return Sql(connection).fetch_one(flags, "SELECT * FROM flag WHERE id = :id", {"id": flag_id})


def task_by_id(connection: Connection, task_id: int) -> Record | None:
    return Sql(connection).fetch_one(tasks, "SELECT * FROM task WHERE id = :id", {"id": task_id})


def tasks_to_escalate(connection: Connection, now: datetime) -> list[Record]:
    """`requested` tasks whose due time has come, soonest first."""
    return Sql(connection).fetch_all(
        tasks,
        "SELECT * FROM task WHERE status = 'requested' AND due_at <= :now ORDER BY due_at, id",
        {"now": now},
    )


def replies_due(connection: Connection, now: datetime) -> list[Record]:
    """Acknowledged tasks whose wait for a reply has ended, soonest first."""
    return Sql(connection).fetch_all(
        tasks,
        "SELECT * FROM task WHERE status = 'accepted' AND waiting_until <= :now ORDER BY waiting_until, id",
        {"now": now},
    )


def acknowledged_tasks(connection: Connection) -> list[Record]:
    """Acknowledged tasks, for the acknowledgement timeout (a ruleset that sets one)."""
    return Sql(connection).fetch_all(
        tasks, "SELECT * FROM task WHERE status = 'accepted' AND acknowledged_at IS NOT NULL ORDER BY id", {}
    )


def pending_follow_ups(connection: Connection, now: datetime) -> list[Record]:
    """Missed appointments whose WNB-14 deadline has come and that were not yet judged."""
    return Sql(connection).fetch_all(
        follow_ups,
        "SELECT * FROM follow_up WHERE status = 'pending' AND deadline_at <= :now ORDER BY deadline_at, id",
        {"now": now},
    )


def follow_up_of(connection: Connection, source: str, appointment_id: str) -> Record | None:
    return Sql(connection).fetch_one(
        follow_ups,
        "SELECT * FROM follow_up WHERE source = :source AND appointment_id = :appointment_id",
        {"source": source, "appointment_id": appointment_id},
    )


def active_links(connection: Connection, kind: str, item_id: int) -> list[Record]:
    return Sql(connection).fetch_all(
        links,
        "SELECT * FROM link WHERE kind = :kind AND item_id = :item_id AND active = :yes",
        {"kind": kind, "item_id": item_id, "yes": True},
    )


def all_links(connection: Connection, kind: str, item_id: int) -> list[Record]:
    return Sql(connection).fetch_all(
        links,
        "SELECT * FROM link WHERE kind = :kind AND item_id = :item_id ORDER BY id",
        {"kind": kind, "item_id": item_id},
    )


def appointment_links(connection: Connection, source: str, appointment_id: str) -> list[Record]:
    return Sql(connection).fetch_all(
        links,
        "SELECT * FROM link WHERE source = :source AND appointment_id = :appointment_id AND active = :yes",
        {"source": source, "appointment_id": appointment_id, "yes": True},
    )


def is_linked(connection: Connection, kind: str, item_id: int, source: str, appointment_id: str) -> bool:
    row = Sql(connection).fetch_one(
        links,
        "SELECT id FROM link WHERE kind = :kind AND item_id = :item_id AND source = :source "
        "AND appointment_id = :appointment_id AND active = :yes",
        {"kind": kind, "item_id": item_id, "source": source, "appointment_id": appointment_id, "yes": True},
    )
    return row is not None


def task_history_of(connection: Connection, task_id: int) -> list[Record]:
    return Sql(connection).fetch_all(
        task_history, "SELECT * FROM task_history WHERE task_id = :task_id ORDER BY id", {"task_id": task_id}
    )
