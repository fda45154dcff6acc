"""Properties of the whole pipeline over generated feeds (Hypothesis), each example on a fresh SQLite file:
idempotent ingestion, attended appointments raise nothing, deterministic evaluation, independence of
different children's events, and idempotent sweeps."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.conftest import FixedClock
from wnb.core.items import RawItem
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.store import listing, repo
from wnb.store.schema import new_sqlite_file

CHILDREN = ["9990000018", "9990000026", "9990000034", "9990000042", "9990000069", "9990000077"]
SERVICES = ["audiology", "community-paediatrics", "paediatric-diabetes"]
SOURCES = ["pas", "community-ehr"]
ATTENDANCE = [
    "5",
    "6",
    "7",
    "3",
    "2",
    "4",
    "0",
    "attended",
    "attended-late",
    "late-not-seen",
    "did-not-attend",
    "cancelled-by-patient",
    "cancelled-by-provider",
    "booked",
    "entered-in-error",
]
ATTENDED = ["5", "6", "attended", "attended-late"]
PRIORITIES = [None, "1", "2", "3", "routine", "urgent", "two-week-wait"]
OUTCOMES = [None, "1", "2", "3", "discharged", "another-appointment", "appointment-to-be-made-later"]
NOT_DISCHARGED = [None, "2", "3", "another-appointment", "appointment-to-be-made-later"]
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
RECEIVED = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,  # no example database written into the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---- generated input ----


@st.composite
def contexts(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Context records for the children, each born 2009–2025 (so a child throughout 2026)."""
    records = []
    for nhs_number in CHILDREN:
        born = date(2009, 1, 1) + timedelta(days=draw(st.integers(0, 6208)))
        statuses = []
        if draw(st.booleans()):
            start = date(2024, 1, 1) + timedelta(days=draw(st.integers(0, 900)))
            end = start + timedelta(days=draw(st.integers(0, 400))) if draw(st.booleans()) else None
            kind = draw(st.sampled_from(["child-protection-plan", "looked-after", "child-in-need", "early-help"]))
            statuses.append({"kind": kind, "start": start.isoformat(), "end": end.isoformat() if end else None})
        records.append(
            {
                "nhs_number": nhs_number,
                "date_of_birth": born.isoformat(),
                "statuses": statuses,
                "complex_health_needs": draw(st.booleans()),
            }
        )
    return records


