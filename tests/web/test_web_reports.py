"""The governance dashboard's figures for a period, on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import ROOT, FixedClock
from tests.web_fixtures import AMBER_CHILD, RED_CHILD, event
from wnb.core.domain import Role
from wnb.core.policy import Principal
from wnb.ingest.ndjson import read as read_ndjson
from wnb.service import Service
from wnb.store import listing
from wnb.store.reports import PeriodBy, dashboard

STORES = ("sqlite", "postgres")  # every test here runs on both stores (conftest.py)

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


# ---- a period dated by appointment (the default) or by when wnb processed it ----


def late_and_early(service: Service, clock: FixedClock) -> None:
    """A red child's miss of Fri 20 Feb processed on Mon 2 Mar (in the week from START), and an amber child's
    miss of Tue 3 Mar (in the week) processed on Tue 10 Mar, after it."""
    service.import_context(read_ndjson(ROOT / "fixtures" / "context.ndjson"), origin="context")
    clock.now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    service.ingest([event(RED_CHILD, "before", "2026-02-20")], origin="feed")
    clock.now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    service.ingest([event(AMBER_CHILD, "after", "2026-03-03", date_of_birth="2012-08-30")], origin="feed")


def test_an_appointment_in_the_period_processed_after_it_counts_by_appointment_date(
    service: Service, clock: FixedClock
) -> None:
    late_and_early(service, clock)
    with service.db.connect() as connection:
        board = dashboard(connection, START, END, clock.now)
    assert board.by is PeriodBy.APPOINTMENT
    assert board.evaluations == 1
    assert "WNB-01" not in board.fired and board.fired  # the amber child's rules, not the red child's
    assert "red" not in board.flags_by_level and board.flags_by_level["amber"] >= 1
    assert [(feed.source, feed.accepted) for feed in board.feeds] == [("pas", 1)]


def test_an_appointment_before_the_period_processed_in_it_counts_by_processing_date(
    service: Service, clock: FixedClock
) -> None:
    late_and_early(service, clock)
    with service.db.connect() as connection:
        board = dashboard(connection, START, END, clock.now, PeriodBy.PROCESSED)
    assert board.by is PeriodBy.PROCESSED
    assert board.evaluations == 1
    assert board.fired["WNB-01"] == 1 and board.flags_by_rule["WNB-01"] == 1
    assert board.flags_by_level["red"] == 1 and "amber" not in board.flags_by_level
    assert [(feed.source, feed.accepted) for feed in board.feeds] == [("pas", 1)]
    assert ["period", f"{START.isoformat()}/{END.isoformat()}", "dated by", "processed"] in board.csv_rows()


def test_a_task_acted_on_after_the_period_is_timed_in_its_appointments_period(
    service: Service, clock: FixedClock
) -> None:
    late_and_early(service, clock)
    with service.db.connect() as connection:
        task = next(t for t in listing.tasks(connection) if t["nhs_number"] == AMBER_CHILD)
    service.act_on_task(str(task["id"]), "ack", NURSE_JO, at=datetime(2026, 3, 10, 14, tzinfo=UTC))
    with service.db.connect() as connection:
        by_appointment = dashboard(connection, START, END, clock.now)
        by_processing = dashboard(connection, START, END, clock.now, PeriodBy.PROCESSED)
    assert [(t.role, t.acknowledged, t.median_hours_to_ack) for t in by_appointment.timings] == [
        (task["owner_role"], 1, 2.0)
    ]
    assert by_processing.timings == []
    assert by_appointment.tasks_by_role[task["owner_role"]] >= 1
