"""The governance dashboard's figures for a period, read from the database; and the same figures as CSV rows.

A period is dated by the appointments behind its figures (the default: what governance asks about is the
appointments a child was not brought to) or by when wnb processed them (`PeriodBy`). Under appointment dates:
an evaluation by its event's appointment, a flag or task by the appointment that raised it (its first link),
the acknowledgements, completions and escalations of a task by that task's appointment, an accepted event by
its own. What has no appointment is dated as processed: a rejected row (its dates cannot be trusted) and an
admin task about wnb itself. Tasks overdue are counted as of now, whatever the period.

Also the flags and tasks first raised in a period, which a simulation compares with its replay.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Integer, Subquery, and_, cast, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from wnb.store import repo
from wnb.store.tables import AuditRow

_audit = AuditRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__

MAX_LISTED = 100


class PeriodBy(StrEnum):
    """What puts a figure in a period: the appointment behind it, or when wnb processed it."""

    APPOINTMENT = "appointment"
    PROCESSED = "processed"


def _dated(
    by: PeriodBy,
    start: datetime,
    end: datetime,
    processed_at: ColumnElement[Any],
    appointment_at: ColumnElement[Any] | None = None,
) -> ColumnElement[bool]:
    """The condition that a row falls in [start, end): by its appointment time, or (with none) as processed."""
    processed = and_(processed_at >= start, processed_at < end)
    if by is PeriodBy.PROCESSED or appointment_at is None:
        return processed
    return or_(and_(appointment_at >= start, appointment_at < end), and_(appointment_at.is_(None), processed))


def _raising_appointments(kind: str) -> Subquery:
    """Each flag's or task's (`kind`) raising appointment: the appointment time of its first link."""
    links, events = repo.links, repo.events
    first = (
        select(links.c.item_id, func.min(links.c.id).label("link_id"))
        .where(links.c.kind == kind)
        .group_by(links.c.item_id)
        .subquery()
    )
    return (
        select(first.c.item_id, events.c.appointment_at)
        .select_from(first)
        .join(links, links.c.id == first.c.link_id)
        .join(events, events.c.id == links.c.event_pk)
        .subquery()
    )


@dataclass(frozen=True)
class Item:
    """A flag (person, code) or task (person, service, code, first owner) raised in the period."""

    kind: str
    nhs_number: str
    code: str
    service: str | None
    role: str | None
    rule_ids: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str, str | None, str]:
        return (self.kind, self.nhs_number, self.service, self.code)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "nhs_number": self.nhs_number,
            "code": self.code,
            "service": self.service,
            "owner_role": self.role,
            "rule_ids": list(self.rule_ids),
        }


def raised_items(
    connection: Connection, start: datetime, end: datetime, by: PeriodBy = PeriodBy.PROCESSED
) -> list[Item]:
    """The flags and tasks of one database raised in [start, end), or raised by an appointment in it (`by`)."""
    flags, tasks = repo.flags, repo.tasks
    flag_appointments, task_appointments = _raising_appointments("flag"), _raising_appointments("task")
    flag_rows = (
        select(flags)
        .outerjoin(flag_appointments, flag_appointments.c.item_id == flags.c.id)
        .where(_dated(by, start, end, flags.c.raised_at, flag_appointments.c.appointment_at))
        .order_by(flags.c.id)
    )
    items = [
        Item("flag", row.nhs_number, row.code, None, None, tuple(row.rule_ids)) for row in connection.execute(flag_rows)
    ]
    task_rows = (
        select(tasks)
        .outerjoin(task_appointments, task_appointments.c.item_id == tasks.c.id)
        .where(_dated(by, start, end, tasks.c.created_at, task_appointments.c.appointment_at))
        .order_by(tasks.c.id)
    )
    items += [
        Item("task", row.nhs_number, row.code, row.service, row.first_owner_role, tuple(row.rule_ids))
        for row in connection.execute(task_rows)
    ]
    return items


@dataclass(frozen=True)
class Timing:
    """How long tasks of one role took to be acknowledged and completed, in hours."""

    role: str
    acknowledged: int
    median_hours_to_ack: float | None
    completed: int
    median_hours_to_complete: float | None


@dataclass(frozen=True)
class Feed:
    """Events from one source in the period, by what became of them, and its rejected rows."""

    source: str
    accepted: int
    stale: int
    rejected: int


@dataclass
class Dashboard:
    """Every figure of the governance dashboard for the period [start, end)."""

    start: datetime
    end: datetime
    by: PeriodBy = PeriodBy.APPOINTMENT
    evaluations: int = 0
    fired: Counter[str] = field(default_factory=Counter)
    flags_by_rule: Counter[str] = field(default_factory=Counter)
    tasks_by_rule: Counter[str] = field(default_factory=Counter)
    flags_by_level: Counter[str] = field(default_factory=Counter)
    tasks_by_role: Counter[str] = field(default_factory=Counter)
    timings: list[Timing] = field(default_factory=list)
    overdue_by_role: Counter[str] = field(default_factory=Counter)
    escalated_by_role: Counter[str] = field(default_factory=Counter)
    overdue: list[dict[str, Any]] = field(default_factory=list)  # the longest overdue first, at most MAX_LISTED
    feeds: list[Feed] = field(default_factory=list)

    @property
    def rules(self) -> list[str]:
        return sorted(set(self.fired) | set(self.flags_by_rule) | set(self.tasks_by_rule))

    def csv_rows(self) -> list[list[str]]:
        """section, name, measure, value: one figure per row, for a spreadsheet."""
        rows = [["section", "name", "measure", "value"]]
        period = f"{self.start.isoformat()}/{self.end.isoformat()}"
        rows.append(["period", period, "dated by", self.by.value])
        rows.append(["period", period, "evaluations", str(self.evaluations)])
        for rule in self.rules:
            rows.append(["rule", rule, "fired", str(self.fired[rule])])
            rows.append(["rule", rule, "flags raised", str(self.flags_by_rule[rule])])
            rows.append(["rule", rule, "tasks raised", str(self.tasks_by_rule[rule])])
        for level, number in sorted(self.flags_by_level.items()):
            rows.append(["flag level", level, "flags raised", str(number)])
        for role, number in sorted(self.tasks_by_role.items()):
            rows.append(["role", role, "tasks raised", str(number)])
        for timing in self.timings:
            rows.append(["role", timing.role, "acknowledged", str(timing.acknowledged)])
            rows.append(["role", timing.role, "median hours to acknowledge", _number(timing.median_hours_to_ack)])
            rows.append(["role", timing.role, "completed", str(timing.completed)])
            rows.append(["role", timing.role, "median hours to complete", _number(timing.median_hours_to_complete)])
        for role, number in sorted(self.overdue_by_role.items()):
            rows.append(["role", role, "overdue now", str(number)])
        for role, number in sorted(self.escalated_by_role.items()):
            rows.append(["role", role, "escalated to", str(number)])
        for feed in self.feeds:
            rows.append(["source", feed.source, "accepted", str(feed.accepted)])
            rows.append(["source", feed.source, "stale", str(feed.stale)])
            rows.append(["source", feed.source, "rejected", str(feed.rejected)])
        return rows


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _rule_outcomes(connection: Connection, board: Dashboard) -> None:
    table, events = _audit, repo.events
    query = select(table.c.payload).where(table.c.action == "evaluation")
    if board.by is PeriodBy.APPOINTMENT:
        # An evaluation's subject starts with its event, `E<id>` (wnb/service: every evaluation is of one event).
        # Joined on the event's primary key so that SQLite looks each one up instead of scanning the events.
        event_pk = cast(func.substr(table.c.subject[0].as_string(), 2), Integer)
        query = query.join(events, events.c.id == event_pk)
    query = query.where(_dated(board.by, board.start, board.end, table.c.at, _appointment_of(board, events)))
    for (payload,) in connection.execute(query):
        board.evaluations += 1
        board.fired.update(payload.get("fired", []))


def _appointment_of(board: Dashboard, table: Any) -> ColumnElement[Any] | None:
    """The appointment time that dates rows of `table` (an event, or a raising appointment) when asked for."""
    return table.c.appointment_at if board.by is PeriodBy.APPOINTMENT else None


def _raised(connection: Connection, board: Dashboard) -> None:
    flags = repo.flags
    for item in raised_items(connection, board.start, board.end, board.by):
        target = board.flags_by_rule if item.kind == "flag" else board.tasks_by_rule
        target.update(item.rule_ids)
        if item.role:
            board.tasks_by_role[item.role] += 1
    raising = _raising_appointments("flag")
    levels = (
        select(flags.c.level, func.count())
        .outerjoin(raising, raising.c.item_id == flags.c.id)
        .where(_dated(board.by, board.start, board.end, flags.c.raised_at, _appointment_of(board, raising)))
    )
    for level, number in connection.execute(levels.group_by(flags.c.level)):
        board.flags_by_level[level] = number


def _timings(connection: Connection, board: Dashboard) -> None:
    """Per role that acted: hours from a task's creation to its acknowledgement and to its completion."""
    history, tasks, raising = repo.task_history, repo.tasks, _raising_appointments("task")
    query = (
        select(history.c.action, history.c.owner_role, history.c.at, tasks.c.created_at)
        .join(tasks, tasks.c.id == history.c.task_id)
        .outerjoin(raising, raising.c.item_id == tasks.c.id)
        .where(
            _dated(board.by, board.start, board.end, history.c.at, _appointment_of(board, raising)),
            history.c.action.in_(["acknowledged", "completed"]),
        )
    )
    hours: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in connection.execute(query):
        hours[(row.owner_role, row.action)].append((row.at - row.created_at).total_seconds() / 3600)
    roles = sorted({role for role, _ in hours})
    board.timings = [
        Timing(
            role,
            len(hours[(role, "acknowledged")]),
            _median(hours[(role, "acknowledged")]),
            len(hours[(role, "completed")]),
            _median(hours[(role, "completed")]),
        )
        for role in roles
    ]


