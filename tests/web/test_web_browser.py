"""The three journeys of issue 4, and signing in to what `wnb demo --serve` serves (issue 17), in headless Chromium
against a real server on loopback.

Set WNB_SCREENSHOTS=docs/screenshots to save the main pages as PNG files there (see README "Pages").
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO

import pytest

from tests.server import answers, free_port, wait_for
from tests.web.browser import launched, shot, sign_in, sign_in_as, sync_api, violations
from tests.web_fixtures import AMBER_CHILD, RED_CHILD, Site, running_site, stored_candidate
from wnb.core.ruleset import Ruleset
from wnb.store import listing
from wnb.store.accounts import create_user


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, ruleset: Ruleset) -> Iterator[Site]:
    with running_site(tmp_path_factory.mktemp("browser"), ruleset) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    yield from launched()


def test_a_nurse_acknowledges_and_completes_the_red_task_at_the_top(browser: sync_api.Browser, site: Site) -> None:
    page = sign_in(browser, site, "safeguarding-nurse", shoot=True)
    first = page.locator("table.worklist tbody tr").first
    sync_api.expect(first).to_have_class("level-red")
    sync_api.expect(first).to_contain_text("Tell the child's social worker")
    sync_api.expect(first).to_contain_text("today 17:00")
    task_id = first.get_attribute("data-task")
    shot(page, "worklist")

    first.get_by_role("button", name=f"Acknowledge {task_id}").click()
    sync_api.expect(page.get_by_role("status")).to_contain_text(
        f"Task {task_id} (Tell the child's social worker) acknowledged"
    )
    row = page.locator(f"#task-{task_id}")
    sync_api.expect(row).to_contain_text("acknowledged")
    row.locator("details.complete summary").click()  # the note and its confirmation open on demand
    row.get_by_label("Note").fill("Social worker told by phone")
    row.get_by_role("button", name=f"Complete {task_id}", exact=True).click()
    sync_api.expect(page.get_by_role("status")).to_contain_text("completed")
    sync_api.expect(page.locator(f"#task-{task_id}")).to_have_count(0)

    page.get_by_role("link", name="Find a child").click()
    page.get_by_label("NHS number").fill(RED_CHILD)
    page.get_by_role("button", name="Open").click()
    done = page.locator(f"#closed-tasks #task-{task_id}")
    sync_api.expect(done).to_contain_text("completed by user:nurse.jo")
    sync_api.expect(done).to_contain_text("Social worker told by phone")
    shot(page, "child")

    auditor = sign_in(browser, site, "governance")
    auditor.goto(f"{site.url}/web/audit")
    auditor.get_by_label("Subject (T12, F3, NHS number)").fill(task_id or "")
    auditor.get_by_role("button", name="Filter").click()
    sync_api.expect(auditor.locator("#chain")).to_contain_text("Chain intact")
    completed = auditor.locator('tr[data-action="task_completed"]')
    sync_api.expect(completed).to_contain_text("user:nurse.jo")
    shot(auditor, "audit")


def test_a_booking_team_user_cannot_open_governance_pages(browser: sync_api.Browser, site: Site) -> None:
    page = sign_in(browser, site, "booking-team")
    sync_api.expect(page.get_by_role("navigation")).not_to_contain_text("Governance")
    answer = page.goto(f"{site.url}/web/governance")
    assert answer is not None and answer.status == 403
    sync_api.expect(page.get_by_role("alert")).to_contain_text("may not open this page")
    shot(page, "refused")
    page.goto(f"{site.url}/web/rejects")
    shot(page, "rejects")


def test_a_governance_user_simulates_a_changed_threshold_and_sees_the_difference(
    browser: sync_api.Browser, site: Site
) -> None:
    version = stored_candidate(site.service, site.folder, repeat_misses=3)
    page = sign_in(browser, site, "governance")
    page.get_by_label("From").fill("2026-02-01")
    page.get_by_label("To (included)").fill("2026-03-02")
    page.get_by_role("button", name="Show period").click()
    sync_api.expect(page.locator("svg.chart").first).to_be_visible()
    shot(page, "governance")

    page.get_by_role("link", name="Simulate").click()
    page.get_by_label("Ruleset version").select_option(version)
    page.get_by_label("From").fill("2026-02-01")
    page.get_by_label("To (included)").fill("2026-03-02")
    page.get_by_role("button", name="Run simulation").click()
    sync_api.expect(page.locator("#verdict")).to_contain_text("would have raised something different")
    repeat = page.locator('#sim-rules tr[data-key="WNB-06"]')
    sync_api.expect(repeat).to_have_class("differs")
    sync_api.expect(repeat).to_contain_text("flags -1")
    sync_api.expect(page.locator("#only-actual")).to_contain_text("Repeatedly not brought")
    shot(page, "simulate")
    with site.service.db.connect() as connection:  # the real database still holds the flag
        assert any(flag["code"] == "repeat-wnb" for flag in listing.flags(connection))


def test_a_lead_assigns_a_task_to_a_named_nurse_and_reassigns_it_with_a_reason(
    browser: sync_api.Browser, site: Site
) -> None:
    create_user(site.service.db, "lead.pat", "safeguarding-lead", "lead passphrase for tests")
    create_user(site.service.db, "nurse.sam", "safeguarding-nurse", "second nurse passphrase")
    with site.service.db.connect() as connection:
        task = next(t for t in listing.tasks(connection, role="safeguarding-nurse") if t["nhs_number"] == AMBER_CHILD)
    ref = str(task["id"])
    page = sign_in_as(browser, site.url, "lead.pat", "lead passphrase for tests")
    page.get_by_label("Role").select_option("safeguarding-nurse")  # a lead opens the team's worklist
    page.get_by_role("button", name="Show").click()
    row = page.locator(f"#task-{ref}")
    row.get_by_label(f"Assign {ref} to a named person…").click()
    row.get_by_label("Assign to").select_option("nurse.jo")
    row.get_by_role("button", name=f"Assign {ref} to the person chosen").click()
    sync_api.expect(page.get_by_role("status")).to_contain_text(f"Task {ref} (")
    sync_api.expect(page.get_by_role("status")).to_contain_text("is assigned to nurse.jo.")
    sync_api.expect(page.locator(f"#task-{ref} td.assignee")).to_have_text("nurse.jo")
    assert violations(page) == []  # axe: the select and the reason are labelled, among the rest

    row = page.locator(f"#task-{ref}")
    row.get_by_label(f"Reassign {ref} to a named person…").click()
    row.get_by_label("Assign to").select_option("nurse.sam")
    row.get_by_role("button", name=f"Assign {ref} to the person chosen").click()  # no reason: refused, in words
    sync_api.expect(page.get_by_role("alert")).to_contain_text("give a reason to reassign it to nurse.sam")
    row = page.locator(f"#task-{ref}")
    row.get_by_label(f"Reassign {ref} to a named person…").click()
    row.get_by_label("Assign to").select_option("nurse.sam")
    row.get_by_label("Reason").fill("Jo is on leave this week")
    row.get_by_role("button", name=f"Assign {ref} to the person chosen").click()
    sync_api.expect(page.get_by_role("status")).to_contain_text(
        "is reassigned from nurse.jo to nurse.sam: Jo is on leave this week."
    )
    sync_api.expect(page.locator(f"#task-{ref} td.assignee")).to_have_text("nurse.sam")
    with site.service.db.connect() as connection:
        assert next(t for t in listing.tasks(connection) if t["id"] == ref)["assignee"] == "nurse.sam"


def test_a_nurse_finds_a_child_s_tasks_acknowledges_the_selected_and_waits_for_a_reply(
    browser: sync_api.Browser, site: Site
) -> None:
    page = sign_in(browser, site, "safeguarding-nurse")
    page.get_by_label("Search").fill("999 000 0042")  # spaced as people write it
    page.get_by_role("button", name="Show").click()
    assert "q=999" in page.url  # the search is kept in the address
    rows = page.locator("table.worklist tbody tr")
    sync_api.expect(rows.first).to_contain_text("999 000 0042")
    boxes = page.locator("table.worklist tbody input[type=checkbox]")
    selected = boxes.count()
    assert selected >= 1
    for box in boxes.all():
        box.check()
    page.get_by_role("button", name="Acknowledge selected").click()
    sync_api.expect(page.get_by_role("status")).to_contain_text(f"{selected} task")
    sync_api.expect(page.locator("table.worklist tbody input[type=checkbox]")).to_have_count(0)
    assert "q=999" in page.url  # back on the same search

    task_id = rows.first.get_attribute("data-task") or ""
    row = page.locator(f"#task-{task_id}")
    row.get_by_label(f"Wait for a reply on {task_id}…").click()
    until = (site.clock.now + timedelta(days=2)).date()
    row.get_by_label("Waiting until").fill(until.isoformat())
    row.get_by_label("Reason").fill("Asked the GP practice for the last letter")
    row.get_by_role("button", name=f"Wait for a reply on {task_id}", exact=True).click()
    sync_api.expect(page.get_by_role("status")).to_contain_text(f"waits for a reply until {until:%a %d %b %Y}")
    with site.service.db.connect() as connection:
        stored = connection.exec_driver_sql("SELECT waiting_until FROM task WHERE id = ?", (int(task_id[1:]),))
        assert stored.scalar_one() is not None


# ---- the demo ----


def _printed_until(stream: IO[str], marker: str) -> str:
    """What a process prints up to and including the first line holding `marker`."""
    printed = ""
    for line in iter(stream.readline, ""):
        printed += line
        if marker in line:
            return printed
    raise AssertionError(f"it ended before printing {marker!r}:\n{printed}")


def test_a_person_signs_in_with_an_account_wnb_demo_serve_printed(browser: sync_api.Browser, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WNB_")}
    env.update(COLUMNS="200", WNB_LOG_LEVEL="WARNING")
    command = [str(Path(sys.executable).parent / "wnb"), "demo", "--serve", "--port", str(free_port())]
    with (
        (tmp_path / "demo.log").open("w") as log,
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=log, text=True) as demo,
    ):
        try:
            assert demo.stdout is not None
            printed = _printed_until(demo.stdout, "Serving the demo at ")
            accounts = dict(re.findall(r"^│ ([a-z-]+) +│ (\S+) +│$", printed, re.MULTILINE))
            address = re.search(r"Serving the demo at (http://127\.0\.0\.1:\d+)/web/", printed)
            assert address, printed
            wait_for(lambda: answers(f"{address[1]}/health/live"), seconds=30)

            # The nurse's work of the demo's day is there, not escalated away by serve's first sweep.
            page = sign_in_as(browser, address[1], "safeguarding-nurse", accounts["safeguarding-nurse"])
            sync_api.expect(page.locator("header")).to_contain_text("safeguarding-nurse (safeguarding-nurse)")
            sync_api.expect(page.locator("table.worklist tbody tr").first).to_be_visible()
            sync_api.expect(page.locator("table.worklist")).not_to_contain_text("overdue")
        finally:
            demo.terminate()  # and the block's end waits for it


# ---- a ruleset change from proposal to evaluation (issue 15) ----

OFFICER = ("cso.ann", "officer passphrase for the browser")
MASH_CHILD = "9990000131"  # three misses over eleven months: WNB-07 under a 365-day look-back, not under 300


@pytest.fixture(scope="module")
def registry_site(tmp_path_factory: pytest.TempPathFactory, ruleset: Ruleset) -> Iterator[Site]:
    """A site that judges by the registry's active version, as `wnb serve` does, with a safety officer."""
    from datetime import datetime

    from tests.web_fixtures import event
    from wnb.store.accounts import create_user

    with running_site(tmp_path_factory.mktemp("browser-registry"), ruleset, follow_registry=True) as running:
        create_user(running.service.db, OFFICER[0], "clinical-safety-officer", OFFICER[1])
        now = running.clock.now
        for number, day in enumerate(("2025-04-10", "2025-10-09", "2026-03-02"), start=1):
            running.clock.now = datetime.fromisoformat(f"{day}T10:00:00+00:00")
            running.service.ingest([event(MASH_CHILD, f"mash-{number}", day)], origin="feed")
        running.clock.now = now
        yield running


