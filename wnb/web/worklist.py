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
from wnb.web.session import CsrfChecked, Worker, Worklister

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


@router.get("/", response_class=HTMLResponse, summary="My worklist")
def worklist(
    request: Request, principal: Worklister, service: str = "", status: str = "open", role: str = ""
) -> Response:
    wnb: Service = request.app.state.service
    now = wnb.clock()
    # Everyone sees their own role's tasks; an administrator may look at any role's.
    assert principal.role is not None  # a person
    shown_role = (role or None) if principal.role is Role.ADMIN else principal.role.value
    if status not in ("open", "requested", "accepted"):
        status = "open"
    with wnb.db.connect() as connection:
        everything = worklist_rows(connection, wnb.ruleset, now, shown_role, None, "open")
    rows = [
        row
        for row in everything
        if (not service or row.task["service"] == service) and (status == "open" or row.task["status"] == status)
    ]
    counts = {
        "open": len(everything),
        "overdue": sum(row.overdue for row in everything),
        "red": sum(row.level == Level.RED.value for row in everything),
    }
    return render(
        request,
        "worklist.html",
        rows=rows,
        counts=counts,
        services=sorted({row.task["service"] for row in everything}),
        service=service,
        status=status,
        role=shown_role,
        roles=[r.value for r in Role if r not in (Role.CLINIC_SYSTEM, Role.GOVERNANCE)],
        now=now,
    )


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
        except (InvalidAction, NotFound) as error:  # e.g. a colleague completed it a moment ago
            flash(request, str(error), "error")
    target = back if back.startswith(PREFIX + "/") else PREFIX + "/"
    return RedirectResponse(target, status_code=303)
