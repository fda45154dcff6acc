"""The governance dashboard's figures for a period, read from the database; and the same figures as CSV rows.

Also the flags and tasks first raised in a period, which a simulation compares with its replay.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from wnb.store import repo
from wnb.store.tables import AuditRow

_audit = AuditRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__

MAX_LISTED = 100


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


def raised_items(connection: Connection, start: datetime, end: datetime) -> list[Item]:
    """The flags and tasks first raised in [start, end) in one database."""
    flags, tasks = repo.flags, repo.tasks
    items = [
        Item("flag", row.nhs_number, row.code, None, None, tuple(row.rule_ids))
        for row in connection.execute(
            select(flags).where(flags.c.raised_at >= start, flags.c.raised_at < end).order_by(flags.c.id)
        )
    ]
    items += [
        Item("task", row.nhs_number, row.code, row.service, row.first_owner_role, tuple(row.rule_ids))
        for row in connection.execute(
            select(tasks).where(tasks.c.created_at >= start, tasks.c.created_at < end).order_by(tasks.c.id)
        )
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
    table = _audit
    query = select(table.c.payload).where(
        table.c.action == "evaluation", table.c.at >= board.start, table.c.at < board.end
    )
    for (payload,) in connection.execute(query):
        board.evaluations += 1
        board.fired.update(payload.get("fired", []))


def _raised(connection: Connection, board: Dashboard) -> None:
    flags = repo.flags
    for item in raised_items(connection, board.start, board.end):
        target = board.flags_by_rule if item.kind == "flag" else board.tasks_by_rule
        target.update(item.rule_ids)
        if item.role:
            board.tasks_by_role[item.role] += 1
    levels = select(flags.c.level, func.count()).where(flags.c.raised_at >= board.start, flags.c.raised_at < board.end)
    for level, number in connection.execute(levels.group_by(flags.c.level)):
        board.flags_by_level[level] = number


def _timings(connection: Connection, board: Dashboard) -> None:
    """Per role that acted: hours from a task's creation to its acknowledgement and to its completion."""
    history, tasks = repo.task_history, repo.tasks
    query = (
        select(history.c.action, history.c.owner_role, history.c.at, tasks.c.created_at)
        .join(tasks, tasks.c.id == history.c.task_id)
        .where(
            history.c.at >= board.start, history.c.at < board.end, history.c.action.in_(["acknowledged", "completed"])
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
    escalated = select(history.c.owner_role, func.count()).where(
        history.c.action == "escalated", history.c.at >= board.start, history.c.at < board.end
    )
    for role, number in connection.execute(escalated.group_by(history.c.owner_role)):
        board.escalated_by_role[role] = number


def _feeds(connection: Connection, board: Dashboard) -> None:
    events, rejects = repo.events, repo.rejects
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    query = (
        select(events.c.source, events.c.state, func.count())
        .where(events.c.received_at >= board.start, events.c.received_at < board.end)
        .group_by(events.c.source, events.c.state)
    )
    for source, state, number in connection.execute(query):
        counts[source]["stale" if state == "stale" else "accepted"] += number
    # Distinct rejected rows first received in the period: a row sent again is counted once, like a duplicate event.
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


def dashboard(connection: Connection, start: datetime, end: datetime, now: datetime) -> Dashboard:
    """Every figure of the governance dashboard for [start, end); overdue counts are as of `now`."""
    board = Dashboard(start, end)
    _rule_outcomes(connection, board)
    _raised(connection, board)
    _timings(connection, board)
    _overdue_and_escalated(connection, board, now)
    _feeds(connection, board)
    return board
