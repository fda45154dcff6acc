"""A worklist that scales (issue 16): paging, sorting and search kept in the URL, one line per task with the
completion note behind a confirmation step, and acknowledging the selected tasks at once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest

from tests.web.test_web import audit_records, signed_in, task_rows, token
from tests.web_fixtures import REPEAT_CHILD, Site, running_site
from wnb.core.ruleset import Ruleset
from wnb.store import listing
from wnb.web import worklist


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, ruleset: Ruleset) -> Iterator[Site]:
    with running_site(tmp_path_factory.mktemp("paging"), ruleset) as running:
        yield running


def _booking_tasks(site: Site) -> list[dict[str, object]]:
    with site.service.db.connect() as connection:
        return listing.tasks(connection, role="booking-team")


def test_the_worklist_pages_its_tasks_and_keeps_the_filters_in_the_links(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worklist, "PAGE_SIZE", 1)
    with signed_in(site, "booking-team") as client:
        first = client.get("/web/", params={"sort": "due", "q": ""})
        (link,) = re.findall(r'<a href="(/web/\?[^"]+)">next page</a>', first.text)
        second = client.get(link.replace("&amp;", "&"))
    total = len(_booking_tasks(site))
    assert total >= 2 and len(task_rows(first)) == 1 and len(task_rows(second)) == 1
    assert task_rows(first) != task_rows(second)
    assert f"Tasks 1–1 of {total}" in first.text and f"page 2 of {total}" in second.text
    assert parse_qs(urlparse(link.replace("&amp;", "&")).query)["sort"] == ["due"]


def test_the_worklist_finds_tasks_by_nhs_number_spaced_or_not_and_by_service(site: Site) -> None:
    spaced = f"{REPEAT_CHILD[:3]} {REPEAT_CHILD[3:6]} {REPEAT_CHILD[6:]}"
    with signed_in(site, "safeguarding-nurse") as client:
        by_number = task_rows(client.get("/web/", params={"q": spaced}))
        by_service = task_rows(client.get("/web/", params={"q": "AUDIO"}))
        nothing = client.get("/web/", params={"q": "9990000000"})
    assert by_number and by_number == by_service  # the repeat child's tasks are its audiology ones
    assert 'id="empty"' in nothing.text


def test_a_task_is_one_line_and_completing_asks_for_a_note_behind_a_confirmation(site: Site) -> None:
    with signed_in(site, "booking-team") as client:
        page = client.get("/web/").text
    row = page.split('<tr id="task-')[1].split("</tr>")[0]
    assert "<br>" not in row
    assert '<details class="complete">' in row and "Confirm: complete" in row and "required" in row


def test_the_selected_tasks_are_acknowledged_at_once_each_audited(site: Site) -> None:
    chosen = [task["id"] for task in _booking_tasks(site) if task["status"] == "requested"][:2]
    before = len(audit_records(site, "task_acknowledged"))
    with signed_in(site, "booking-team") as client:
        csrf = token(client.get("/web/"))
        answer = client.post("/web/tasks/acknowledge", data={"csrf": csrf, "task": chosen, "back": "/web/"})
        page = client.get("/web/").text
    assert answer.status_code == 303 and "2 tasks acknowledged." in page
    assert {task["id"]: task["status"] for task in _booking_tasks(site) if task["id"] in chosen} == {
        ref: "accepted" for ref in chosen
    }
    assert len(audit_records(site, "task_acknowledged")) == before + 2
