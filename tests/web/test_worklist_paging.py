"""A worklist that scales (issue 16): paging, sorting and search kept in the URL, one line per task with the
completion note behind a confirmation step, and acknowledging the selected tasks at once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.web.test_web import audit_records, signed_in, task_rows, token
from tests.web_fixtures import REPEAT_CHILD, Site, running_site
from wnb.core.ruleset import Ruleset
from wnb.store import listing
from wnb.store.accounts import create_user
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


# ---- assigning to a named person (issue 16): who may, on the pages ----


@contextmanager
def _signed_in_as(site: Site, name: str, password: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=10) as client:
        form = client.get("/web/sign-in")
        answer = client.post("/web/sign-in", data={"csrf": token(form), "name": name, "password": password})
        assert answer.status_code == 303, answer.text
        yield client


def _assignee(site: Site, ref: str) -> object:
    with site.service.db.connect() as connection:
        return next(task for task in listing.tasks(connection) if task["id"] == ref)["assignee"]


def test_my_tasks_and_my_teams_tasks_are_linked_from_the_worklist(site: Site) -> None:
    with signed_in(site, "safeguarding-nurse") as client:
        page = client.get("/web/").text
        mine = client.get("/web/", params={"whose": "mine"}).text
    assert '<a href="/web/?role=&amp;whose=mine">My tasks</a>' in page
    assert '<a href="/web/?role=&amp;whose=all" aria-current="page">My team&#39;s tasks</a>' in page
    assert 'aria-current="page">My tasks</a>' in mine


def test_only_those_the_policy_lets_assign_get_the_choice_and_anyone_else_is_refused(site: Site) -> None:
    nurse_task = next(task for task in listing_role(site, "safeguarding-nurse") if task["assignee"] is None)
    booking_task = _booking_tasks(site)[0]
    for role in ("safeguarding-nurse", "booking-team"):
        with signed_in(site, role) as client:
            assert "/assign" not in client.get("/web/").text  # no select, no reason field
            csrf = token(client.get("/web/"))
            refused = client.post(
                f"/web/tasks/{nurse_task['id']}/assign", data={"csrf": csrf, "to": "nurse.jo", "back": "/web/"}
            )
        assert refused.status_code == 403
        assert "only named-nurse, safeguarding-lead or admin may assign or reassign a task" in refused.text
    # A named nurse assigns a task whose escalation chain reaches them (every chain of the default ruleset):
    # they open the booking team's worklist and are offered its enabled members.
    create_user(site.service.db, "named.lee", "named-nurse", "named nurse passphrase")
    with _signed_in_as(site, "named.lee", "named nurse passphrase") as client:
        listed = client.get("/web/", params={"role": "booking-team"}).text
    row = listed.split(f'<tr id="task-{booking_task["id"]}"')[1].split("</tr>")[0]
    assert f'action="/web/tasks/{booking_task["id"]}/assign"' in row and '<option value="booking.al">' in row
    assert _assignee(site, str(nurse_task["id"])) is None and _assignee(site, str(booking_task["id"])) is None


def listing_role(site: Site, role: str) -> list[dict[str, object]]:
    with site.service.db.connect() as connection:
        return listing.tasks(connection, role=role)
