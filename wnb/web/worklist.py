"""My worklist: the open tasks for my role, red before amber, overdue first, then soonest due; and acting on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from wnb.core.domain import Level, Role
from wnb.core.errors import InvalidAction, NotFound
from wnb.core.ruleset import Ruleset
from wnb.core.wording import due_in_words
from wnb.service import Service
from wnb.store import listing
from wnb.store.children import births
from wnb.web.render import PREFIX, age_in_words, flash, render, task_words
from wnb.web.session import Claimer, CsrfChecked, Releaser, Worker, Worklister

router = APIRouter()

ACTIONS = {"ack": "acknowledged", "complete": "completed"}


@dataclass(frozen=True)
class Row:
    """One task as the worklist shows it."""

    task: dict[str, Any]
    level: str
    overdue: bool
    due: str
    age: str

    @property
    def sort_key(self) -> tuple[int, int, str, str]:
        return (self.level != Level.RED.value, not self.overdue, self.task["due_at"], self.task["id"])


def red_rules(ruleset: Ruleset) -> frozenset[str]:
    """The rules whose flag is red: a task they asked for is urgent."""
    return frozenset(rule.id for rule in ruleset.rules if rule.flag and rule.flag.level is Level.RED)


def worklist_rows(
    connection: Connection, ruleset: Ruleset, now: datetime, role: str | None, service: str | None, status: str
) -> list[Row]:
    """The open tasks of `role` (None: every role), urgent first."""
    items = listing.tasks(connection, role=role)
    urgent = red_rules(ruleset)
    born = births(connection, {item["nhs_number"] for item in items})
    rows = []
    for item in items:
        if (service and item["service"] != service) or (status != "open" and item["status"] != status):
            continue
        due_at = datetime.fromisoformat(item["due_at"].replace("Z", "+00:00"))
        level = Level.RED.value if urgent & set(item["rule_ids"]) else Level.AMBER.value
        rows.append(
            Row(item, level, due_at <= now, due_in_words(due_at, now), age_in_words(born.get(item["nhs_number"]), now))
        )
    return sorted(rows, key=lambda row: row.sort_key)


WHOSE = {"all": "everyone's (my team's)", "mine": "assigned to me", "unassigned": "not assigned to anyone"}


def _is_whose(row: Row, whose: str, name: str) -> bool:
    assignee = row.task.get("assignee")
    return whose == "all" or (whose == "mine" and assignee == name) or (whose == "unassigned" and assignee is None)


@router.get("/", response_class=HTMLResponse, summary="My worklist")
def worklist(
    request: Request,
    principal: Worklister,
    service: str = "",
    status: str = "open",
    role: str = "",
    whose: str = "all",
) -> Response:
    wnb: Service = request.app.state.service
    now = wnb.clock()
    # Everyone sees their own role's tasks; an administrator may look at any role's.
    assert principal.role is not None  # a person
    shown_role = (role or None) if principal.role is Role.ADMIN else principal.role.value
    if status not in ("open", "requested", "accepted"):
        status = "open"
    if whose not in WHOSE:
        whose = "all"
    with wnb.db.connect() as connection:
        everything = worklist_rows(connection, wnb.ruleset, now, shown_role, None, "open")
    rows = [
        row
        for row in everything
        if (not service or row.task["service"] == service)
        and (status == "open" or row.task["status"] == status)
        and _is_whose(row, whose, principal.name)
    ]
    counts = {
        "open": len(everything),
        "overdue": sum(row.overdue for row in everything),
        "red": sum(row.level == Level.RED.value for row in everything),
        "mine": sum(row.task.get("assignee") == principal.name for row in everything),
    }
    return render(
        request,
        "worklist.html",
        rows=rows,
        counts=counts,
        services=sorted({row.task["service"] for row in everything}),
        service=service,
        status=status,
        whose=whose,
        whose_choices=WHOSE,
        role=shown_role,
        roles=[r.value for r in Role if r not in (Role.CLINIC_SYSTEM, Role.GOVERNANCE)],
        now=now,
    )


def _back(back: str) -> RedirectResponse:
    return RedirectResponse(back if back.startswith(PREFIX + "/") else PREFIX + "/", status_code=303)


# Before the route of `{action}`, which would take `claim` for an action it does not know.
@router.post("/tasks/{task_id}/claim", dependencies=[CsrfChecked], summary="Assign a task to me")
def claim(request: Request, task_id: str, principal: Claimer, back: Annotated[str, Form()] = "") -> RedirectResponse:
    wnb: Service = request.app.state.service
    try:  # a task of another role is refused by the service (wnb.core.policy): the refusal page, 403
        row = wnb.assign_task(task_id, "claim", principal)
        flash(request, f"Task T{row.id} ({task_words(row.code).lower()}) is assigned to you.")
    except (InvalidAction, NotFound) as error:  # e.g. a colleague claimed it a moment ago
        flash(request, str(error), "error")
    return _back(back)


@router.post("/tasks/{task_id}/release", dependencies=[CsrfChecked], summary="Hand a task back to its role")
def release(request: Request, task_id: str, principal: Releaser, back: Annotated[str, Form()] = "") -> RedirectResponse:
    wnb: Service = request.app.state.service
    try:
        row = wnb.assign_task(task_id, "release", principal)
        flash(request, f"Task T{row.id} ({task_words(row.code).lower()}) is back with the {row.owner_role} role.")
    except (InvalidAction, NotFound) as error:
        flash(request, str(error), "error")
    return _back(back)


@router.post("/tasks/{task_id}/{action}", dependencies=[CsrfChecked], summary="Acknowledge or complete a task")
def act(
    request: Request,
    task_id: str,
    action: str,
    principal: Worker,
    note: Annotated[str, Form(max_length=4000)] = "",
    back: Annotated[str, Form()] = "",
) -> RedirectResponse:
    wnb: Service = request.app.state.service
    if action not in ACTIONS:
        flash(request, f"Unknown action {action!r}: use acknowledge or complete.", "error")
    else:
        try:  # a task of a role not theirs is refused by the service (wnb.core.policy): the refusal page, 403
            row = wnb.act_on_task(task_id, action, principal, note.strip() or None)
            flash(request, f"Task T{row.id} ({task_words(row.code, wnb.ruleset)}) {ACTIONS[action]}.")
        except (InvalidAction, NotFound) as error:  # a colleague completed it a moment ago; no note (NoteRequired)
            flash(request, str(error), "error")
    return _back(back)
