"""The pages in words, not codes (issue 16), against a real server: titles for flag and task codes, statuses as
people say them, NHS numbers spaced 999 000 0018, the explain page as sentences, the audit log without Python
dictionaries, and a child's page that reads red flags first with the appointment each flag and task came from."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest

from tests.web.test_web import open_task, signed_in
from tests.web_fixtures import RED_CHILD, REPEAT_CHILD, Site, event, running_site
from wnb.core.ruleset import Ruleset
from wnb.store import listing

# A child with no register record, not brought twice to urgent appointments in one service: an amber flag
# (WNB-04, high clinical need) on the first miss, then a red one (WNB-05, possible medical neglect) and another
# amber one (WNB-06, repeat) on the second.
NEGLECT_CHILD = "9990000182"
CODES = ("safeguarding-plan-wnb", "notify-social-worker", "possible-medical-neglect", "high-clinical-need-wnb")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, ruleset: Ruleset) -> Iterator[Site]:
    with running_site(tmp_path_factory.mktemp("web-words"), ruleset) as running:
        urgent = {"service": "ent", "priority": "urgent"}
        running.service.ingest([event(NEGLECT_CHILD, "neglect-1", "2026-02-23", **urgent)], origin="feed")
        running.service.ingest([event(NEGLECT_CHILD, "neglect-2", "2026-03-02", **urgent)], origin="feed")
        yield running


def text_of(page: str) -> str:
    """A page's visible text, tags dropped and spaces folded."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def spaced(number: str) -> str:
    return f"{number[:3]} {number[3:6]} {number[6:]}"


def test_the_worklist_shows_task_titles_status_words_and_spaced_nhs_numbers(site: Site) -> None:
    with signed_in(site, "safeguarding-nurse") as client:
        words = text_of(client.get("/web/").text)

    assert "Tell the child's social worker" in words
    assert "not yet acknowledged" in words
    assert spaced(RED_CHILD) in words
    for code in (*CODES, "requested", RED_CHILD):
        assert code not in words, code


def test_the_childs_page_shows_flag_titles_and_no_codes(site: Site) -> None:
    with signed_in(site, "safeguarding-nurse") as client:
        words = text_of(client.get(f"/web/children/{RED_CHILD}").text)

    assert f"Child {spaced(RED_CHILD)}" in words
    assert "Not brought: child known to children's social care" in words
    assert "Tell the child's social worker" in words and "not yet acknowledged" in words
    assert "plan wnb" not in words.lower()
    for code in (*CODES, "requested"):
        assert code not in words, code


def test_the_childs_page_lists_red_flags_before_amber(site: Site) -> None:
    with signed_in(site, "safeguarding-nurse") as client:
        page = client.get(f"/web/children/{NEGLECT_CHILD}").text

    levels = re.findall(r'<div class="card level-(red|amber)" id="flag-F\d+">', page)
    assert levels == ["red", "amber", "amber"]
    flags = text_of(page[page.index('<h2 id="flags">') :])
    assert flags.index("Possible medical neglect") < flags.index("Not brought: child with high clinical need")


def test_the_childs_page_shows_the_appointment_each_flag_and_task_came_from(site: Site) -> None:
    with site.service.db.connect() as connection:
        (first_flag,) = [
            flag
            for flag in listing.flags(connection, nhs_number=NEGLECT_CHILD)
            if flag["code"] == "high-clinical-need-wnb"
        ]
    with signed_in(site, "safeguarding-nurse") as client:
        page = client.get(f"/web/children/{NEGLECT_CHILD}").text

    card = page[page.index(f'id="flag-{first_flag["id"]}"') :]
    card = card[: card.index("</div>")]
    # raised by the miss of Mon 23 Feb and linked again by the repeat of Mon 02 Mar (08:30 UTC = 08:30 GMT)
    assert "from ENT on Mon 23 Feb 08:30; ENT on Mon 02 Mar 08:30" in text_of(card)
    task = open_task(site, NEGLECT_CHILD, "named-nurse")
    row = page[page.index(f'<tr id="task-{task["id"]}">') :]
    row = row[: row.index("</tr>")]
    assert "Mon 02 Mar 08:30" in text_of(row)


def test_the_explain_page_reads_as_sentences_with_the_rules_title(site: Site) -> None:
    task = open_task(site, REPEAT_CHILD, "safeguarding-nurse")
    with signed_in(site, "governance") as client:
        words = text_of(client.get(f"/web/explain/{task['id']}").text)

    assert "Discuss with the safeguarding team" in words
    assert "WNB-06, “A child has repeatedly not been brought”:" in words
    assert (
        f"The child (NHS {spaced(REPEAT_CHILD)}) was not brought to audiology on Mon 02 Mar 2026; 2 missed audiology "
        "appointments in the last 365 days; the rule asks for 2 or more" in words
    )
    assert "It is not yet acknowledged" in words


def test_the_audit_page_shows_what_changed_in_words_not_dictionaries(site: Site) -> None:
    with signed_in(site, "governance") as client:
        page = client.get("/web/audit", params={"action": "task_created"}).text
    words = text_of(page)

    assert "Task asked for: Tell the child's social worker" in words
    assert re.search(r"<dt>Owner</dt><dd>safeguarding nurse</dd>", page)
    assert "{'" not in words and "':" not in words
    assert "notify-social-worker" not in words


def test_the_audit_page_words_an_evaluation_with_the_rules_titles(site: Site) -> None:
    with signed_in(site, "governance") as client:
        words = text_of(client.get("/web/audit", params={"action": "evaluation"}).text)

    assert "An appointment outcome was judged (appointment a-neglect-2 from pas)" in words
    assert "WNB-05 (A child with high clinical need has repeatedly not been brought" in words
    assert "age_years" not in words and "{'" not in words
