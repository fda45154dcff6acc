"""Render a page: the Jinja2 templates, the filters that show times in UK local time, navigation by role."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import pass_context
from jinja2.runtime import Context
from sqlalchemy import Engine
from starlette.templating import Jinja2Templates

from wnb.core.calendar import LONDON
from wnb.core.domain import Role
from wnb.core.nhs import spaced_nhs_number
from wnb.core.policy import Action, Kind, allows
from wnb.core.ruleset import Ruleset
from wnb.core.sentences import service_words
from wnb.core.wording import code_title, flag_status, local, local_short, plain_code, task_status
from wnb.store import rulesets
from wnb.store.accounts import Principal
from wnb.web.session import csrf_token, may

PREFIX = "/web"


def task_words(code: str, ruleset: Ruleset | None = None) -> str:
    """What a flag or task code means to a person: its title in the ruleset in force, else its words."""
    return ruleset.title(code) if ruleset is not None else code_title(code)


@pass_context
def _words(context: Context, code: str) -> str:
    """A flag's or task's code as the ruleset in force titles it (`{{ t.code | todo }}`)."""
    request = context.get("request")
    service = getattr(request.app.state, "service", None) if request is not None else None
    return task_words(code, service.ruleset if service is not None else None)


TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.filters["local"] = local
TEMPLATES.env.filters["local_short"] = local_short
TEMPLATES.env.filters["plain"] = plain_code
TEMPLATES.env.filters["todo"] = _words  # a task's code as what to do
TEMPLATES.env.filters["words"] = _words  # a flag's code as what it means
TEMPLATES.env.filters["task_status"] = task_status
TEMPLATES.env.filters["flag_status"] = flag_status
TEMPLATES.env.filters["nhs"] = spaced_nhs_number
TEMPLATES.env.filters["service"] = service_words
TEMPLATES.env.globals["prefix"] = PREFIX


def nav_for(principal: Principal | None) -> list[tuple[str, str]]:
    """The links a role may follow, so nobody is shown a page they would be refused."""
    if principal is None:
        return []
    links = [
        ("My worklist", "/", Action.WORKLIST),
        ("Find a child", "/children", Action.RECORDS_READ),
        ("Governance", "/governance", Action.GOVERNANCE_READ),
        ("Audit log", "/audit", Action.AUDIT_READ),
        ("Simulate", "/simulate", Action.RULES_SIMULATE),
        ("Rulesets", "/rulesets", Action.RULES_HISTORY),
        ("Data quality", "/rejects", Action.REJECTS_READ),
    ]
    return [(label, PREFIX + path) for label, path, action in links if may(principal, action)]


def home_for(role: Role | None) -> str:
    """The first page of a role: the worklist for those who act, else the dashboard or a child's search."""
    person = Principal(Kind.USER, "", role)
    if allows(person, Action.WORKLIST):
        return PREFIX + "/"
    return PREFIX + ("/governance" if allows(person, Action.GOVERNANCE_READ) else "/children")


def unapproved_active(db: Engine, now: datetime) -> str | None:
    """The short hash of the active ruleset version when no clinical safety officer approved it: every page says
    so in a banner until one is approved (issue 15)."""
    active = rulesets.active(db, now)
    return active.short if active is not None and not active.is_approved else None


def flash(request: Request, text: str, kind: str = "info") -> None:
    """A message shown once on the next page (after a redirect)."""
    request.session.setdefault("flash", []).append([kind, text])
    request.session["flash"] = request.session["flash"]  # mark the session changed


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page with what every page needs: the person, their menu, the CSRF token and any messages."""
    principal = getattr(request.state, "principal", None)
    flashes = request.session.pop("flash", [])
    service = request.app.state.service
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "user": principal,
            "csrf": csrf_token(request),
            "nav": nav_for(principal),
            "flashes": flashes,
            "path": request.url.path,
            "unapproved_active": unapproved_active(service.db, service.clock()) if principal else None,
            **context,
        },
        status_code=status_code,
    )


def age_in_words(born: date | None, now: datetime) -> str:
    """'7 years', '9 months' on today's London date; '' when the date of birth is unknown."""
    if born is None:
        return ""
    today = now.astimezone(LONDON).date()
    months = (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)
    if months < 24:
        return f"{months} month{'s' if months != 1 else ''}"
    return f"{months // 12} years"
