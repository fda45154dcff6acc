"""The lifecycle's rules as values (DOMAIN.md §5.2–5.7). Pure.

Given a decision and the flags and tasks as they stand, say what changes: a new flag or a link to the active
flag of that code (one active flag per code), a new task or a repeat of the open one (its due time only ever
moves earlier), an escalation step up the task's chain, a person's transition of a task, a withdrawal of what
an appointment alone supported. wnb/service/effects.py writes these plans, through one writer, and audits them.

The current state comes in as rows the store read; only the attributes the Protocols below name are used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Protocol

from wnb.core.calendar import add_working_days, london_date, london_time_on, next_escalation_due
from wnb.core.domain import Decision, FlagDecision, FlagStatus, Role, TaskDecision, TaskStatus
from wnb.core.errors import InvalidAction, NoteRequired
from wnb.core.kinds import OPEN_TASK_STATUSES as OPEN_TASK_STATUSES
from wnb.core.refs import flag_ref, task_ref

# What a person may take on, hand over or put back: not a task whose message is out, waiting for the recipient
# (its acknowledgement, or its failure, decides what happens next).
WORKABLE_TASK_STATUSES = (TaskStatus.REQUESTED.value, TaskStatus.ACCEPTED.value)


class FlagState(Protocol):
    id: int
    rule_ids: Sequence[str]


class TaskState(Protocol):
    id: int
    rule_ids: Sequence[str]
    due_at: datetime


class EscalatingTask(Protocol):
    id: int
    owner_role: str
    escalation_level: int
    due_at: datetime
    assignee: str | None


class AssignableTask(Protocol):
    id: int
    status: str
    owner_role: str
    assignee: str | None


# ---- what a decision changes ----


@dataclass(frozen=True)
class NewFlag:
    wanted: FlagDecision


@dataclass(frozen=True)
class LinkToFlag:
    """The code's flag is already active: link the event to it; `rule_ids` is its new list, if that grows."""

    flag_id: int
    wanted: FlagDecision
    rule_ids: tuple[str, ...] | None


@dataclass(frozen=True)
class NewTask:
    wanted: TaskDecision


@dataclass(frozen=True)
class RepeatTask:
    """The (service, code)'s task is open: link to it; `rule_ids` if its list grows, `due_at` if earlier."""

    task_id: int
    wanted: TaskDecision
    rule_ids: tuple[str, ...] | None
    due_at: datetime | None


FlagChange = NewFlag | LinkToFlag
TaskChange = NewTask | RepeatTask


@dataclass(frozen=True)
class Plan:
    flags: tuple[FlagChange, ...]
    tasks: tuple[TaskChange, ...]


def _merged(held: Sequence[str], asked: Sequence[str]) -> tuple[str, ...] | None:
    merged = tuple(dict.fromkeys([*held, *asked]))
    return None if merged == tuple(held) else merged


def plan_flags(wanted: Sequence[FlagDecision], active: Mapping[str, FlagState]) -> tuple[FlagChange, ...]:
    """One active flag per code: raise a flag for a code without one, else link to the one there is."""
    changes: list[FlagChange] = []
    for flag in wanted:
        held = active.get(flag.code)
        if held is None:
            changes.append(NewFlag(flag))
        else:
            changes.append(LinkToFlag(held.id, flag, _merged(held.rule_ids, flag.rule_ids)))
    return tuple(changes)


def plan_tasks(
    wanted: Sequence[TaskDecision], open_tasks: Mapping[tuple[str, str], TaskState]
) -> tuple[TaskChange, ...]:
    """One open task per (service, code), as they stand before any is applied; a repeat never delays it."""
    changes: list[TaskChange] = []
    for task in wanted:
        held = open_tasks.get((task.service, task.code))
        if held is None:
            changes.append(NewTask(task))
        else:
            earlier = task.due_at if task.due_at < held.due_at else None
            changes.append(RepeatTask(held.id, task, _merged(held.rule_ids, task.rule_ids), earlier))
    return tuple(changes)


def plan(
    decision: Decision, active_flags: Mapping[str, FlagState], open_tasks: Mapping[tuple[str, str], TaskState]
) -> Plan:
    """Everything a decision changes, given the person's active flags and the open tasks it names."""
    return Plan(plan_flags(decision.flags, active_flags), plan_tasks(decision.tasks, open_tasks))


# ---- what a sweep changes ----


