"""Sending a task's message from the faces (issue 18 part 2) against a real server on loopback: the API sends,
reads (an audited read) and marks a letter sent, refusing one who does not own the task; the letter's page
prints with print CSS; the CLI sends and marks sent; and, in headless Chromium, the booking team sends a letter
from the worklist, prints it and marks it sent, then sees it on the child's page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.conftest import ROOT, FixedClock
from tests.server import serving
from tests.service.test_assignment import records
from tests.sharing import CHILD, CLERK, DOCTOR, NURSE, PASSWORD, load
from tests.web.browser import launched, sign_in_as, sync_api, violations
from wnb.api import create_app
from wnb.cli.main import app as cli_app
from wnb.core.domain import Role
from wnb.core.policy import Kind, Principal
from wnb.core.ruleset import Ruleset
from wnb.core.sharing import SharingConfig
from wnb.database import open_database
from wnb.service import Service
from wnb.settings import load_settings
from wnb.store import chronology, communications, listing

SECRET = "sharing-test-session-secret-0123456789"


class Site:
    def __init__(self, url: str, service: Service) -> None:
        self.url, self.service = url, service

    def as_person(self, name: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(name, PASSWORD), timeout=20)

    def task(self, code: str) -> dict[str, Any]:
        with self.service.db.connect() as connection:
            return next(t for t in listing.tasks(connection, include_closed=True) if t["code"] == code)


@pytest.fixture
def site(tmp_path: Path, ruleset: Ruleset) -> Iterator[Site]:
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    clock = FixedClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    service = Service(db, ruleset, clock, sharing=SharingConfig(("nhs.net",)))
    load(service)
    with serving(create_app(service, settings=load_settings(session_secret=SECRET))) as url:
        yield Site(url, service)
    db.dispose()


def test_the_api_sends_a_letter_reads_it_and_marks_it_sent_refusing_one_who_does_not_own_the_task(
    site: Site,
) -> None:
    task = site.task("notify-social-worker")  # the safeguarding nurses'
    with site.as_person(DOCTOR) as doctor:
        refused = doctor.post(f"/v1/tasks/{task['id']}/communications", json={"channel": "letter"})
    assert refused.status_code == 403 and "safeguarding-nurse role" in refused.json()["reason"]
    with site.as_person(NURSE) as nurse:
        off = nurse.post(f"/v1/tasks/{task['id']}/communications", json={"channel": "email"})
        assert off.status_code == 409 and "no e-mail address" in off.json()["reason"]
        made = nurse.post(f"/v1/tasks/{task['id']}/communications", json={"channel": "letter"})
        assert made.status_code == 201, made.text
        message = made.json()
        assert message["status"] == "awaiting-send" and message["recipient_name"] == (
            "A. Duty, Northshire Children's Services"
        )
        assert message["content"]["nhs_number"] == CHILD and message["content"]["ack_url"] is None
        read = nurse.get(f"/v1/communications/{message['reference']}")
        assert read.status_code == 200 and read.json()["id"] == message["id"]
        sent = nurse.post(f"/v1/communications/{message['id']}/sent")
        assert sent.status_code == 200 and sent.json()["status"] == "sent"
        again = nurse.post(f"/v1/communications/{message['id']}/sent")
        assert again.status_code == 409
    assert site.task("notify-social-worker")["status"] == "awaiting-acknowledgement"
    views = [r["payload"].get("view") for r in records(site.service, "record_read")]
    assert "communication-api" in views
    with site.service.db.connect() as connection:
        rows = chronology.entries(connection, CHILD)
    assert any(f"message {message['reference']} sent by letter" in row.event for row in rows)


def test_the_letters_page_prints_the_letter_alone(site: Site) -> None:
    made = site.service.send_communication(
        site.task("inform-gp")["id"], "letter", Principal(Kind.USER, CLERK, Role.BOOKING_TEAM)
    )
    with httpx.Client(base_url=site.url, timeout=20) as client:
        form = client.get("/web/sign-in")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token
        client.post("/web/sign-in", data={"csrf": token.group(1), "name": CLERK, "password": PASSWORD})
        page = client.get(f"/web/communications/M{made.id}/letter")
        css = client.get("/web/static/wnb.css").text
    assert page.status_code == 200
    assert 'class="letter"' in page.text and f"Reference: {made.reference}" in page.text and CHILD in page.text
    assert "@media print" in css and "article.letter" in css and ".no-print" in css


def test_the_cli_sends_a_letter_and_marks_it_sent(site: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WNB_DATABASE_URL", site.service.db.url.render_as_string(hide_password=False))
    monkeypatch.setenv("WNB_RULES_DIR", str(ROOT / "rules" / "default"))
    task = site.task("inform-gp")["id"]
    runner = CliRunner()
    out = tmp_path / "letter.html"
    sent = runner.invoke(cli_app, ["task", "send", task, "--channel", "letter", "--by", CLERK, "--out", str(out)])
    assert sent.exit_code == 0, sent.output
    reference = f"WNB-{task}-1"
    assert f"letter {reference} to Riverside Surgery is ready" in sent.output
    assert "@media print" in out.read_text() and CHILD in out.read_text()
    refused = runner.invoke(cli_app, ["task", "letter-sent", reference, "--by", NURSE])
    assert refused.exit_code == 1 and "may not act on it" in refused.output
    marked = runner.invoke(cli_app, ["task", "letter-sent", reference, "--by", CLERK])
    assert marked.exit_code == 0, marked.output
    with site.service.db.connect() as connection:
        found = communications.by_reference(connection, reference)
    assert found is not None and found.status == "sent" and found.sent_by == f"user:{CLERK}"


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    yield from launched()


def test_the_booking_team_sends_a_letter_from_the_worklist_and_marks_it_sent(
    browser: sync_api.Browser, site: Site
) -> None:
    task = site.task("inform-gp")["id"]
    page = sign_in_as(browser, site.url, CLERK, PASSWORD)
    row = page.locator(f"#task-{task}")
    row.locator("details.send summary").click()
    sync_api.expect(row.locator(".recipient")).to_contain_text("Riverside Surgery (gp-practice)")
    assert violations(page) == []  # WCAG 2.2 AA, the form open
    row.get_by_label("How").select_option("letter")
    row.get_by_role("button", name=f"Send {task}", exact=True).click()
    reference = f"WNB-{task}-1"
    sync_api.expect(page.get_by_role("status")).to_contain_text(f"Letter {reference} to Riverside Surgery is ready")
    letter = page.get_by_role("article", name="The letter")
    sync_api.expect(letter).to_contain_text(f"Reference: {reference}")
    assert violations(page) == []
    page.emulate_media(media="print")
    sync_api.expect(page.locator("header.top")).to_be_hidden()  # printed, the letter alone
    sync_api.expect(page.get_by_role("button", name=f"Mark letter {reference} sent")).to_be_hidden()
    sync_api.expect(letter).to_be_visible()
    page.emulate_media(media="screen")
    page.get_by_role("button", name=f"Mark letter {reference} sent").click()
    sync_api.expect(page.get_by_role("status")).to_contain_text(f"Letter {reference} marked sent")
    sync_api.expect(page.locator(f"#message-{reference} .message-status")).to_contain_text("sent")
    sync_api.expect(page.locator(f"#open-tasks #task-{task}")).to_contain_text("sent, awaiting acknowledgement")
    assert violations(page) == []  # the child's page with its messages
