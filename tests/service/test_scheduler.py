"""The in-process scheduler: the sweep runs at start (catching up after downtime) and then on its interval,
and /health/ready fails when it has stalled. Against a real uvicorn server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.conftest import FixedClock
from tests.server import serving, wait_for
from wnb import metrics
from wnb.api import create_app
from wnb.core.items import RawItem
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.service.scheduler import Heartbeat, Scheduler
from wnb.store import listing

MISSED = {
    "source": "pas",
    "event_id": "e1",
    "nhs_number": "9990000018",
    "date_of_birth": "2019-05-01",
    "service": "audiology",
    "appointment_id": "a1",
    "appointment_at": "2026-03-02T10:00:00+00:00",
    "attendance": "did-not-attend",
    "recorded_at": "2026-03-02T11:00:00+00:00",
}


@contextmanager
def running(service: Service, sweep_minutes: float, inbox: Path | None = None) -> Iterator[tuple[str, object]]:
    app = create_app(service, sweep_minutes, inbox)
    with serving(app) as url:
        yield url, app


def test_a_stale_heartbeat_is_three_intervals_without_a_successful_sweep() -> None:
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    heartbeat = Heartbeat(timedelta(minutes=5))
    assert heartbeat.is_stale(start)  # no sweep yet
    heartbeat.beat(start)
    assert not heartbeat.is_stale(start + timedelta(minutes=15))
    assert heartbeat.is_stale(start + timedelta(minutes=15, seconds=1))
    heartbeat.beat(start + timedelta(minutes=20), error="OperationalError")  # a failed sweep is no beat
    assert heartbeat.is_stale(start + timedelta(minutes=16))


def test_the_sweep_runs_at_start_and_catches_up_on_what_fell_due_while_down(tmp_path: Path, ruleset: Ruleset) -> None:
    clock = FixedClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    service = Service(db, ruleset, clock)
    service.ingest_one(RawItem(1, "", dict(MISSED)), origin="test")
    clock.now = datetime(2026, 3, 10, 9, tzinfo=UTC)  # the service was down for a week: everything is overdue

    def escalated() -> bool:
        with db.connect() as connection:
            return all(task["escalation_level"] > 0 for task in listing.tasks(connection))

    with running(service, sweep_minutes=60) as (url, _app):
        wait_for(escalated)
        assert httpx.get(f"{url}/health/ready").json() == {"status": "ok"}
    db.dispose()


def test_health_ready_fails_when_the_sweep_has_stalled(tmp_path: Path, ruleset: Ruleset) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    service = Service(db, ruleset)
    with running(service, sweep_minutes=60) as (url, app):
        heartbeat = app.state.heartbeat  # type: ignore[attr-defined]
        wait_for(lambda: heartbeat.last_sweep is not None)
        heartbeat.last_sweep = datetime.now(UTC) - timedelta(hours=4)  # as if no sweep for four hours
        answer = httpx.get(f"{url}/health/ready")
    assert answer.status_code == 503 and answer.json()["reason"] == "sweep stalled"
    db.dispose()


def test_a_sweep_failing_for_three_intervals_opens_one_admin_task(tmp_path: Path, ruleset: Ruleset) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    scheduler = Scheduler(Service(db, ruleset), sweep_minutes=5)
    now = datetime.now(UTC)
    scheduler.heartbeat.beat(now - timedelta(minutes=16))
    scheduler.heartbeat.beat(now - timedelta(minutes=1), error="OperationalError")
    assert scheduler.check_sweep(now) is not None
    assert scheduler.check_sweep(now + timedelta(minutes=1)) is None  # one open task is enough
    with db.connect() as connection:
        (task,) = listing.tasks(connection, role="admin")
    assert (task["service"], task["code"], task["nhs_number"]) == ("scheduler", "sweep-stalled", "")
    db.dispose()


def test_a_recent_successful_sweep_opens_no_task_and_sets_the_age_gauge(tmp_path: Path, ruleset: Ruleset) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    scheduler = Scheduler(Service(db, ruleset), sweep_minutes=5)
    now = datetime.now(UTC)
    scheduler.heartbeat.beat(now - timedelta(minutes=14))
    assert scheduler.check_sweep(now) is None
    assert 14 * 60 <= metrics.SWEEP_AGE._value.get() <= 14 * 60 + 1
    db.dispose()
