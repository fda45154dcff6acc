"""The worklist's page read by the database (wnb.store.worklist, issue 16) on both stores: the same tasks, in the
same order, and the same counts as filtering and sorting every open task in Python gives."""

from __future__ import annotations

from datetime import datetime
from itertools import product
from typing import Any

from tests.conftest import FixedClock
from tests.web_fixtures import REPEAT_CHILD, seed
from wnb.core.domain import Level, Role
from wnb.core.policy import Kind, Principal
from wnb.core.ruleset import Ruleset
from wnb.service import Service
from wnb.store import listing
from wnb.store.accounts import create_user
from wnb.store.worklist import Filters, page

STORES = ("sqlite", "postgres")


def _expected(items: list[dict[str, Any]], filters: Filters, red: frozenset[str], now: datetime) -> list[str]:
    def overdue(task: dict[str, Any]) -> bool:
        return datetime.fromisoformat(task["due_at"].replace("Z", "+00:00")) <= now

    def found(task: dict[str, Any]) -> bool:
        digits = filters.query.replace(" ", "")
        if not filters.query:
            return True
        if digits.isdigit():
            return digits in task["nhs_number"]
        return filters.query.lower() in task["service"].lower()

    chosen = [
        task
        for task in items
        if (filters.role is None or task["owner_role"] == filters.role)
        and (not filters.service or task["service"] == filters.service)
        and (filters.status == "open" or task["status"] == filters.status)
        and (
            filters.whose == "all"
            or (filters.whose == "mine" and task["assignee"] == filters.person)
            or (filters.whose == "unassigned" and task["assignee"] is None)
        )
        and found(task)
    ]
    if filters.sort == "due":
        chosen.sort(key=lambda task: (task["due_at"], int(task["id"][1:])))
    else:
        chosen.sort(
            key=lambda task: (not red & set(task["rule_ids"]), not overdue(task), task["due_at"], int(task["id"][1:]))
        )
    return [task["id"] for task in chosen]


def test_the_page_holds_what_filtering_and_sorting_every_open_task_gives(
    service: Service, clock: FixedClock, ruleset: Ruleset
) -> None:
    seed(service, clock)
    nurse = Principal(Kind.USER, "nurse.jo", Role.SAFEGUARDING_NURSE)
    create_user(service.db, "nurse.jo", "safeguarding-nurse", "correct horse battery staple")
    with service.db.connect() as connection:
        items = listing.tasks(connection)
    service.assign_task(next(t["id"] for t in items if t["owner_role"] == "safeguarding-nurse"), "claim", nurse)
    with service.db.connect() as connection:
        items = listing.tasks(connection)
    red = frozenset(rule.id for rule in ruleset.rules if rule.flag and rule.flag.level is Level.RED)
    now = clock.now
    queries = ("", "AUDIO", REPEAT_CHILD[3:7], f"{REPEAT_CHILD[:3]} {REPEAT_CHILD[3:6]}", "%", "_")
    combinations = [
        Filters(role, "nurse.jo", "", "open", "all", query, sort)
        for role, query, sort in product((None, "booking-team", "safeguarding-nurse"), queries, ("urgency", "due"))
    ] + [
        Filters("safeguarding-nurse", "nurse.jo", service_name, status, whose)
        for service_name, status, whose in product(
            ("", "audiology"), ("open", "requested", "accepted"), ("all", "mine", "unassigned")
        )
    ]
    with service.db.connect() as connection:
        for filters in combinations:
            expected = _expected(items, filters, red, now)
            whole = page(connection, filters, red, now, 1, 1000)
            assert [task["id"] for task in whole.tasks] == expected, filters
            assert whole.matching == len(expected) and whole.pages == 1
            theirs = [t for t in items if filters.role is None or t["owner_role"] == filters.role]
            assert whole.counts == {
                "open": len(theirs),
                "overdue": sum(datetime.fromisoformat(t["due_at"].replace("Z", "+00:00")) <= now for t in theirs),
                "red": sum(bool(red & set(t["rule_ids"])) for t in theirs),
                "mine": sum(t["assignee"] == "nurse.jo" for t in theirs),
            }
            assert whole.services == sorted({t["service"] for t in theirs})
        # One at a time: each page is the next task; past the last page, the last.
        everyone = Filters(None, "nurse.jo")
        expected = _expected(items, everyone, red, now)
        assert len(expected) >= 3
        shown = [page(connection, everyone, red, now, number, 1).tasks[0]["id"] for number in (1, 2, len(expected))]
        assert shown == [expected[0], expected[1], expected[-1]]
        beyond = page(connection, everyone, red, now, len(expected) + 5, 2)
        assert beyond.number == beyond.pages == -(-len(expected) // 2)
        assert [task["id"] for task in beyond.tasks] == expected[(beyond.number - 1) * 2 :]