def test_a_threshold_change_is_proposed_backtested_approved_activated_and_judges_the_next_event(
    browser: sync_api.Browser, registry_site: Site
) -> None:
    from sqlalchemy import select

    from tests.web_fixtures import event
    from wnb.store import audit

    site = registry_site
    page = sign_in(browser, site, "governance")
    sync_api.expect(page.locator("#unapproved-banner")).to_contain_text("Ruleset active, not yet approved")
    page.get_by_role("link", name="Rulesets").click()
    sync_api.expect(page.locator("#history")).to_contain_text("active, not yet approved")
    page.get_by_role("link", name="Propose a change to the parameters").click()
    page.get_by_label("counts.missed_all_services_365d.window_days", exact=True).fill("300")
    page.get_by_label("What changes and why").fill("a shorter look-back for the MASH rule")
    page.set_default_timeout(90_000)  # the check and the scenarios run before the page answers
    page.get_by_role("button", name="Check and propose").click()
    sync_api.expect(page.locator("#job-version")).to_be_visible(timeout=90_000)  # the page reloads until done
    page.locator("#job-version").click()
    page.set_default_timeout(10_000)
    sync_api.expect(page.locator("#backtest-verdict")).to_contain_text("would have raised something different")
    mash = page.locator('#backtest-rules tr[data-key="WNB-07"]')
    sync_api.expect(mash).to_have_class("differs")
    sync_api.expect(mash).to_contain_text("flags -1")
    shot(page, "ruleset-proposed")
    version_url = page.url
    version = version_url.rsplit("/", 1)[1]

    officer = sign_in_as(browser, site.url, *OFFICER)
    officer.goto(version_url)
    officer.get_by_label("Reason (approve)").fill("the backtest shows the intended change only")
    officer.get_by_label("Your password (approve)").fill(OFFICER[1])
    officer.get_by_role("button", name="Approve", exact=True).click()
    sync_api.expect(officer.locator("#status")).to_contain_text("approved")

    admin = sign_in(browser, site, "admin")
    admin.goto(version_url)
    admin.get_by_role("button", name="Activate", exact=True).click()
    sync_api.expect(admin.locator("#status")).to_have_attribute("data-status", "active")
    sync_api.expect(admin.locator("#unapproved-banner")).to_have_count(0)
    shot(admin, "ruleset-activated")

    site.service.ingest([event(MASH_CHILD, "after-activation", "2026-03-02", appointment_id="a-next")], origin="feed")
    with site.service.db.connect() as connection:
        query = select(audit._audit).where(audit._audit.c.action == "evaluation").order_by(audit._audit.c.seq.desc())
        latest = connection.execute(query).first()
    assert latest is not None and latest.payload["event_id"] == "after-activation"
    assert latest.ruleset_version == version
