"""Silent clinic feeds: a source quiet for longer than its window fails /health/ready, sets a gauge and opens
one admin task (not repeated while open), audited like every other task change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import ROOT, FixedClock
from tests.factories import only_given, run_wnb
from tests.server import serving, wait_for
from wnb import metrics
from wnb.api import create_app
from wnb.core.domain import Role
from wnb.core.items import RawItem
from wnb.core.policy import Principal
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.service.feeds import FeedWatch, check_feeds
from wnb.settings import Settings
from wnb.store import audit, listing, repo
from wnb.store.accounts import create_api_key

RECEIVED = datetime(2026, 3, 2, 12, tzinfo=UTC)
WINDOWS = {"pas": timedelta(hours=24), "community": timedelta(days=3)}


def missed(source: str, event_id: str) -> dict[str, str]:
    return {
        "source": source,
        "event_id": event_id,
        "nhs_number": "9990000018",
        "date_of_birth": "2019-05-01",
        "service": "audiology",
        "appointment_id": f"a-{event_id}",
        "appointment_at": "2026-03-02T10:00:00+00:00",
        "attendance": "attended",
        "recorded_at": "2026-03-02T11:00:00+00:00",
    }


@pytest.fixture
def fed(tmp_path: Path, ruleset: Ruleset) -> Iterator[Service]:
    """A service that received one event from `pas` and one from `community` at RECEIVED."""
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    service = Service(db, ruleset, FixedClock(RECEIVED))
    service.ingest_one(RawItem(1, "", missed("pas", "p1")), origin="test")
    service.ingest_one(RawItem(2, "", missed("community", "c1")), origin="test")
    yield service
    db.dispose()


def admin_tasks(service: Service, everything: bool = False) -> list[dict[str, object]]:
    with service.db.connect() as connection:
        return listing.tasks(connection, include_closed=everything, role="admin")


def test_a_source_quiet_for_longer_than_its_window_is_silent(fed: Service) -> None:
    now = RECEIVED + timedelta(hours=25)
    statuses = {status.source: status.silent for status in check_feeds(fed.db, WINDOWS, now, since=RECEIVED)}
    assert statuses == {"pas": True, "community": False}


def test_a_source_never_heard_from_counts_from_when_watching_began(fed: Service) -> None:
    windows = {"hl7-north": timedelta(hours=1)}
    started = RECEIVED + timedelta(days=10)
    assert not check_feeds(fed.db, windows, started + timedelta(minutes=59), since=started)[0].silent
    assert check_feeds(fed.db, windows, started + timedelta(minutes=61), since=started)[0].silent


def test_a_silent_feed_opens_one_admin_task_that_is_not_repeated_while_open(fed: Service) -> None:
    watch = FeedWatch(fed.db, WINDOWS, started_at=RECEIVED)
    now = RECEIVED + timedelta(hours=25)
    watch.check(now)
    watch.check(now + timedelta(minutes=1))
    (task,) = admin_tasks(fed)
    assert (task["service"], task["code"], task["nhs_number"]) == ("feed:pas", "silent-feed", "")


def test_a_new_admin_task_opens_when_the_feed_is_still_silent_after_the_last_was_completed(fed: Service) -> None:
    watch = FeedWatch(fed.db, WINDOWS, started_at=RECEIVED)
    watch.check(RECEIVED + timedelta(hours=25))
    (task,) = admin_tasks(fed)
    fed.act_on_task(
        str(task["id"]), "complete", Principal("user", "admin.ann", Role.ADMIN), "restarted the interface engine"
    )
    watch.check(RECEIVED + timedelta(hours=26))
    assert [t["status"] for t in admin_tasks(fed, everything=True)] == ["completed", "requested"]


def test_the_admin_task_for_a_silent_feed_is_audited_without_a_child(fed: Service) -> None:
    FeedWatch(fed.db, WINDOWS, started_at=RECEIVED).check(RECEIVED + timedelta(hours=25))
    with fed.db.connect() as connection:
        query = select(audit._audit).where(audit._audit.c.action == "task_created")
        (record,) = [dict(row._mapping) for row in connection.execute(query)]
        assert audit.verify(connection).ok
    assert record["actor"] == "scheduler" and record["subject"] == [admin_tasks(fed)[0]["id"]]
    assert record["payload"]["source"] == "pas"


def test_the_silent_feed_gauge_is_one_for_a_silent_source_and_zero_for_a_live_one(fed: Service) -> None:
    FeedWatch(fed.db, WINDOWS, started_at=RECEIVED).check(RECEIVED + timedelta(hours=25))
    assert metrics.FEED_SILENT.labels(source="pas")._value.get() == 1
    assert metrics.FEED_SILENT.labels(source="community")._value.get() == 0


def test_health_ready_fails_naming_the_silent_feed_and_metrics_show_it(fed: Service) -> None:
    # The events arrived on 2 Mar 2026 (the fixed clock); the watch judges by the real clock, long after.
    admin_key = create_api_key(fed.db, "admin", "ops")
    settings = Settings(feed_windows={"pas": timedelta(hours=24)})
    app = create_app(fed, sweep_minutes=60, settings=settings)
    with serving(app) as url:
        wait_for(lambda: admin_tasks(fed) and app.state.heartbeat.last_sweep is not None)
        answer = httpx.get(f"{url}/health/ready")
        scraped = httpx.get(f"{url}/metrics", headers={"X-API-Key": admin_key}).text
    assert answer.status_code == 503
    assert answer.json()["silent_feeds"] == ["pas"] and "pas" in answer.json()["reason"]
    assert 'wnb_feed_silent{source="pas"} 1.0' in scraped


def test_the_admin_task_says_which_feed_is_silent_and_for_how_long(fed: Service) -> None:
    FeedWatch(fed.db, WINDOWS, started_at=RECEIVED).check(RECEIVED + timedelta(hours=25))
    with fed.db.connect() as connection:
        notes = [row.note for row in connection.execute(select(repo.task_history))]
    assert notes == ["no event from pas for longer than 1d"]


def test_a_feed_that_speaks_again_is_no_longer_silent(fed: Service) -> None:
    watch = FeedWatch(fed.db, WINDOWS, started_at=RECEIVED)
    later = RECEIVED + timedelta(hours=25)
    watch.check(later)
    fed.clock = FixedClock(later)  # type: ignore[method-assign]  # the next event arrives now
    fed.ingest_one(RawItem(3, "", missed("pas", "p2")), origin="test")
    watch.check(later + timedelta(minutes=1))
    assert watch.silent_sources() == []
    assert metrics.FEED_SILENT.labels(source="pas")._value.get() == 0


def test_wnb_feeds_lists_each_watched_source_and_whether_it_is_silent(fed: Service) -> None:
    env = only_given(WNB_DATABASE_URL=str(fed.db.url), WNB_FEED_WINDOWS="pas=24h,hl7-north=3d")
    done = run_wnb(ROOT, "feeds", "--json", env=env)
    assert done.returncode == 0, done.stderr
    shown = {item["source"]: item["silent"] for item in json.loads(done.stdout)}
    assert shown == {"pas": True, "hl7-north": False}  # pas last spoke on 2 Mar 2026; hl7-north counts from now
