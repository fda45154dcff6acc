"""A child's multi-agency chronology (Working Together 2023: one joined-up record). Pure.

One row for each appointment outcome across services and sources, each flag raised and each change to it, each
task made and each thing done to it (with the note), each message sent and acknowledged (issue 18), and each
safeguarding status's start and end, in time order. The columns are those of a local safeguarding partnership's
chronology template: date, agency or service, event, significance, action taken, by whom. Significance is the
flag level the row is part of (red, amber) or "routine"; a correction (an outcome entered in error, an outcome
replaced) is a row of its own.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from typing import Protocol

from wnb.core.calendar import LONDON
from wnb.core.csv_cells import csv_text
from wnb.core.domain import PersonContext
from wnb.core.wording import code_title, plain_code

COLUMNS = ("date", "agency or service", "event", "significance", "action taken", "by whom")
ROUTINE = "routine"
_RANK = {ROUTINE: 0, "amber": 1, "red": 2}
_ATTENDANCE_WORDS = {
    "attended": "attended",
    "attended-late": "attended late, seen",
    "late-not-seen": "arrived late, not seen",
    "did-not-attend": "not brought (did not attend)",
    "cancelled-by-patient": "cancelled by the family",
    "cancelled-by-provider": "cancelled by the service",
    "booked": "booked",
    "entered-in-error": "outcome entered in error (correction)",
}
_STATE_WORDS = {
    "superseded": "; replaced by a later outcome for the same appointment",
    "stale": "; arrived after a newer outcome, so not evaluated",
}
_TASK_ACTIONS = {
    "created": "task opened",
    "acknowledged": "task acknowledged",
    "completed": "task done",
    "cancelled": "task cancelled",
    "escalated": "task escalated",
    "due-moved-earlier": "task due earlier",
    "sent": "task's message sent, awaiting acknowledgement",
    "letter-prepared": "letter prepared to print",
    "message-undelivered": "task's message not delivered, back to requested",
}


class AppointmentRow(Protocol):
    source: str
    appointment_id: str
    service: str
    appointment_at: datetime
    attendance: str
    priority: str | None
    outcome: str | None
    state: str


class FlagRow(Protocol):
    id: int
    code: str
    level: str
    status: str
    raised_at: datetime
    status_reason: str | None
    changed_at: datetime | None
    changed_by: str | None


class TaskRow(Protocol):
    id: int
    service: str
    code: str


class HistoryRow(Protocol):
    task_id: int
    at: datetime
    actor: str
    action: str
    owner_role: str
    due_at: datetime
    note: str | None


class MessageRow(Protocol):
    """A message sent from a task (issue 18): its row when it went out, and when it was acknowledged (read-only, as
    wnb.store.communications gives it)."""

    @property
    def task_id(self) -> int: ...

    @property
    def reference(self) -> str: ...

    @property
    def recipient_name(self) -> str: ...

    @property
    def recipient_role(self) -> str: ...

    @property
    def channel(self) -> str: ...

    @property
    def sent_at(self) -> datetime | None: ...

    @property
    def sent_by(self) -> str | None: ...

    @property
    def acknowledged_at(self) -> datetime | None: ...

    @property
    def acknowledged_by(self) -> str | None: ...

    @property
    def acknowledged_via(self) -> str | None: ...


@dataclass(frozen=True)
class Entry:
    at: datetime
    agency: str
    event: str
    significance: str
    action: str
    by: str

    def cells(self) -> tuple[str, ...]:
        return (
            self.at.astimezone(LONDON).strftime("%Y-%m-%d %H:%M"),
            self.agency,
            self.event,
            self.significance,
            self.action,
            self.by,
        )


def _highest(levels: Iterable[str]) -> str:
    return max(levels, key=lambda level: _RANK.get(level, 0), default=ROUTINE)


def build(
    appointments: Sequence[AppointmentRow],
    flags: Sequence[FlagRow],
    tasks: Sequence[TaskRow],
    history: Sequence[HistoryRow],
    context: PersonContext | None,
    flags_of_appointment: Mapping[tuple[str, str], Sequence[int]],
    appointments_of_task: Mapping[int, Sequence[tuple[str, str]]],
    titles: Callable[[str], str] = code_title,
    messages: Sequence[MessageRow] = (),
) -> list[Entry]:
    """Every row of the child's chronology, oldest first (rows at the same instant keep the order built); flags
    and tasks by their `titles` (the ruleset's, Ruleset.title)."""
    level_of_flag = {flag.id: flag.level for flag in flags}

    def significance(keys: Iterable[tuple[str, str]]) -> str:
        return _highest(
            level_of_flag[i] for key in keys for i in flags_of_appointment.get(key, ()) if i in level_of_flag
        )

    rows: list[Entry] = []
    for row in appointments:
        detail = ", ".join(plain_code(part) for part in (row.priority, row.outcome) if part)
        event = _ATTENDANCE_WORDS.get(row.attendance, plain_code(row.attendance))
        event += f" ({detail})" if detail else ""
        event += f"; appointment {row.appointment_id} from {row.source}" + _STATE_WORDS.get(row.state, "")
        rows.append(
            Entry(
                row.appointment_at, row.service, event, significance([(row.source, row.appointment_id)]), "", row.source
            )
        )
    for flag in flags:
        rows.append(
            Entry(flag.raised_at, "wnb", f"{flag.level} flag raised: {titles(flag.code)}", flag.level, "", "wnb")
        )
        if flag.status != "active" and flag.changed_at is not None:
            became = "withdrawn: entered in error" if flag.status == "entered-in-error" else "resolved"
            rows.append(
                Entry(
                    flag.changed_at,
                    "wnb",
                    f"{flag.level} flag {became}: {titles(flag.code)}",
                    flag.level,
                    flag.status_reason or "",
                    flag.changed_by or "",
                )
            )
    task_by_id = {task.id: task for task in tasks}
    # A message's rows come before the task changes they caused at the same instant (acknowledged, then done).
    for message in messages:
        task = task_by_id.get(message.task_id)
        agency = task.service if task is not None else "wnb"
        level = significance(appointments_of_task.get(message.task_id, ()))
        to = f"{message.recipient_name} ({plain_code(message.recipient_role)})"
        if message.sent_at is not None:
            event = f"message {message.reference} sent by {message.channel} to {to}"
            rows.append(Entry(message.sent_at, agency, event, level, f"task T{message.task_id}", message.sent_by or ""))
        if message.acknowledged_at is not None:
            event = f"message {message.reference} acknowledged by {to} ({message.acknowledged_via or 'unknown'})"
            rows.append(Entry(message.acknowledged_at, agency, event, level, "", message.acknowledged_by or ""))
    for change in history:
        task = task_by_id.get(change.task_id)
        if task is None:
            continue
        what = _TASK_ACTIONS.get(change.action, plain_code(change.action))
        event = f"{what}: {titles(task.code)} (T{task.id}), with {change.owner_role}"
        rows.append(
            Entry(
                change.at,
                task.service,
                event,
                significance(appointments_of_task.get(task.id, ())),
                change.note or "",
                change.actor,
            )
        )
    for status in context.statuses if context is not None else ():
        words = plain_code(status.kind)
        rows.append(
            Entry(_midnight(status.start), "children's social care", f"{words} started", ROUTINE, "", "context")
        )
        if status.end is not None:
            rows.append(
                Entry(_midnight(status.end), "children's social care", f"{words} ended", ROUTINE, "", "context")
            )
    return sorted(rows, key=lambda entry: entry.at)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), LONDON)