def _overdue_and_escalated(connection: Connection, board: Dashboard, now: datetime) -> None:
    tasks, history = repo.tasks, repo.task_history
    overdue = select(tasks.c.owner_role, func.count()).where(tasks.c.status == "requested", tasks.c.due_at <= now)
    for role, number in connection.execute(overdue.group_by(tasks.c.owner_role)):
        board.overdue_by_role[role] = number
    longest = (
        select(tasks)
        .where(tasks.c.status == "requested", tasks.c.due_at <= now)
        .order_by(tasks.c.due_at, tasks.c.id)
        .limit(MAX_LISTED)
    )
    board.overdue = [dict(row._mapping) for row in connection.execute(longest)]
    raising = _raising_appointments("task")
    escalated = (
        select(history.c.owner_role, func.count())
        .outerjoin(raising, raising.c.item_id == history.c.task_id)
        .where(
            history.c.action == "escalated",
            _dated(board.by, board.start, board.end, history.c.at, _appointment_of(board, raising)),
        )
    )
    for role, number in connection.execute(escalated.group_by(history.c.owner_role)):
        board.escalated_by_role[role] = number


def _feeds(connection: Connection, board: Dashboard) -> None:
    events, rejects = repo.events, repo.rejects
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    query = (
        select(events.c.source, events.c.state, func.count())
        .where(_dated(board.by, board.start, board.end, events.c.received_at, _appointment_of(board, events)))
        .group_by(events.c.source, events.c.state)
    )
    for source, state, number in connection.execute(query):
        counts[source]["stale" if state == "stale" else "accepted"] += number
    # Distinct rejected rows first received in the period: a row sent again is counted once, like a duplicate event.
    # Always by when received: a refused row's appointment time, if it has one, is not to be trusted.
    refused = (
        select(func.coalesce(rejects.c.source, rejects.c.origin), func.count())
        .where(rejects.c.received_at >= board.start, rejects.c.received_at < board.end, rejects.c.kind == "reject")
        .group_by(func.coalesce(rejects.c.source, rejects.c.origin))
    )
    for source, number in connection.execute(refused):
        counts[source]["rejected"] += number
    board.feeds = [
        Feed(source, found["accepted"], found["stale"], found["rejected"]) for source, found in sorted(counts.items())
    ]


def dashboard(
    connection: Connection, start: datetime, end: datetime, now: datetime, by: PeriodBy = PeriodBy.APPOINTMENT
) -> Dashboard:
    """Every figure of the governance dashboard for [start, end), dated `by`; overdue counts are as of `now`."""
    board = Dashboard(start, end, by)
    _rule_outcomes(connection, board)
    _raised(connection, board)
    _timings(connection, board)
    _overdue_and_escalated(connection, board, now)
    _feeds(connection, board)
    return board
