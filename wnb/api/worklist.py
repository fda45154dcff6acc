"""Reading and acting: flags, tasks, a child's timeline (an audited read), and the actions of people."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from wnb.api.auth import FlagResolver, Reader, TaskActor, TaskAssigner, TaskClaimer, TaskReleaser
from wnb.api.problems import PROBLEM_RESPONSES
from wnb.core.domain import Role, TaskStatus
from wnb.core.nhs import nhs_number_problem, normalise_nhs_number
from wnb.service import Service
from wnb.store import children, listing, repo
from wnb.store.audit import AuditLog
from wnb.store.db import writing

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)


def _checked_nhs_number(value: str) -> str:
    number = normalise_nhs_number(value)
    if problem := nhs_number_problem(number):
        raise ValueError(problem)
    return number


NhsNumber = Annotated[str, AfterValidator(_checked_nhs_number)]


class TaskAction(StrEnum):
    """What a person does with a task: acknowledge it (accepted), complete it or cancel it."""

    ACK = "ack"
    COMPLETE = "complete"
    CANCEL = "cancel"


class NoteBody(BaseModel):
    """A note on a task action: required to complete or cancel (what was done, or why it is not needed)."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(
        default=None,
        max_length=4000,
        description="Kept in the task's history; required, not blank, to complete or cancel.",
    )


class AssignBody(BaseModel):
    """Whom a task is assigned to, and why when it is taken from someone else."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=100, description="The user name of an enabled account of its role.")
    reason: str | None = Field(
        default=None, max_length=4000, description="Why; required to take it from the person it is assigned to."
    )


class ResolveBody(BaseModel):
    """Why a flag is resolved."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=4000, description="Why the flag is resolved.")


_ONE_PERSON = "Only this person's (ten digits; spaces are dropped)."
_RULE_IDS = "The rules that raised or repeated it, e.g. `WNB-06` (docs/decision-chart.md)."
_EVENT_IDS = "The events linked to it, each as `source/event_id`."


class Flag(BaseModel):
    """A safeguarding flag on a child's record: at most one active per child and code."""

    id: str = Field(description="`F` and a number, e.g. `F12`: what `wnb explain` and the resolve route take.")
    nhs_number: str = Field(description="The child's (or adult's) NHS number.")
    code: str = Field(description="What the flag says, e.g. `repeat-wnb` (docs/decision-chart.md).")
    level: str = Field(description="red or amber.")
    status: str = Field(description="active, inactive (resolved by a person, with a reason) or entered-in-error.")
    rule_ids: list[str] = Field(description=_RULE_IDS)
    raised_at: str = Field(description="When it was raised, ISO-8601 UTC.")
    event_ids: list[str] = Field(description=_EVENT_IDS)


class Task(BaseModel):
    """Something a role must do by a due time; it escalates up a chain of roles when nobody acknowledges it."""

    id: str = Field(description="`T` and a number, e.g. `T7`: what `wnb explain` and the task routes take.")
    nhs_number: str = Field(description="The person's NHS number; empty for an admin task about wnb itself.")
    service: str = Field(description="The clinic or team it concerns (for an admin task, what it is about).")
    code: str = Field(description="What to do, e.g. `inform-gp` (docs/decision-chart.md).")
    owner_role: str = Field(description="The role it is with now (it changes when it escalates).")
    status: str = Field(
        description="requested, accepted (acknowledged), awaiting-acknowledgement (sent to the recipient), completed "
        "or cancelled."
    )
    due_at: str = Field(description="When it is due, ISO-8601 UTC (`Z`).")
    escalation_level: int = Field(description="How many times it has escalated: 0 while with its first owner.")
    assignee: str | None = Field(
        description="The user name of the person it is assigned to (one of its owner role); null while with the role."
    )
    rule_ids: list[str] = Field(description=_RULE_IDS)
    event_ids: list[str] = Field(description=_EVENT_IDS)


