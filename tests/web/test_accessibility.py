"""Accessibility checked by a machine (issue 16): axe-core, in Debian's chromium, finds no WCAG 2.2 level A or AA
violation on any page template in the states the browser tests reach (empty, full, error), at 1280 and 320 px wide.

One server and one browser for the module; each state is checked at both widths without reloading.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.browser import axe_version, new_page, sign_in, sync_api, violations
from tests.web.browser import launched as launch_browser
from tests.web_fixtures import RED_CHILD, REPEAT_CHILD, Site, running_site, stored_candidate
from wnb.core.items import RawItem
from wnb.core.ruleset import Ruleset
from wnb.service.proposal_jobs import this_process
from wnb.store import ruleset_jobs

WIDTHS = (1280, 320)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, ruleset: Ruleset) -> Iterator[Site]:
    with running_site(tmp_path_factory.mktemp("a11y"), ruleset) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    yield from launch_browser()


class Checker:
    """Checks pages as they are now at each width; keeps what axe found by state."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.found: dict[str, list[dict[str, Any]]] = {}
        self.states: list[str] = []

    def visit(self, page: sync_api.Page, path: str, state: str, error: bool = False) -> None:
        """Open `path` and check it; `error`: the page says what went wrong (an alert)."""
        page.goto(f"{self.site.url}{path}")
        if error:
            sync_api.expect(page.get_by_role("alert").first).to_be_visible()
        self.check(page, state)

    def check(self, page: sync_api.Page, state: str) -> None:
        self.states.append(state)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            if found := violations(page):
                self.found[f"{state} at {width} px"] = found
        page.set_viewport_size({"width": WIDTHS[0], "height": 900})

    def assert_clean(self) -> None:
        assert self.states
        assert not self.found, json.dumps(self.found, indent=1)


def test_the_check_finds_what_it_looks_for(browser: sync_api.Browser, site: Site) -> None:
    """axe runs with the WCAG 2.2 A and AA rules: a page made wrong on purpose fails."""
    page = new_page(browser)
    page.goto(f"{site.url}/web/sign-in")
    page.evaluate("""() => {
        const wrong = '<p id="faint">faint words</p><input><img src="x.png">';
        document.querySelector('main').insertAdjacentHTML('beforeend', wrong);
        document.getElementById('faint').style.color = '#bbb';  // the pages' policy refuses style attributes
    }""")
    assert {"color-contrast", "label", "image-alt"} <= {found["id"] for found in violations(page)}
    assert axe_version() == "4.12.1"


def test_signed_out_pages(browser: sync_api.Browser, site: Site) -> None:
    checker = Checker(site)
    page = new_page(browser)
    checker.visit(page, "/web/sign-in", "sign-in")
    page.get_by_label("User name").fill("nurse.jo")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    sync_api.expect(page.get_by_role("alert")).to_be_visible()
    checker.check(page, "sign-in, wrong password")
    checker.assert_clean()


def test_the_nurse_pages(browser: sync_api.Browser, site: Site) -> None:
    checker = Checker(site)
    page = sign_in(browser, site, "safeguarding-nurse")
    checker.check(page, "worklist, full")
    first = page.locator("table.worklist tbody tr").first
    task_id = first.get_attribute("data-task")
    first.get_by_role("button", name=f"Acknowledge {task_id}").click()
    sync_api.expect(page.get_by_role("status")).to_be_visible()
    page.locator(f"#task-{task_id} details.complete summary").click()
    checker.check(page, "worklist, acknowledged, the completion note open")
    checker.visit(page, "/web/?q=nobody-matches", "worklist, empty")
    checker.visit(page, f"/web/children/{RED_CHILD}", "child, full")
    checker.visit(page, f"/web/children/{REPEAT_CHILD}", "child, no register record")
    family = {"nhs_number": "9990000085", "related": [{"nhs_number": RED_CHILD, "relationship": "sibling"}]}
    site.service.import_context([RawItem(1, json.dumps(family), family)], origin="register")
    checker.visit(page, "/web/children/9990000085", "child, a family with a red flag")
    checker.visit(page, "/web/children", "find child")
    checker.visit(page, "/web/children?nhs_number=123", "find child, error", error=True)
    checker.visit(page, f"/web/explain/{task_id}", "explain")
    checker.visit(page, "/web/password", "password")
    page.get_by_label("Current password").fill("wrong")
    page.get_by_label("New password (at least", exact=False).fill("a new long passphrase here")
    page.get_by_label("New password again").fill("a new long passphrase here")
    page.get_by_role("button", name="Change password").click()
    checker.check(page, "password, error")
    checker.visit(page, "/web/governance", "refused", error=True)
    checker.visit(page, "/web/explain/T99999", "not found", error=True)
    checker.assert_clean()