def as_csv(entries: Sequence[Entry]) -> str:
    """The chronology as CSV, a header first; cells that would start a formula are kept as text."""
    return csv_text([COLUMNS, *(entry.cells() for entry in entries)])


def as_json(nhs_number: str, entries: Sequence[Entry]) -> str:
    rows = [{**asdict(entry), "at": entry.at.isoformat()} for entry in entries]
    return json.dumps({"nhs_number": nhs_number, "entries": rows}, indent=2)


PRINT_CSS = (
    "body{font:11pt system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse;width:100%}"
    "th,td{border:1px solid #555;padding:.3rem;text-align:left;vertical-align:top}"
    "@media print{body{margin:0}tr{break-inside:avoid}thead{display:table-header-group}}"
)
# The printable page's own Content-Security-Policy: nothing but its one inline style, by hash.
PRINT_POLICY = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(PRINT_CSS.encode()).digest()).decode()
    + "'; frame-ancestors 'none'"
)


def as_html(nhs_number: str, entries: Sequence[Entry], made_at: datetime) -> str:
    """A printable page: one table, the columns of the template, no scripts."""
    head = "".join(f"<th scope=col>{html.escape(name)}</th>" for name in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in entry.cells()) + "</tr>" for entry in entries
    )
    made = made_at.astimezone(LONDON).strftime("%a %d %b %Y %H:%M %Z")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Chronology for NHS {html.escape(nhs_number)}</title><style>{PRINT_CSS}</style></head><body>"
        f"<h1>Multi-agency chronology: NHS {html.escape(nhs_number)}</h1>"
        f"<p>Made by wnb on {html.escape(made)} (UK time). Official-sensitive: share only with those who need it.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>\n"
    )
