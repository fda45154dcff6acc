"""The governance dashboard's figures for a period, from a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import ROOT, FixedClock
from tests.web_fixtures import RED_CHILD, event
from wnb.core.domain import Role
from wnb.core.policy import Principal
from wnb.ingest.ndjson import read as read_ndjson
from wnb.service import Service
from wnb.store import listing
from wnb.store.reports import dashboard

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 8, tzinfo=UTC)

NURSE_JO = Principal("user", "nurse.jo", Role.SAFEGUARDING_NURSE)


def red_miss(service: Service) -> None:
    """A child on a child-protection plan not brought on Mon 2 Mar (received at the fixed clock, 12:00)."""
    service.import_context(read_ndjson(ROOT / "fixtures" / "context.ndjson"), origin="context")
    service.ingest([event(RED_CHILD, "e1", "2026-03-02")], origin="feed")


def nurse_task(service: Service) -> str:
    with service.db.connect() as connection:
        return str(next(t for t in listing.tasks(connection, role="safeguarding-nurse"))["id"])


def test_time_to_acknowledge_and_complete_is_the_median_per_role_in_hours(service: Service) -> None:
    red_miss(service)
    task = nurse_task(service)
    service.act_on_task(task, "ack", NURSE_JO, at=datetime(2026, 3, 2, 14, tzinfo=UTC))
    service.act_on_task(task, "complete", NURSE_JO, "done", at=datetime(2026, 3, 2, 18, tzinfo=UTC))
    with service.db.connect() as connection:
        board = dashboard(connection, START, END, datetime(2026, 3, 3, tzinfo=UTC))
    timing = next(t for t in board.timings if t.role == "safeguarding-nurse")
    assert (timing.acknowledged, timing.median_hours_to_ack) == (1, 2.0)
    assert (timing.completed, timing.median_hours_to_complete) == (1, 6.0)


def test_overdue_tasks_are_counted_by_owner_role_as_of_now(service: Service) -> None:
    red_miss(service)
    with service.db.connect() as connection:
        before = dashboard(connection, START, END, datetime(2026, 3, 2, 16, tzinfo=UTC))
        after = dashboard(connection, START, END, datetime(2026, 3, 2, 18, tzinfo=UTC))  # past 17:00 same day
    assert before.overdue_by_role["safeguarding-nurse"] == 0
    assert after.overdue_by_role["safeguarding-nurse"] == 1


def test_rules_fired_and_items_raised_are_counted_per_rule(service: Service) -> None:
    red_miss(service)
    with service.db.connect() as connection:
        board = dashboard(connection, START, END, datetime(2026, 3, 2, 16, tzinfo=UTC))
    assert board.evaluations == 1
    assert board.fired["WNB-01"] == 1 and board.flags_by_rule["WNB-01"] == 1
    assert board.flags_by_level["red"] == 1


def test_a_period_before_anything_happened_is_empty(service: Service, clock: FixedClock) -> None:
    red_miss(service)
    with service.db.connect() as connection:
        board = dashboard(connection, datetime(2026, 1, 1, tzinfo=UTC), START, clock.now)
    assert board.evaluations == 0 and not board.rules and not board.feeds