def test_the_governance_pages(browser: sync_api.Browser, site: Site) -> None:
    checker = Checker(site)
    page = sign_in(browser, site, "governance")
    checker.check(page, "governance, this month")
    checker.visit(page, "/web/governance?first=2026-02-01&last=2026-03-02", "governance, full")
    checker.visit(page, "/web/governance?first=2020-01-01&last=2020-01-31", "governance, empty")
    checker.visit(page, "/web/governance?first=2026-03-02&last=2026-02-01", "governance, error", error=True)
    checker.visit(page, "/web/audit", "audit, full")
    checker.visit(page, "/web/audit?subject=T99999", "audit, empty")
    checker.visit(page, "/web/audit?first=yesterday", "audit, error", error=True)
    checker.visit(page, "/web/rejects", "rejects and context quality, full")
    checker.visit(page, "/web/rejects?show=all", "rejects, all")
    checker.visit(page, "/web/rulesets", "rulesets, empty")
    checker.visit(page, "/web/simulate", "simulate, no version")
    checker.visit(page, "/web/rulesets/propose", "ruleset propose")
    page.get_by_role("button", name="Check and propose").click()
    checker.check(page, "ruleset propose, error")
    first = stored_candidate(site.service, site.folder, repeat_misses=3)
    second = stored_candidate(site.service, site.folder, repeat_misses=4)
    checker.visit(page, "/web/rulesets", "rulesets, full")
    checker.visit(page, f"/web/rulesets/{first}", "ruleset version")
    checker.visit(page, f"/web/rulesets/diff?first={first}&second={second}", "ruleset diff")
    checker.visit(page, "/web/rulesets/diff", "ruleset diff, nothing chosen")
    db, now = site.service.db, site.clock.now
    job = ruleset_jobs.start(db, {}, "0" * 64, "gov.sam", "a note", now, owner=this_process())  # a live job
    page.goto(f"{site.url}/web/rulesets/jobs/{job}")
    page.get_by_role("button", name="Stop reloading").click()  # a person can stop the reloading (WCAG 2.2.1)
    sync_api.expect(page.locator("#reloading")).to_contain_text("Reloading stopped")
    checker.check(page, "ruleset job, queued")
    ruleset_jobs.update_job(db, job, state="done", stage="done", version=first, finished_at=now)
    checker.visit(page, f"/web/rulesets/jobs/{job}", "ruleset job, done")
    ruleset_jobs.update_job(db, job, state="failed", stage="backtest", version=None, error="it failed: try again")
    checker.visit(page, f"/web/rulesets/jobs/{job}", "ruleset job, failed")
    checker.visit(page, "/web/simulate", "simulate")
    page.get_by_label("Ruleset version").select_option(first)
    page.get_by_label("From").fill("2026-02-01")
    page.get_by_label("To (included)").fill("2026-03-02")
    page.get_by_role("button", name="Run simulation").click()
    sync_api.expect(page.locator("#verdict")).to_be_visible()
    checker.check(page, "simulate, result")
    checker.assert_clean()


# ---- keyboard only (Tab, Shift+Tab, Enter, Space) ----

FOCUSED = """() => {
    const e = document.activeElement, s = getComputedStyle(e), r = e.getBoundingClientRect();
    return {
        name: (e.getAttribute('aria-label') || e.labels?.[0]?.textContent || e.textContent || '').trim().slice(0, 80),
        tag: e.tagName.toLowerCase(),
        order: [...document.querySelectorAll('*')].indexOf(e),
        ring: (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== 'none',
        shown: r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0,
    };
}"""