@dataclass(frozen=True)
class Escalation:
    task_id: int
    from_role: str
    to_role: str
    from_level: int
    to_level: int
    old_due_at: datetime
    due_at: datetime
    cleared_assignee: str | None = None  # the person it was assigned to: it goes to the next role, not to them


def plan_escalation(
    task: EscalatingTask, chain: Sequence[Role], now: datetime, delay_working_days: int, day_end: time
) -> Escalation | None:
    """Up the chain as many levels as are due by `now`; None at the end of its chain (it stays, overdue)."""
    level, due = task.escalation_level, task.due_at
    while due <= now and level + 1 < len(chain):
        level, due = level + 1, next_escalation_due(due, delay_working_days, day_end)
    if level == task.escalation_level:
        return None
    return Escalation(
        task.id, task.owner_role, chain[level].value, task.escalation_level, level, task.due_at, due, task.assignee
    )


# ---- what people and corrections change ----


@dataclass(frozen=True)
class Transition:
    """What a person's action on a task may start from, the status it gives (None: the status stays) and the verb
    its history and audit record use."""

    from_statuses: tuple[str, ...]
    to_status: TaskStatus | None
    verb: str


TASK_TRANSITIONS: dict[str, Transition] = {
    "ack": Transition((TaskStatus.REQUESTED.value,), TaskStatus.ACCEPTED, "acknowledged"),
    "complete": Transition(OPEN_TASK_STATUSES, TaskStatus.COMPLETED, "completed"),
    "cancel": Transition(OPEN_TASK_STATUSES, TaskStatus.CANCELLED, "cancelled"),
    # Who owns the work (issue 16): claiming is taking it on, so a requested task claimed is acknowledged too.
    "claim": Transition(WORKABLE_TASK_STATUSES, TaskStatus.ACCEPTED, "claimed"),
    "assign": Transition(WORKABLE_TASK_STATUSES, None, "assigned"),
    "release": Transition(WORKABLE_TASK_STATUSES, None, "released"),
}
ASSIGNMENT_ACTIONS = ("claim", "assign", "release")
NOTE_REQUIRED = ("complete", "cancel")  # a task closed says what was done, or why it was not needed


def task_transition(task_id: int, status: str, action: str) -> tuple[TaskStatus, str]:
    """The status an action gives a task now `status`, and its verb; InvalidAction when not allowed."""
    if action not in TASK_TRANSITIONS:
        raise InvalidAction(f"unknown task action {action!r}; use {', '.join(TASK_TRANSITIONS)}")
    transition = TASK_TRANSITIONS[action]
    if status not in transition.from_statuses:
        raise InvalidAction(
            f"task {task_ref(task_id)} is {status}; only a task that is "
            f"{' or '.join(transition.from_statuses)} can be {transition.verb}"
        )
    return transition.to_status or TaskStatus(status), transition.verb


def check_task_note(task_id: int, action: str, note: str | None) -> None:
    """Completing or cancelling a task needs a note that is not blank (what was done, or why not needed)."""
    if action in NOTE_REQUIRED and not (note or "").strip():
        verb = TASK_TRANSITIONS[action].verb
        raise NoteRequired(
            f"task {task_ref(task_id)} can be {verb} only with a note saying "
            f"{'what was done' if action == 'complete' else 'why it is not needed'}"
        )


@dataclass(frozen=True)
class Member:
    """An account as an assignment needs it: its name, role, and whether it is enabled."""

    name: str
    role: str
    enabled: bool


@dataclass(frozen=True)
class Assignment:
    """A claim, an assignment or a release: the task's status and assignee after it, and whom it was with."""

    task_id: int
    action: str
    verb: str
    status: TaskStatus
    assignee: str | None
    previous: str | None
    reason: str | None