class TimelineEvent(BaseModel):
    """One stored event of the child's, as received (see AttendanceEvent for its fields)."""

    id: str = Field(description="`E` and a number: the event as stored.")
    source: str = Field(description="The clinic system that sent it.")
    event_id: str = Field(description="Its id within the source.")
    service: str = Field(description="The clinic or team.")
    appointment_id: str = Field(description="The appointment, within the source.")
    appointment_at: str = Field(description="When the appointment was, ISO-8601 UTC.")
    attendance: str = Field(description="What happened, by canonical name (e.g. `did-not-attend`).")
    priority: str | None = Field(description="routine, urgent or two-week-wait, if given.")
    outcome: str | None = Field(description="discharged, another-appointment or appointment-to-be-made-later.")
    recorded_at: str = Field(description="When the source recorded it (else when wnb received it), ISO-8601 UTC.")
    state: str = Field(description="current, superseded or stale")


class Timeline(BaseModel):
    """A child's appointments across services, with every flag and task of theirs (any status)."""

    nhs_number: str = Field(description="The child's NHS number.")
    events: list[TimelineEvent] = Field(description="Their stored events (current, superseded, stale), by time.")
    flags: list[Flag] = Field(description="Their flags, whatever the status.")
    tasks: list[Task] = Field(description="Their tasks, whatever the status, soonest due first.")


@router.get("/flags", summary="Flags, active ones unless asked otherwise")
def get_flags(
    request: Request,
    principal: Reader,
    status: Annotated[
        Literal["active", "inactive", "entered-in-error", "all"], Query(description="Only flags of this status.")
    ] = "active",
    nhs_number: Annotated[NhsNumber | None, Query(description=_ONE_PERSON)] = None,
) -> list[Flag]:
    service: Service = request.app.state.service
    with service.db.connect() as connection:
        items = listing.flags(connection, include_closed=status != "active", nhs_number=nhs_number)
    return [Flag(**item) for item in items if status in ("all", item["status"])]


@router.get("/tasks", summary="Tasks, open ones soonest due first unless asked otherwise")
def get_tasks(
    request: Request,
    principal: Reader,
    role: Annotated[Role | None, Query(description="Only tasks this role owns now.")] = None,
    status: Annotated[
        Literal["open", "all", "requested", "accepted", "awaiting-acknowledgement", "completed", "cancelled"],
        Query(description="Only tasks of this status (`open`: requested, accepted or awaiting-acknowledgement)."),
    ] = "open",
    nhs_number: Annotated[NhsNumber | None, Query(description=_ONE_PERSON)] = None,
    due_before: Annotated[
        AwareDatetime | None, Query(description="Only tasks due before this time, ISO-8601 with offset.")
    ] = None,
    assignee: Annotated[
        str | None,
        Query(max_length=100, description="Only tasks assigned to this person (a user name); `me`: the caller."),
    ] = None,
) -> list[Task]:
    service: Service = request.app.state.service
    if assignee == "me":
        assignee = principal.name
    with service.db.connect() as connection:
        items = listing.tasks(
            connection,
            include_closed=status != "open",
            role=role.value if role else None,
            nhs_number=nhs_number,
            assignee=assignee,
        )
    wanted = {s.value for s in TaskStatus} if status == "all" else {status}
    if status == "open":
        wanted = set(repo.OPEN_STATUSES)
    return [
        Task(**item)
        for item in items
        if item["status"] in wanted and (due_before is None or _instant(item["due_at"]) < due_before)
    ]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@router.get("/people/{nhs_number}/timeline", summary="A child's appointments, flags and tasks (an audited read)")
def get_timeline(
    nhs_number: Annotated[NhsNumber, Path(description="The child's NHS number.")], request: Request, principal: Reader
) -> Timeline:
    service: Service = request.app.state.service
    with writing(service.db) as connection:
        rows = children.appointments(connection, nhs_number)
        timeline = Timeline(
            nhs_number=nhs_number,
            events=[_timeline_event(row) for row in rows],
            flags=[Flag(**item) for item in listing.flags(connection, include_closed=True, nhs_number=nhs_number)],
            tasks=[Task(**item) for item in listing.tasks(connection, include_closed=True, nhs_number=nhs_number)],
        )
        audit = AuditLog(connection)
        audit.append(service.clock(), principal.actor, "record_read", [nhs_number], {"view": "timeline"})
        audit.finish()
    return timeline


def _timeline_event(row: Any) -> TimelineEvent:
    return TimelineEvent(
        id=f"E{row.id}",
        source=row.source,
        event_id=row.event_id,
        service=row.service,
        appointment_id=row.appointment_id,
        appointment_at=row.appointment_at.isoformat(),
        attendance=row.attendance,
        priority=row.priority,
        outcome=row.outcome,
        recorded_at=row.recorded_at.isoformat(),
        state=row.state,
    )


