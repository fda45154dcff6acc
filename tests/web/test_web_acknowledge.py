"""Acknowledging a message from outside (issue 18 part 3) against a real server on loopback: the signed link's
page shows no personal data and acknowledges only by its button (a POST: mail scanners follow links), once; an
altered or expired link shows a clear page and changes nothing; a partner's key bound to the recipient
acknowledges through the API, any other key is refused; `wnb keys bind --recipient` binds one; and, in headless
Chromium, a recipient opens the link, gives their name and presses the button."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.conftest import FixedClock
from tests.server import serving
from tests.service.test_assignment import person, records
from tests.sharing import CHILD, CLERK, CONTEXT, load
from tests.web.browser import launched, new_page, sync_api, violations
from wnb.api import create_app
from wnb.cli.main import app as cli_app
from wnb.core.ack_links import make_token
from wnb.core.domain import Role
from wnb.core.ruleset import Ruleset
from wnb.core.sharing import SharingConfig
from wnb.database import open_database
from wnb.service import Service
from wnb.settings import load_settings
from wnb.store import listing
from wnb.store.accounts import create_api_key
from wnb.store.communications import Communication

SECRET = "acknowledge-test-session-secret-0123456789"
LINK_SECRET = "acknowledge-test-link-secret-0123456789"
CLERK_P = person(CLERK, Role.BOOKING_TEAM)


class Site:
    def __init__(self, url: str, service: Service, folder: Path) -> None:
        self.url, self.service, self.folder = url, service, folder

    def gp_task(self) -> dict[str, Any]:
        with self.service.db.connect() as connection:
            return next(t for t in listing.tasks(connection, include_closed=True) if t["code"] == "inform-gp")

    def letter_sent(self) -> Communication:
        made = self.service.send_communication(str(self.gp_task()["id"]), "letter", CLERK_P)
        return self.service.mark_letter_sent(made.reference, CLERK_P)


@pytest.fixture
def site(tmp_path: Path, ruleset: Ruleset) -> Iterator[Site]:
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    service = Service(db, ruleset, FixedClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC)))
    load(service)
    with serving(create_app(service, settings=load_settings(session_secret=SECRET))) as url:
        service.sharing = SharingConfig(("nhs.net",), None, url, LINK_SECRET, 30)  # links to this server
        yield Site(url, service, tmp_path)
    db.dispose()


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_the_links_page_shows_no_personal_data_and_acknowledges_once_by_its_button(site: Site) -> None:
    sent = site.letter_sent()
    link = sent.content["ack_url"]
    assert isinstance(link, str) and link.startswith(f"{site.url}/web/ack/")
    with httpx.Client(timeout=20) as recipient:
        opened = recipient.get(link)
        assert opened.status_code == 200 and sent.reference in opened.text
        for personal in (CHILD, "999 000 0018", CONTEXT["date_of_birth"], "01/05/2019", "Riverside", "A. Duty"):
            assert personal not in opened.text, personal
        assert recipient.get(link).status_code == 200  # opening it again (a mail scanner) acknowledges nothing
        assert site.gp_task()["status"] == "awaiting-acknowledgement"
        done = recipient.post(link, data={"csrf": _csrf(opened.text), "name": "Dr A. Reader"})
        assert done.status_code == 200 and "was acknowledged on" in done.text, done.text
        again = recipient.post(link, data={"csrf": _csrf(opened.text), "name": "Someone Else"})
        assert again.status_code == 409 and "was acknowledged on" in again.text
    assert site.gp_task()["status"] == "completed"
    acknowledged = records(site.service, "communication_acknowledged")
    assert [(r["payload"]["by"], r["payload"]["via"]) for r in acknowledged] == [("Dr A. Reader", "link")]


def test_an_altered_or_expired_link_shows_a_clear_page_and_changes_nothing(site: Site) -> None:
    sent = site.letter_sent()
    expired = make_token(sent.id, datetime(2026, 3, 1, tzinfo=UTC), LINK_SECRET)
    altered = str(sent.content["ack_url"]).rsplit("/", 1)[1][:-2] + "xx"
    with httpx.Client(base_url=site.url, timeout=20) as recipient:
        gone = recipient.get(f"/web/ack/{expired}")
        assert gone.status_code == 410 and "expired on 2026-03-01" in gone.text and "<form" not in gone.text
        bad = recipient.get(f"/web/ack/{altered}")
        assert bad.status_code == 404 and "altered" in bad.text
        form = recipient.get(str(sent.content["ack_url"]).removeprefix(site.url))
        posted = recipient.post(f"/web/ack/{altered}", data={"csrf": _csrf(form.text), "name": "A. Reader"})
        assert posted.status_code == 404
        forged = make_token(sent.id, datetime(2026, 4, 1, tzinfo=UTC), "a secret that is not wnb's own at all")
        assert (
            recipient.post(f"/web/ack/{forged}", data={"csrf": _csrf(form.text), "name": "A. Reader"}).status_code
            == 404
        )
    assert records(site.service, "communication_acknowledged") == []
    assert site.gp_task()["status"] == "awaiting-acknowledgement"


def test_a_partners_key_bound_to_the_recipient_acknowledges_by_the_api_and_no_other_key_may(site: Site) -> None:
    sent = site.letter_sent()
    keys = {
        "gp": create_api_key(site.service.db, "clinic-system", "riverside-gp", recipient="y00001"),
        "other": create_api_key(site.service.db, "clinic-system", "hillside-gp", recipient="Y00002"),
        "pas": create_api_key(site.service.db, "clinic-system", "pas", sources=["pas"]),
    }

    def ack(key: str, name: str = "Practice manager") -> httpx.Response:
        with httpx.Client(base_url=site.url, headers={"X-API-Key": keys[key]}, timeout=20) as client:
            return client.post(f"/v1/communications/{sent.reference}/ack", json={"name": name})

    refused = ack("other")
    assert refused.status_code == 403 and "only messages to Y00002" in refused.json()["reason"]
    unbound = ack("pas")
    assert unbound.status_code == 403 and "--recipient" in unbound.json()["reason"]
    assert site.gp_task()["status"] == "awaiting-acknowledgement"
    done = ack("gp")
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["acknowledged_via"]) == ("acknowledged", "api")
    assert ack("gp").status_code == 409
    assert site.gp_task()["status"] == "completed"


def test_wnb_keys_bind_recipient_makes_a_partners_key(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WNB_DATABASE_URL", f"sqlite:///{site.folder / 'wnb.db'}")
    runner = CliRunner()
    made = runner.invoke(
        cli_app, ["keys", "create", "--role", "clinic-system", "--name", "gp", "--recipient", "Y00001"]
    )
    assert made.exit_code == 0, made.output
    bound = runner.invoke(cli_app, ["keys", "bind", "gp", "--recipient", "y00003"])
    assert bound.exit_code == 0 and "the messages to Y00003" in bound.output
    bad = runner.invoke(cli_app, ["keys", "bind", "gp", "--recipient", "not an ods code"])
    assert bad.exit_code == 1 and "--recipient" in bad.output and "ODS code" in bad.output
    listed = runner.invoke(cli_app, ["keys", "list", "--json"])
    assert '"recipient": "Y00003"' in listed.output or '"recipient":"Y00003"' in listed.output


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    yield from launched()


def test_a_recipient_acknowledges_by_the_links_page_in_a_browser(browser: sync_api.Browser, site: Site) -> None:
    sent = site.letter_sent()
    page = new_page(browser)
    page.goto(str(sent.content["ack_url"]))
    sync_api.expect(page.locator("h1")).to_have_text("Acknowledge a message")
    assert violations(page) == []  # WCAG 2.2 AA
    page.get_by_label("Your name").fill("Dr A. Reader")
    page.get_by_role("button", name="Acknowledge").click()
    sync_api.expect(page.locator("#ack-done")).to_contain_text(f"Message {sent.reference} was acknowledged on")
    assert violations(page) == []
    assert site.gp_task()["status"] == "completed"
    page.context.close()
