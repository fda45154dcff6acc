"""What the browser tests share: Debian's chromium driven by Playwright, a page signed in through the form, the
screenshots, and axe-core's check of a page against WCAG 2.2 A and AA.

Importing this module skips the importing test module when chromium or Playwright is absent.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from tests.web_fixtures import STAFF, Site

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium (apt install chromium)", True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need Playwright (pip install playwright)")

SHOTS = os.environ.get("WNB_SCREENSHOTS")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def launched() -> Iterator[sync_api.Browser]:
    """One headless chromium, for a module-scoped fixture."""
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def shot(page: sync_api.Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def new_page(browser: sync_api.Browser, width: int = 1280, height: int = 900) -> sync_api.Page:
    """A page in a fresh browser context (its own cookies), in UK English and UK time."""
    page = browser.new_context(
        viewport={"width": width, "height": height}, locale="en-GB", timezone_id="Europe/London"
    ).new_page()
    page.set_default_timeout(10_000)
    return page


def sign_in(browser: sync_api.Browser, site: Site, role: str, shoot: bool = False) -> sync_api.Page:
    """A fresh browser context signed in as the staff member of `role`."""
    name, password = STAFF[role]
    return sign_in_as(browser, site.url, name, password, shoot)


def sign_in_as(browser: sync_api.Browser, url: str, name: str, password: str, shoot: bool = False) -> sync_api.Page:
    """A fresh browser context signed in through the form, by keyboard where a person would."""
    page = new_page(browser)
    page.goto(f"{url}/web/")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    if shoot:
        shot(page, "sign-in")
    page.get_by_label("Password").press("Enter")
    page.wait_for_load_state()
    return page


# ---- axe-core ----

# axe.min.js comes from the axe-playwright-python wheel (pinned in pyproject's test extra), which ships it as
# package data: `pip install -e .[test]` stays the whole set-up, with no npm.
AXE_SCRIPT = files("axe_playwright_python").joinpath("axe.min.js")
_axe_source = functools.cache(lambda: AXE_SCRIPT.read_text(encoding="utf-8"))
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
_RUN = """async tags => {
    const results = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
    return results.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary.replace(/\\s+/g, ' ')),
    }));
}"""


def axe_version() -> str:
    head = _axe_source()[:40]
    return head.split("axe v", 1)[1].split()[0]


def violations(page: sync_api.Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.0, 2.1 and 2.2 level A and AA violations of the page as it is now."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    found: list[dict[str, Any]] = page.evaluate(_RUN, WCAG_22_AA)
    return found
