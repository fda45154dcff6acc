"""A child's multi-agency chronology end to end (issue 18 part 4) against a real server on loopback: a child seen in
three services, by two sources (the PAS's canonical events, the community system's HL7 v2 message), with a task
worked, a message sent and acknowledged, has every row, in time order, on the API and, in headless Chromium, on
the child's page and its printable chronology."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FixedClock
from tests.factories import event, raw
from tests.server import serving
from tests.service.test_assignment import person
from tests.sharing import CHILD, CLERK, NURSE, PASSWORD, load
from tests.web.browser import launched, sign_in_as, sync_api, violations
from wnb.api import create_app
from wnb.core.domain import Role
from wnb.core.ruleset import Ruleset
from wnb.core.sharing import SharingConfig
from wnb.database import open_database
from wnb.ingest.mllp import handle_message
from wnb.service import Service
from wnb.settings import load_settings
from wnb.store import listing

SECRET = "chronology-test-session-secret-0123456789"
NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
# The community system's physiotherapy appointment on 5 March, modified (S14) to Complete: attended.
COMMUNITY_HL7 = (
    "MSH|^~\\&|COMMUNITY|community-ehr|WNB|RXX|20260305150000||SIU^S14^SIU_S12|CE1|P|2.5\r"
    "SCH|CE-APPT-1^COMMUNITY|CE-APPT-1^COMMUNITY|||||||||^^^20260305140000||||||||||||||Complete\r"
    f"PID|1||C9^^^RXX^MR~{CHILD}^^^NHS^NH||Patient^Test||20190501\r"
    "AIS|1||physiotherapy^Physiotherapy\r"
)
# Every row the chronology must show, as the start of its event, in the order it must show them.
EXPECTED = [
    "child protection plan started",
    "attended; appointment a-aud from pas",
    "not brought (did not attend); appointment a-e1 from pas",
    "red flag raised",
    *["task opened"] * 7,
    "letter prepared to print: Tell the GP",
    "message WNB-T4-1 sent by letter to Riverside Surgery",
    "task's message sent, awaiting acknowledgement: Tell the GP",
    "message WNB-T4-1 acknowledged by Riverside Surgery",
    "task done: Tell the GP",
    "attended; appointment CE-APPT-1 from community-ehr",
]


class Site:
    def __init__(self, url: str, service: Service) -> None:
        self.url, self.service = url, service

    def tasks(self) -> list[dict[str, Any]]:
        with self.service.db.connect() as connection:
            return listing.tasks(connection, include_closed=True)


@pytest.fixture
def site(tmp_path: Path, ruleset: Ruleset) -> Iterator[Site]:
    """The child of tests/sharing.py (on a plan, missed community paediatrics on 2 March at 10:00), who also
    attended audiology on 20 February and was not brought to physiotherapy on 5 March (the community system,
    over HL7, as attended); the GP's letter prepared and posted on 3 March and acknowledged by its link on 4 March."""
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    clock = FixedClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    service = Service(db, ruleset, clock)
    load(service)
    audiology = event(
        "aud",
        service="audiology",
        attendance="attended",
        appointment_at="2026-02-20T09:00:00+00:00",
        recorded_at="2026-02-20T10:00:00+00:00",
    )
    service.ingest_one(raw(audiology, line=None), origin="feed")
    with serving(create_app(service, settings=load_settings(session_secret=SECRET))) as url:
        service.sharing = SharingConfig((), None, url, SECRET, 30)
        clerk = person(CLERK, Role.BOOKING_TEAM)
        site = Site(url, service)
        gp_task = next(task for task in site.tasks() if task["code"] == "inform-gp")
        clock.now = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
        made = service.send_communication(str(gp_task["id"]), "letter", clerk)
        clock.now = datetime(2026, 3, 3, 11, 0, tzinfo=UTC)  # posted
        sent = service.mark_letter_sent(made.reference, clerk)
        clock.now = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
        service.acknowledge_by_link(str(sent.content["ack_url"]).rsplit("/", 1)[1], "Dr A. Reader")
        clock.now = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)
        answer = handle_message(service, COMMUNITY_HL7.encode(), origin="mllp")
        assert answer.code == "AA", answer.ack
        clock.now = NOW
        yield site
    db.dispose()


def _kinds(events: list[str]) -> list[str]:
    """Each event as the start in EXPECTED it begins with (itself when none)."""
    return [next((start for start in EXPECTED if event.startswith(start)), event) for event in events]


def test_the_chronology_of_a_child_seen_in_three_services_by_two_sources_lists_every_row_in_order(site: Site) -> None:
    with httpx.Client(base_url=site.url, auth=(NURSE, PASSWORD), timeout=20) as nurse:
        answer = nurse.get(f"/v1/people/{CHILD}/chronology")
    assert answer.status_code == 200, answer.text
    entries = answer.json()["entries"]
    assert [entry["at"] for entry in entries] == sorted(entry["at"] for entry in entries)
    assert _kinds([entry["event"] for entry in entries]) == EXPECTED
    agencies = {entry["agency"] for entry in entries}
    assert {"audiology", "community-paediatrics", "physiotherapy"} <= agencies
    acknowledged = next(entry for entry in entries if " acknowledged by " in entry["event"])
    assert (acknowledged["by"], acknowledged["significance"]) == ("Dr A. Reader", "red")
    done = next(entry for entry in entries if entry["event"].startswith("task done"))
    assert "acknowledged by Dr A. Reader" in done["action"]


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    yield from launched()


def test_a_nurse_reads_the_chronology_on_the_childs_page_and_prints_it_in_a_browser(
    browser: sync_api.Browser, site: Site
) -> None:
    page = sign_in_as(browser, site.url, NURSE, PASSWORD)
    page.goto(f"{site.url}/web/children/{CHILD}")
    table = page.locator("#chronology")
    sync_api.expect(table.locator("caption")).to_contain_text("in time order")
    events = table.locator("tbody tr td:nth-child(3)").all_inner_texts()
    assert _kinds(events) == EXPECTED
    assert table.locator("tbody tr td:nth-child(1)").first.inner_text().startswith("2025-06-01")
    assert violations(page) == []  # WCAG 2.2 AA
    page.get_by_role("link", name="print it").click()
    sync_api.expect(page.locator("h1")).to_contain_text(f"Multi-agency chronology: NHS {CHILD}")
    printed = page.locator("table tbody tr td:nth-child(3)").all_inner_texts()
    assert printed == events
    page.context.close()
