"""Reading and acting: flags, tasks, a child's timeline (an audited read), and the actions of people."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from wnb.api.auth import FlagResolver, Reader, TaskActor
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
    ACK = "ack"
    COMPLETE = "complete"
    CANCEL = "cancel"


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=4000, description="Kept in the task's history.")


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=4000, description="Why the flag is resolved.")


class Flag(BaseModel):
    id: str
    nhs_number: str
    code: str
    level: str
    status: str
    rule_ids: list[str]
    raised_at: str
    event_ids: list[str]


class Task(BaseModel):
    id: str
    nhs_number: str
    service: str
    code: str
    owner_role: str
    status: str
    due_at: str
    escalation_level: int
    rule_ids: list[str]
    event_ids: list[str]


class TimelineEvent(BaseModel):
    id: str
    source: str
    event_id: str
    service: str
    appointment_id: str
    appointment_at: str
    attendance: str
    priority: str | None
    outcome: str | None
    recorded_at: str
    state: str = Field(description="current, superseded or stale")


class Timeline(BaseModel):
    nhs_number: str
    events: list[TimelineEvent]
    flags: list[Flag]
    tasks: list[Task]


@router.get("/flags", summary="Flags, active ones unless asked otherwise")
def get_flags(
    request: Request,
    principal: Reader,
    status: Literal["active", "inactive", "entered-in-error", "all"] = "active",
    nhs_number: Annotated[NhsNumber | None, Query()] = None,
) -> list[Flag]:
    service: Service = request.app.state.service
    with service.db.connect() as connection:
        items = listing.flags(connection, include_closed=status != "active", nhs_number=nhs_number)
    return [Flag(**item) for item in items if status in ("all", item["status"])]


@router.get("/tasks", summary="Tasks, open ones soonest due first unless asked otherwise")
def get_tasks(
    request: Request,
    principal: Reader,
    role: Role | None = None,
    status: Literal["open", "all", "requested", "accepted", "completed", "cancelled"] = "open",
    nhs_number: Annotated[NhsNumber | None, Query()] = None,
    due_before: Annotated[AwareDatetime | None, Query(description="ISO-8601 with offset")] = None,
) -> list[Task]:
    service: Service = request.app.state.service
    with service.db.connect() as connection:
        items = listing.tasks(
            connection, include_closed=status != "open", role=role.value if role else None, nhs_number=nhs_number
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
def get_timeline(nhs_number: NhsNumber, request: Request, principal: Reader) -> Timeline:
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


@router.post("/tasks/{task_id}/{action}", summary="Acknowledge, complete or cancel a task")
def act_on_task(task_id: str, action: TaskAction, request: Request, principal: TaskActor, body: NoteBody) -> Task:
    service: Service = request.app.state.service
    row = service.act_on_task(task_id, action.value, principal, body.note)  # the task's owners: wnb.core.policy
    return _task(service, row.id)


@router.post("/flags/{flag_id}/resolve", summary="Resolve an active flag, with a reason")
def resolve_flag(flag_id: str, request: Request, principal: FlagResolver, body: ResolveBody) -> Flag:
    service: Service = request.app.state.service
    row = service.resolve_flag(flag_id, principal, body.reason)
    return _flag(service, row.id)