def plan_assignment(
    task: AssignableTask, action: str, to: Member | None = None, reason: str | None = None
) -> Assignment:
    """Who a task is with after a claim (`to` is the one claiming), an assignment `to` a member of its role, or a
    release.

    A task is assigned only to an enabled account of its owner role; taking it from one person to another is a
    reassignment and needs a reason; a task assigned to someone else is not claimed over them (a lead reassigns
    it); only an assigned task is released.
    """
    status, verb = task_transition(task.id, task.status, action)
    ref, reason = task_ref(task.id), (reason or "").strip() or None
    if action == "release":
        if task.assignee is None:
            raise InvalidAction(f"task {ref} is not assigned to anyone, so there is nothing to release")
        return Assignment(task.id, action, verb, status, None, task.assignee, reason)
    if action == "claim" and to is not None and task.assignee not in (None, to.name):
        raise InvalidAction(
            f"task {ref} is assigned to {task.assignee}; they release it, or a lead reassigns it, before it is claimed"
        )
    if to is None:
        raise InvalidAction(f"assigning task {ref} needs the account it is assigned to")
    if not to.enabled:
        raise InvalidAction(f"the account {to.name} is disabled, so task {ref} cannot be assigned to it")
    if to.role != task.owner_role:
        raise InvalidAction(
            f"task {ref} is for the {task.owner_role} role and {to.name} is {to.role}; "
            "a task is assigned only to a member of its role"
        )
    if task.assignee == to.name:
        if action == "claim" and status.value != task.status:
            return Assignment(task.id, action, verb, status, to.name, task.assignee, reason)
        raise InvalidAction(f"task {ref} is assigned to {to.name} already")
    if action == "assign" and task.assignee is not None and reason is None:
        raise InvalidAction(
            f"task {ref} is assigned to {task.assignee}; reassigning it to {to.name} needs a reason (--reason)"
        )
    return Assignment(task.id, action, verb, status, to.name, task.assignee, reason)


def check_flag_resolution(flag_id: int, status: str, reason: str) -> None:
    """A person resolves only an active flag, and says why."""
    if status != FlagStatus.ACTIVE.value:
        raise InvalidAction(f"flag {flag_ref(flag_id)} is {status}; only an active flag can be resolved")
    if not reason.strip():
        raise InvalidAction("resolving a flag needs a reason")


def withdrawal(kind: str, status: str) -> FlagStatus | TaskStatus | None:
    """What an item no appointment supports any more becomes: an active flag entered-in-error, an open task
    cancelled; None when it is already closed (a person's decision stands)."""
    if kind == "flag":
        return FlagStatus.ENTERED_IN_ERROR if status == FlagStatus.ACTIVE.value else None
    return TaskStatus.CANCELLED if status in OPEN_TASK_STATUSES else None


# ---- waiting on someone, and the acknowledgement timeout (issue 16) ----


class AcknowledgedTask(Protocol):
    id: int
    owner_role: str
    escalation_level: int
    acknowledged_at: datetime | None
    waiting_until: datetime | None


def check_wait(task_id: int, status: str, until: date, today: date, max_working_days: int) -> None:
    """An acknowledged task may wait for a reply until a later date, at most `max_working_days` working days on."""
    if status != TaskStatus.ACCEPTED.value:
        raise InvalidAction(f"task {task_ref(task_id)} is {status}; only an acknowledged task can wait for a reply")
    if until <= today:
        raise InvalidAction(f"waiting until {until:%d %b %Y}: give a date after today")
    if until > add_working_days(today, max_working_days):
        raise InvalidAction(
            f"waiting until {until:%d %b %Y} is more than {max_working_days} working days away (the ruleset's "
            "escalation.waiting_max_working_days); ask again nearer the time"
        )


def reply_due(until: date) -> datetime:
    """When a wait ends: the start of its date, UK time (the task is back at the top of its owner's list)."""
    return london_time_on(until, time(0))


@dataclass(frozen=True)
class AcknowledgementTimeout:
    """An acknowledged task not completed in time, back to `requested` at the next role of its chain."""

    task_id: int
    from_role: str
    to_role: str
    from_level: int
    to_level: int
    deadline: datetime
    due_at: datetime


def plan_acknowledgement_timeout(
    task: AcknowledgedTask,
    chain: Sequence[Role],
    now: datetime,
    timeout_working_days: int,
    delay_working_days: int,
    day_end: time,
) -> AcknowledgementTimeout | None:
    """Due at `day_end` on the n-th working day after its acknowledgement; None before that, or while it waits
    for a reply. At the end of its chain it goes back to `requested` with the role it has."""
    if task.acknowledged_at is None or (task.waiting_until is not None and task.waiting_until > now):
        return None
    deadline = london_time_on(add_working_days(london_date(task.acknowledged_at), timeout_working_days), day_end)
    if now < deadline:
        return None
    level = min(task.escalation_level + 1, len(chain) - 1)
    due = next_escalation_due(deadline, delay_working_days, day_end)
    return AcknowledgementTimeout(
        task.id, task.owner_role, chain[level].value, task.escalation_level, level, deadline, due
    )