def tab_to(page: sync_api.Page, name: str, back: bool = False, most: int = 60) -> dict[str, Any]:
    """Press Tab (Shift+Tab with `back`) until the focused control's name starts with `name`; each control on
    the way shows a focus ring and comes after (before) the last in the page's order."""
    last: int | None = None
    passed = []
    for _ in range(most):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        focused: dict[str, Any] = page.evaluate(FOCUSED)
        passed.append(focused["name"])
        assert focused["ring"] and focused["shown"], f"no visible focus on {focused}"
        if last is not None:
            # (a date field's day, month and year are one element)
            assert (focused["order"] <= last) if back else (focused["order"] >= last), f"out of order: {passed}"
        last = focused["order"]
        if focused["name"].startswith(name):
            return focused
    raise AssertionError(f"{name!r} is not reached by keyboard; passed {passed}")


def keyboard_sign_in(browser: sync_api.Browser, site: Site, role: str) -> sync_api.Page:
    from tests.web_fixtures import STAFF

    name, password = STAFF[role]
    page = new_page(browser)
    page.goto(f"{site.url}/web/")
    # The form's first field has the focus: the browser moves it there (autofocus) at its next rendering step,
    # which on a loaded machine may come after the page has loaded.
    page.wait_for_function("() => document.activeElement !== document.body", timeout=10_000)
    assert page.evaluate(FOCUSED)["name"].startswith("User name")
    page.keyboard.type(name)
    tab_to(page, "Password")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("header")).to_contain_text(name)  # signed in, on the role's first page
    page.wait_for_load_state()
    return page


def skip_to_content(page: sync_api.Page) -> None:
    """The first Tab reaches the skip link (the navigation comes before the content); Enter moves to main."""
    focused = tab_to(page, "Skip to content", most=1)
    assert focused["shown"]
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_a_nurse_works_a_task_by_keyboard_alone(browser: sync_api.Browser, site: Site) -> None:
    page = keyboard_sign_in(browser, site, "safeguarding-nurse")
    first = page.locator("table.worklist tbody tr").first
    task_id = first.get_attribute("data-task")
    skip_to_content(page)
    tab_to(page, "Service")  # the filters come first, then the bulk action, then each row
    tab_to(page, f"Assign {task_id} to me")
    page.keyboard.press("Enter")
    sync_api.expect(page.get_by_role("status")).to_contain_text("assigned to you")
    row = page.locator(f"#task-{task_id}")
    sync_api.expect(row).to_contain_text("acknowledged")
    skip_to_content(page)
    tab_to(page, f"Complete {task_id}…")
    page.keyboard.press("Space")  # opens the note and its confirmation
    tab_to(page, "Note (required")
    page.keyboard.type("Social worker told by phone")
    tab_to(page, f"Complete {task_id}")
    page.keyboard.press("Enter")
    sync_api.expect(page.get_by_role("status")).to_contain_text("completed")
    skip_to_content(page)
    tab_to(page, "999 000")  # the first child's link in the worklist
    page.keyboard.press("Enter")
    sync_api.expect(page.get_by_role("heading", level=1)).to_contain_text("Child 999 000")


def test_a_governance_lead_changes_the_period_and_opens_the_audit_by_keyboard_alone(
    browser: sync_api.Browser, site: Site
) -> None:
    page = keyboard_sign_in(browser, site, "governance")
    skip_to_content(page)
    tab_to(page, "From")
    page.keyboard.type("02012026")  # month, day, year: headless chromium lays date fields out in en-US
    tab_to(page, "To (included)")
    page.keyboard.type("03022026")
    tab_to(page, "Show period")
    page.keyboard.press("Enter")
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("Governance: 2026-02-01 to 2026-03-02")
    skip_to_content(page)
    tab_to(page, "Audit log", back=True)  # back up from the content to the navigation
    page.keyboard.press("Enter")
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    skip_to_content(page)
    tab_to(page, "Filter")
    explained = tab_to(page, "T")  # the first task named in the log
    page.keyboard.press("Enter")
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text(f"Why {explained['name']} was raised")