def _task(service: Service, task_id: int) -> Task:
    with service.db.connect() as connection:
        row = repo.task_by_id(connection, task_id)
        assert row is not None  # the action just changed it
        items = listing.tasks(connection, include_closed=True, nhs_number=row.nhs_number)
    return next(Task(**item) for item in items if item["id"] == f"T{task_id}")


def _flag(service: Service, flag_id: int) -> Flag:
    with service.db.connect() as connection:
        row = repo.flag_by_id(connection, flag_id)
        assert row is not None  # the action just changed it
        items = listing.flags(connection, include_closed=True, nhs_number=row.nhs_number)
    return next(Flag(**item) for item in items if item["id"] == f"F{flag_id}")


_TASK_ID = "The task's id, e.g. `T7`."


# Before the route of `{action}`, which would take `claim` for an action it does not know.
@router.post("/tasks/{task_id}/claim", summary="Claim a task of one's role: assign it to oneself")
def claim_task(task_id: Annotated[str, Path(description=_TASK_ID)], request: Request, principal: TaskClaimer) -> Task:
    """A requested task claimed is acknowledged too; a task assigned to someone else is refused (409)."""
    service: Service = request.app.state.service
    row = service.assign_task(task_id, "claim", principal)
    return _task(service, row.id)


@router.post("/tasks/{task_id}/assign", summary="Assign or reassign a task to a named member of its role")
def assign_task(
    task_id: Annotated[str, Path(description=_TASK_ID)], request: Request, principal: TaskAssigner, body: AssignBody
) -> Task:
    """For leads (wnb.core.policy); the assignee is e-mailed at their account's address when notifications are on."""
    service: Service = request.app.state.service
    row = service.assign_task(task_id, "assign", principal, body.to, body.reason)
    return _task(service, row.id)


@router.post("/tasks/{task_id}/release", summary="Hand a task assigned to a person back to its role")
def release_task(
    task_id: Annotated[str, Path(description=_TASK_ID)], request: Request, principal: TaskReleaser
) -> Task:
    """By its assignee, or one who may assign it."""
    service: Service = request.app.state.service
    row = service.assign_task(task_id, "release", principal)
    return _task(service, row.id)


class WaitBody(BaseModel):
    """Until when an acknowledged task waits for a reply, and why."""

    model_config = ConfigDict(extra="forbid")

    until: date = Field(description="The date the reply is due (UK date); at most the ruleset's working days ahead.")
    reason: str = Field(min_length=1, max_length=4000, description="Whose reply, and for what; kept in its history.")


@router.post("/tasks/{task_id}/wait", summary="Mark an acknowledged task waiting for a reply until a date")
def wait_on_task(
    task_id: Annotated[str, Path(description=_TASK_ID)], request: Request, principal: TaskActor, body: WaitBody
) -> Task:
    """At that date the task is back at the top of its owner's list and they are told (the sweep)."""
    service: Service = request.app.state.service
    row = service.wait_on_task(task_id, body.until, body.reason, principal)
    return _task(service, row.id)


@router.post("/tasks/{task_id}/{action}", summary="Acknowledge, complete or cancel a task")
def act_on_task(
    task_id: Annotated[str, Path(description="The task's id, e.g. `T7`.")],
    action: Annotated[TaskAction, Path(description="ack, complete or cancel.")],
    request: Request,
    principal: TaskActor,
    body: NoteBody,
) -> Task:
    service: Service = request.app.state.service
    # The task's owners (wnb.core.policy), then a note to complete or cancel (wnb.core.plan: 422 on `note`).
    row = service.act_on_task(task_id, action.value, principal, body.note)
    return _task(service, row.id)


@router.post("/flags/{flag_id}/resolve", summary="Resolve an active flag, with a reason")
def resolve_flag(
    flag_id: Annotated[str, Path(description="The flag's id, e.g. `F12`.")],
    request: Request,
    principal: FlagResolver,
    body: ResolveBody,
) -> Flag:
    service: Service = request.app.state.service
    row = service.resolve_flag(flag_id, principal, body.reason)
    return _flag(service, row.id)
