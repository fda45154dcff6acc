"""A low context match rate (issue 18 part 5): below WNB_CONTEXT_MATCH_MIN the gauge shows it, /health/ready
stays 200 with a warning, and one admin task opens (not again at every check while it is open)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import FixedClock
from tests.factories import event, raw
from tests.server import serving
from wnb import metrics
from wnb.api import create_app
from wnb.core.domain import Role
from wnb.core.policy import Principal
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.service.context_match import CONTEXT_MATCH_CODE, ContextWatch
from wnb.settings import Settings
from wnb.store import listing
from wnb.store.accounts import create_api_key

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
KNOWN, UNKNOWN = "9990000018", "9990000026"


@pytest.fixture
def half_known(tmp_path: Path, ruleset: Ruleset) -> Iterator[Service]:
    """Two judged events, one of a person the child register knows: a match rate of 50%."""
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    service = Service(db, ruleset, FixedClock(NOW))
    service.import_context([raw({"nhs_number": KNOWN, "date_of_birth": "2019-05-01"}, 1)], origin="context")
    for event_id, person in (("e1", KNOWN), ("e2", UNKNOWN)):
        data = event(event_id, nhs_number=person, appointment_id=event_id, attendance="attended")
        service.ingest_one(raw(data, 1), origin="test")
    yield service
    db.dispose()


def admin_tasks(service: Service, everything: bool = False) -> list[dict[str, object]]:
    with service.db.connect() as connection:
        found = listing.tasks(connection, role="admin", include_closed=everything)
    return [task for task in found if task["code"] == CONTEXT_MATCH_CODE]


def test_a_match_rate_below_the_minimum_opens_one_admin_task_however_often_it_is_checked(
    half_known: Service,
) -> None:
    watch = ContextWatch(half_known.db, minimum=0.8, stale_days=90)
    assert watch.check(NOW) is not None
    assert watch.check(NOW + timedelta(minutes=15)) is None
    (task,) = admin_tasks(half_known)
    assert (task["service"], task["owner_role"], task["nhs_number"]) == ("context", "admin", "")
    assert metrics.CONTEXT_MATCH._value.get() == 0.5
    assert metrics.PEOPLE_WITHOUT_CONTEXT._value.get() == 1


def test_a_match_rate_at_or_above_the_minimum_opens_nothing_and_warns_of_nothing(half_known: Service) -> None:
    watch = ContextWatch(half_known.db, minimum=0.5, stale_days=90)
    assert watch.check(NOW) is None and watch.warning() is None and admin_tasks(half_known) == []


def test_a_minimum_of_zero_never_warns(half_known: Service) -> None:
    watch = ContextWatch(half_known.db, minimum=0.0, stale_days=90)
    assert watch.check(NOW) is None and watch.warning() is None


def test_once_its_task_is_completed_a_rate_still_low_opens_a_new_one(half_known: Service) -> None:
    watch = ContextWatch(half_known.db, minimum=0.8, stale_days=90)
    watch.check(NOW)
    (task,) = admin_tasks(half_known)
    admin = Principal("user", "admin.ann", Role.ADMIN)
    half_known.act_on_task(str(task["id"]), "complete", admin, "register feed restarted")
    watch.check(NOW + timedelta(minutes=15))
    assert [t["status"] for t in admin_tasks(half_known, everything=True)] == ["completed", "requested"]


def test_health_ready_stays_200_with_a_warning_and_metrics_show_the_ratio(half_known: Service) -> None:
    admin_key = create_api_key(half_known.db, "admin", "ops")
    app = create_app(half_known, sweep_minutes=60, settings=Settings(context_match_min=0.8))
    with serving(app) as url:
        assert httpx.get(f"{url}/health/ready").json() == {"status": "ok"}  # not yet measured
        app.state.context_watch.check(datetime.now(UTC))  # what the scheduler's job does every 15 minutes
        ready = httpx.get(f"{url}/health/ready")
        scraped = httpx.get(f"{url}/metrics", headers={"X-API-Key": admin_key}).text
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    (warning,) = ready.json()["warnings"]
    assert warning == {"context_match_ratio": 0.5, "minimum": 0.8, "people_without_context": 1}
    assert "wnb_context_match_ratio 0.5" in scraped and "wnb_people_without_context 1.0" in scraped


def test_metrics_count_context_not_refreshed_for_the_configured_days(half_known: Service) -> None:
    # The context was imported at NOW (the fixed clock); the scrape judges by the real clock, later.
    admin_key = create_api_key(half_known.db, "admin", "ops")
    days = (datetime.now(UTC) - NOW).days
    scraped = {}
    for stale_days in (days + 1, max(days - 1, 1)):
        app = create_app(half_known, settings=Settings(context_stale_days=stale_days))
        with serving(app) as url:
            scraped[stale_days] = httpx.get(f"{url}/metrics", headers={"X-API-Key": admin_key}).text
    assert "wnb_context_stale 0.0" in scraped[days + 1] and "wnb_context_stale 1.0" in scraped[max(days - 1, 1)]
    assert "wnb_context_match_ratio 0.5" in scraped[days + 1]  # /metrics measures without a scheduler too