def _instant(moment: datetime, london_summer: bool) -> str:
    return (
        moment.astimezone(UTC).isoformat()
        if not london_summer
        else (moment.astimezone(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat() + "+01:00"
    )


@st.composite
def events_of(
    draw: st.DrawFn,
    nhs_number: str,
    attendance: list[str] = ATTENDANCE,
    outcomes: list[str | None] = OUTCOMES,
) -> dict[str, Any]:
    """One realistic event of this child (event_id filled in later); appointment ids are the child's own."""
    appointment_at = YEAR_START + timedelta(minutes=15 * draw(st.integers(0, 365 * 24 * 4 - 1)))
    event: dict[str, Any] = {
        "source": draw(st.sampled_from(SOURCES)),
        "nhs_number": nhs_number,
        "service": draw(st.sampled_from(SERVICES)),
        "appointment_id": f"{nhs_number}-a{draw(st.integers(0, 3))}",
        "appointment_at": _instant(appointment_at, draw(st.booleans())),
        "attendance": draw(st.sampled_from(attendance)),
    }
    if draw(st.integers(0, 9)) > 0:  # now and then a feed leaves recorded_at out
        recorded_at = appointment_at + timedelta(minutes=draw(st.integers(1, 3 * 24 * 60)))
        event["recorded_at"] = _instant(recorded_at, draw(st.booleans()))
    optional = {
        "priority": draw(st.sampled_from(PRIORITIES)),
        "outcome": draw(st.sampled_from(outcomes)),
        "first_appointment": draw(st.sampled_from([None, True, False])),
    }
    event.update({key: value for key, value in optional.items() if value is not None})
    return event


def numbered(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give every event its own event_id, unique per child (so a child's feed is the same in any interleaving)."""
    seen: dict[str, int] = {}
    result = []
    for event in events:
        seen[event["nhs_number"]] = seen.get(event["nhs_number"], 0) + 1
        result.append({"event_id": f"{event['nhs_number']}-e{seen[event['nhs_number']]}", **event})
    return result


@st.composite
def feeds(
    draw: st.DrawFn,
    attendance: list[str] = ATTENDANCE,
    outcomes: list[str | None] = OUTCOMES,
    max_size: int = 10,
) -> list[dict[str, Any]]:
    children = draw(st.lists(st.sampled_from(CHILDREN), min_size=1, max_size=max_size))
    return numbered([draw(events_of(child, attendance, outcomes)) for child in children])


sweep_times = st.integers(0, 500 * 24).map(lambda hours: YEAR_START + timedelta(hours=hours))


# ---- running a feed ----


@contextmanager
def fresh_service(ruleset: Ruleset, clock: FixedClock | None = None) -> Iterator[Service]:
    with tempfile.TemporaryDirectory(prefix="wnb-property-") as folder:
        db = open_database(new_sqlite_file(Path(folder) / "wnb.db"))
        try:
            yield Service(db, ruleset, clock or FixedClock(RECEIVED))
        finally:
            db.dispose()


def items(records: list[dict[str, Any]]) -> list[RawItem]:
    return [RawItem(line, json.dumps(record), record) for line, record in enumerate(records, start=1)]


def load(service: Service, context: list[dict[str, Any]], feed: list[dict[str, Any]]) -> dict[str, int]:
    service.import_context(items(context), origin="context")
    return dict(service.ingest(items(feed), origin="feed"))


def state(service: Service) -> dict[str, Any]:
    with service.db.connect() as connection:
        events = [dict(row._mapping) for row in connection.execute(select(repo.events).order_by(repo.events.c.id))]
        return {
            "flags": listing.flags(connection, include_closed=True),
            "tasks": listing.tasks(connection, include_closed=True),
            "events": events,
        }


def without_ids(items_: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps({k: v for k, v in item.items() if k != "id"}, sort_keys=True) for item in items_)


# ---- properties ----


@SETTINGS
@given(context=contexts(), feed=feeds())
def test_ingesting_the_same_feed_twice_changes_nothing(
    ruleset: Ruleset, context: list[dict[str, Any]], feed: list[dict[str, Any]]
) -> None:
    clock = FixedClock(RECEIVED)
    with fresh_service(ruleset, clock) as service:
        first = load(service, context, feed)
        before = state(service)
        clock.now = RECEIVED + timedelta(days=3)

        second = service.ingest(items(feed), origin="feed again")

        assert first.get("rejected", 0) == 0
        assert second == {"duplicate": len(feed)}
        assert state(service) == before


@SETTINGS
@given(context=contexts(), feed=feeds(attendance=ATTENDED), now=sweep_times)
def test_a_feed_of_attended_appointments_raises_no_flag_and_no_task(
    ruleset: Ruleset, context: list[dict[str, Any]], feed: list[dict[str, Any]], now: datetime
) -> None:
    with fresh_service(ruleset) as service:
        counts = load(service, context, feed)
        service.sweep(now)

        after = state(service)
        assert counts.get("rejected", 0) == 0
        assert after["flags"] == []
        assert after["tasks"] == []


@SETTINGS
@given(context=contexts(), feed=feeds(), data=st.data())
def test_an_attended_appointment_raises_nothing_whatever_came_before(
    ruleset: Ruleset, context: list[dict[str, Any]], feed: list[dict[str, Any]], data: st.DataObject
) -> None:
    child = data.draw(st.sampled_from(CHILDREN))
    attended = data.draw(events_of(child, ATTENDED, NOT_DISCHARGED))
    attended.update(event_id="attended-1", appointment_id=f"{child}-new")
    with fresh_service(ruleset) as service:
        load(service, context, feed)
        before = state(service)

        assert service.ingest(items([attended]), origin="one more") == {"accepted": 1}

        after = state(service)
        assert (after["flags"], after["tasks"]) == (before["flags"], before["tasks"])


@SETTINGS
@given(context=contexts(), feed=feeds(), now=sweep_times)
def test_evaluation_is_deterministic_the_same_feed_gives_the_same_flags_and_tasks(
    ruleset: Ruleset, context: list[dict[str, Any]], feed: list[dict[str, Any]], now: datetime
) -> None:
    outcomes = []
    for _ in range(2):
        with fresh_service(ruleset) as service:
            counts = load(service, context, feed)
            swept = dict(service.sweep(now))
            result = state(service)
            outcomes.append((counts, swept, result["flags"], result["tasks"]))

    assert outcomes[0] == outcomes[1]


@st.composite
def interleavings(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One feed in two orders: children's events interleaved differently, each child's own order kept."""
    feed = draw(feeds(max_size=12))
    order = draw(st.permutations([event["nhs_number"] for event in feed]))
    queues: dict[str, list[dict[str, Any]]] = {}
    for event in feed:
        queues.setdefault(event["nhs_number"], []).append(event)
    return feed, [queues[child].pop(0) for child in order]


def per_child(result: dict[str, Any]) -> dict[str, tuple[list[str], list[str]]]:
    found: dict[str, tuple[list[str], list[str]]] = {}
    for child in CHILDREN:
        flags = [flag for flag in result["flags"] if flag["nhs_number"] == child]
        tasks = [task for task in result["tasks"] if task["nhs_number"] == child]
        if flags or tasks:
            found[child] = (without_ids(flags), without_ids(tasks))
    return found


@SETTINGS
@given(context=contexts(), feeds_=interleavings(), now=sweep_times)
def test_the_order_of_different_childrens_events_does_not_matter(
    ruleset: Ruleset,
    context: list[dict[str, Any]],
    feeds_: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    now: datetime,
) -> None:
    results = []
    for feed in feeds_:
        with fresh_service(ruleset) as service:
            load(service, context, feed)
            service.sweep(now)
            results.append(per_child(state(service)))

    assert results[0] == results[1]


@SETTINGS
@given(context=contexts(), feed=feeds(), now=sweep_times)
def test_a_second_sweep_at_the_same_now_changes_nothing(
    ruleset: Ruleset, context: list[dict[str, Any]], feed: list[dict[str, Any]], now: datetime
) -> None:
    with fresh_service(ruleset) as service:
        load(service, context, feed)
        service.sweep(now)
        before = state(service)

        again = service.sweep(now)

        assert again["escalated"] == 0
        assert again["follow_ups_judged"] == 0
        assert again["follow_ups_void"] == 0
        assert state(service) == before


@SETTINGS
@given(context=contexts(), feed=feeds(max_size=12), chunk=st.integers(1, 5))
def test_the_size_of_the_ingestion_batches_does_not_change_the_outcome(
    ruleset: Ruleset, context: list[dict[str, Any]], feed: list[dict[str, Any]], chunk: int
) -> None:
    outcomes = []
    for size in (chunk, 250):
        with fresh_service(ruleset) as service:
            service.import_context(items(context), origin="context")
            counts = dict(service.ingest(items(feed), origin="feed", chunk=size))
            outcomes.append((counts, state(service)))

    assert outcomes[0] == outcomes[1]
