"""My worklist: the open tasks for my role, red before amber, overdue first, then soonest due; and acting on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection

from wnb.core import policy
from wnb.core.calendar import london_date
from wnb.core.domain import Level, Role
from wnb.core.errors import Forbidden, InvalidAction, NotFound, WnbError
from wnb.core.policy import Action, Principal
from wnb.core.ruleset import Ruleset
from wnb.core.wording import due_in_words
from wnb.service import Service
from wnb.service.sharing_effects import send_choices
from wnb.store import worklist as worklist_query
from wnb.store.accounts import enabled_members
from wnb.store.children import births
from wnb.web.render import PREFIX, age_in_words, flash, render, task_words
from wnb.web.session import Assigner, Claimer, CsrfChecked, Releaser, Worker, Worklister
from wnb.web.sharing import CHANNEL_WORDS

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


def red_rules(ruleset: Ruleset) -> frozenset[str]:
    """The rules whose flag is red: a task they asked for is urgent."""
    return frozenset(rule.id for rule in ruleset.rules if rule.flag and rule.flag.level is Level.RED)


def _row(task: dict[str, Any], urgent: frozenset[str], now: datetime, born: dict[str, date]) -> Row:
    due_at = datetime.fromisoformat(task["due_at"].replace("Z", "+00:00"))
    level = Level.RED.value if urgent & set(task["rule_ids"]) else Level.AMBER.value
    return Row(task, level, due_at <= now, due_in_words(due_at, now), age_in_words(born.get(task["nhs_number"]), now))


ROLES = [r.value for r in Role if r not in (Role.CLINIC_SYSTEM, Role.GOVERNANCE)]


def may_choose_role(principal: Principal) -> bool:
    """Whether the worklist offers `principal` other roles' tasks: an administrator's, and one who may assign."""
    return principal.role is Role.ADMIN or policy.allows(principal, Action.TASK_ASSIGN)


def _assignable(
    connection: Connection, ruleset: Ruleset, principal: Principal, found: worklist_query.Page
) -> dict[str, list[str]]:
    """Whom `principal` may assign each task of the page to (wnb.core.policy.may_assign): the enabled members of
    its role but the one it is assigned to; no entry for a task they may not assign."""
    if not policy.allows(principal, Action.TASK_ASSIGN):
        return {}
    chains = {first: ruleset.escalation_chain(Role(first)) for first in set(found.first_owners.values())}
    tasks = [task for task in found.tasks if policy.may_assign(principal, chains[found.first_owners[task["id"]]])]
    members = enabled_members(connection, {task["owner_role"] for task in tasks})
    return {task["id"]: [name for name in members[task["owner_role"]] if name != task["assignee"]] for task in tasks}


WHOSE = {"all": "everyone's (my team's)", "mine": "assigned to me", "unassigned": "not assigned to anyone"}
PAGE_SIZE = 50
SORTS = {"urgency": "most urgent first", "due": "soonest due first"}


@router.get("/", response_class=HTMLResponse, summary="My worklist")
def worklist(
    request: Request,
    principal: Worklister,
    service: str = "",
    status: str = "open",
    role: str = "",
    whose: str = "all",
    q: str = "",
    sort: str = "urgency",
    page: int = 1,
) -> Response:
    wnb: Service = request.app.state.service
    now = wnb.clock()
    # Everyone sees their own role's tasks; an administrator may look at any role's (or every role's at once), and
    # one who assigns tasks to named people (wnb.core.policy: the lead, the named nurse) at any role's.
    assert principal.role is not None  # a person
    if principal.role is Role.ADMIN:
        shown_role = role or None
    elif role in ROLES and may_choose_role(principal):
        shown_role = role
    else:
        shown_role = principal.role.value
    if status not in worklist_query.STATUSES:
        status = "open"
    if whose not in WHOSE:
        whose = "all"
    if sort not in SORTS:
        sort = "urgency"
    query = q.strip()[:100]
    # The database filters, counts, sorts and pages (wnb.store.worklist): the page reads PAGE_SIZE tasks.
    filters = worklist_query.Filters(shown_role, principal.name, service, status, whose, query, sort)
    urgent = red_rules(wnb.ruleset)
    with wnb.db.connect() as connection:
        found = worklist_query.page(connection, filters, urgent, now, page, PAGE_SIZE)
        born = births(connection, {task["nhs_number"] for task in found.tasks})
        assign_to = _assignable(connection, wnb.ruleset, principal, found)
        senders = (
            send_choices(connection, found.tasks, london_date(now), wnb.sharing)
            if policy.allows(principal, Action.COMMUNICATION_SEND)
            else {}
        )
    rows = [_row(task, urgent, now, born) for task in found.tasks]
    return render(
        request,
        "worklist.html",
        rows=rows,
        matching=found.matching,
        page=found.number,
        pages=found.pages,
        page_size=PAGE_SIZE,
        q=query,
        sort=sort,
        sorts=SORTS,
        counts=found.counts,
        services=found.services,
        service=service,
        status=status,
        whose=whose,
        whose_choices=WHOSE,
        role=shown_role,
        roles=ROLES,
        may_choose_role=may_choose_role(principal),
        assign_to=assign_to,
        senders=senders,
        channel_words=CHANNEL_WORDS,
        here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),  # back here, filters kept
        now=now,
    )


def _back(back: str) -> RedirectResponse:
    return RedirectResponse(back if back.startswith(PREFIX + "/") else PREFIX + "/", status_code=303)


@router.post("/tasks/acknowledge", dependencies=[CsrfChecked], summary="Acknowledge the selected tasks")
def acknowledge_selected(
    request: Request,
    principal: Worker,
    task: Annotated[list[str] | None, Form(max_length=20)] = None,
    back: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Each selected task is acknowledged as one action of its own (and audited so); any refused is named."""
    wnb: Service = request.app.state.service
    chosen = list(dict.fromkeys(task or []))[:PAGE_SIZE]
    done, refused = 0, []
    for ref in chosen:
        try:
            wnb.act_on_task(ref, "ack", principal)
            done += 1
        except WnbError as error:
            refused.append(f"{ref}: {error}")
    if not chosen:
        flash(request, "Select the tasks to acknowledge first.", "error")
    else:
        flash(request, f"{done} task{'s' if done != 1 else ''} acknowledged.", "ok" if not refused else "error")
        for reason in refused:
            flash(request, reason, "error")
    return _back(back)


