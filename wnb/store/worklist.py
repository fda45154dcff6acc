"""The worklist's page of tasks (issue 16): a role's open tasks filtered, searched, counted, sorted and paged by
the database, so the page reads 50 tasks whatever the role holds (bench/worklist.py times it with 3,000)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Text, and_, case, cast, false, func, or_, select

from wnb.store import repo
from wnb.store.listing import task_items

_tasks = repo.tasks
STATUSES = ("open", "requested", "accepted", "awaiting-acknowledgement")  # open: any of the others


@dataclass(frozen=True)
class Filters:
    """What the worklist asks for: whose open tasks (`role`, None: every role's), and of those which to show."""

    role: str | None
    person: str  # the one looking: "mine" is theirs
    service: str = ""  # "": every service
    status: str = "open"  # open, requested, accepted or awaiting-acknowledgement
    whose: str = "all"  # all, mine or unassigned
    query: str = ""  # part of an NHS number (digits, spaces allowed) or of a service's name
    sort: str = "urgency"  # urgency: red, then overdue, then soonest due; due: soonest due


@dataclass(frozen=True)
class Page:
    tasks: list[dict[str, Any]]  # as wnb.store.listing.tasks gives them, in the order asked for
    first_owners: dict[str, str]  # each task's first owner role (whose escalation chain it follows), by its id
    matching: int  # how many tasks the filters match
    number: int  # the page shown (the one asked for, within 1..pages)
    pages: int
    counts: dict[str, int]  # of every open task of the role: open, overdue, red, mine
    services: list[str]  # the services of those, sorted


def _red(red_rules: Collection[str]) -> ColumnElement[bool]:
    """Whether a task was asked for by a rule whose flag is red: its JSON list of rule ids names one (a rule id
    is letters, digits and hyphens, so its quoted text appears in the list's text exactly when it is an element)."""
    text = cast(_tasks.c.rule_ids, Text)
    matches = [text.contains(f'"{rule}"', autoescape=True) for rule in sorted(red_rules)]
    return or_(*matches) if matches else false()


def _one_if(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def page(
    connection: Connection, filters: Filters, red_rules: Collection[str], now: datetime, number: int, size: int
) -> Page:
    """Page `number` (1 first; past the last: the last) of `size` tasks matching `filters`, with the role's counts."""
    red, overdue = _red(red_rules), _tasks.c.due_at <= now
    theirs = [_tasks.c.status.in_(repo.OPEN_STATUSES)]
    if filters.role is not None:
        theirs.append(_tasks.c.owner_role == filters.role)
    totals = connection.execute(
        select(func.count(), _one_if(overdue), _one_if(red), _one_if(_tasks.c.assignee == filters.person)).where(
            *theirs
        )
    ).one()
    services = sorted(connection.execute(select(_tasks.c.service).where(*theirs).distinct()).scalars())
    shown = and_(*theirs, *_narrowed(filters))
    matching = int(connection.execute(select(func.count()).select_from(_tasks).where(shown)).scalar_one())
    pages = max(1, -(-matching // size))
    number = min(max(number, 1), pages)
    if filters.sort == "due":
        order: list[Any] = [_tasks.c.due_at, _tasks.c.id]
    else:
        order = [case((red, 0), else_=1), case((overdue, 0), else_=1), _tasks.c.due_at, _tasks.c.id]
    query = select(_tasks).where(shown).order_by(*order).limit(size).offset((number - 1) * size)
    rows = list(connection.execute(query))
    return Page(
        task_items(connection, rows),
        {f"T{row.id}": row.first_owner_role for row in rows},
        matching,
        number,
        pages,
        {"open": int(totals[0]), "overdue": int(totals[1]), "red": int(totals[2]), "mine": int(totals[3])},
        services,
    )


def _narrowed(filters: Filters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.service:
        conditions.append(_tasks.c.service == filters.service)
    if filters.status != "open":
        conditions.append(_tasks.c.status == filters.status)
    if filters.whose == "mine":
        conditions.append(_tasks.c.assignee == filters.person)
    elif filters.whose == "unassigned":
        conditions.append(_tasks.c.assignee.is_(None))
    if filters.query:
        digits = filters.query.replace(" ", "")
        if digits.isdigit():
            conditions.append(_tasks.c.nhs_number.contains(digits, autoescape=True))
        else:
            conditions.append(func.lower(_tasks.c.service).contains(filters.query.lower(), autoescape=True))
    return conditions