@router.post(
    "/tasks/{task_id}/assign", dependencies=[CsrfChecked], summary="Assign or reassign a task to a named person"
)
def assign(
    request: Request,
    task_id: str,
    principal: Assigner,
    to: Annotated[str, Form(max_length=100)] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
    assigned: Annotated[str, Form(max_length=100)] = "",
    back: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """`assigned` is whom the page showed it assigned to: taking it from them needs a reason (wnb.core.plan)."""
    wnb: Service = request.app.state.service
    why = reason.strip()
    if not to:
        flash(request, f"Choose the person to assign task {task_id} to.", "error")
    elif assigned and assigned != to and not why:
        flash(request, f"Task {task_id} is assigned to {assigned}: give a reason to reassign it to {to}.", "error")
    else:
        try:  # a task whose chain the lead may not assign is refused by the service (wnb.core.policy): 403
            row = wnb.assign_task(task_id, "assign", principal, to, why or None)
            words = task_words(row.code, wnb.ruleset)
            if assigned and assigned != to:
                flash(request, f"Task T{row.id} ({words}) is reassigned from {assigned} to {to}: {why}.")
            else:
                flash(request, f"Task T{row.id} ({words}) is assigned to {to}.")
        except Forbidden:
            raise
        except WnbError as error:  # no such account, not of its role, assigned already, a reason needed
            flash(request, str(error).replace(" (--reason)", ""), "error")
    return _back(back)


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


@router.post("/tasks/{task_id}/wait", dependencies=[CsrfChecked], summary="Wait for a reply until a date")
def wait(
    request: Request,
    task_id: str,
    principal: Worker,
    until: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
    back: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """An acknowledged task waits for a reply until `until` (at most the ruleset's working days): at that date
    the sweep puts it back at the top of its owner's list."""
    wnb: Service = request.app.state.service
    try:
        day = date.fromisoformat(until)
    except ValueError:
        flash(request, f"Give the date to wait until for task {task_id} (as on the form).", "error")
        return _back(back)
    try:  # a task of a role not theirs is refused by the service (wnb.core.policy): the refusal page, 403
        row = wnb.wait_on_task(task_id, day, reason, principal)
        flash(
            request, f"Task T{row.id} ({task_words(row.code, wnb.ruleset)}) waits for a reply until {day:%a %d %b %Y}."
        )
    except Forbidden:
        raise
    except WnbError as error:  # no reason, not acknowledged, too far ahead, done already
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
