"""The pages over HTTP against a real uvicorn server on loopback: sign-in, CSRF, role refusals, ordering, CSV."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import itsdangerous
import pytest
from sqlalchemy import select, update

from tests.conftest import ROOT
from tests.web_fixtures import (
    AMBER_CHILD,
    RED_CHILD,
    REPEAT_CHILD,
    RESOLVE_CHILD,
    SECRET,
    STAFF,
    Site,
    running_site,
    stored_candidate,
)
from wnb.core.contacts import Recipient
from wnb.core.items import RawItem
from wnb.core.ruleset import Ruleset
from wnb.store import audit, listing, quality, recipients, repo
from wnb.store.db import writing
from wnb.store.sessions import start_session


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, ruleset: Ruleset) -> Iterator[Site]:
    with running_site(tmp_path_factory.mktemp("web"), ruleset) as running:
        yield running


def token(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, "the page has no CSRF field"
    return match[1]


_COOKIES: dict[tuple[str, str], httpx.Cookies] = {}


@contextmanager
def signed_in(site: Site, role: str, fresh: bool = False) -> Iterator[httpx.Client]:
    """A client signed in through the form as the member of staff with `role` (one sign-in per role and
    server: argon2 is slow on purpose, and a session cookie is reusable until it expires)."""
    key = (site.url, role)
    with httpx.Client(base_url=site.url, timeout=10) as client:
        if key in _COOKIES and not fresh:
            client.cookies = httpx.Cookies(_COOKIES[key])
        else:
            name, password = STAFF[role]
            form = client.get("/web/sign-in")
            answer = client.post("/web/sign-in", data={"csrf": token(form), "name": name, "password": password})
            assert answer.status_code == 303, answer.text
            if not fresh:
                _COOKIES[key] = httpx.Cookies(client.cookies)
        yield client


def task_rows(page: httpx.Response) -> list[str]:
    return re.findall(r'<tr id="task-(T\d+)" class="level-', page.text)


def audit_records(site: Site, action: str) -> list[dict[str, object]]:
    with site.service.db.connect() as connection:
        query = select(audit._audit).where(audit._audit.c.action == action).order_by(audit._audit.c.seq)
        return [dict(row._mapping) for row in connection.execute(query)]


def open_task(site: Site, nhs_number: str, role: str) -> dict[str, object]:
    with site.service.db.connect() as connection:
        return next(item for item in listing.tasks(connection, role=role) if item["nhs_number"] == nhs_number)


# ---- signing in ----


def test_a_page_opened_without_signing_in_redirects_to_sign_in(site: Site) -> None:
    answer = httpx.get(f"{site.url}/web/governance", timeout=10)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/web/sign-in?next=%2Fweb%2Fgovernance"


def test_a_wrong_password_is_refused_with_a_message(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=10) as client:
        form = client.get("/web/sign-in")
        answer = client.post("/web/sign-in", data={"csrf": token(form), "name": "nurse.jo", "password": "wrong"})
    assert answer.status_code == 401
    assert "Wrong user name or password" in answer.text


def test_signing_in_without_the_csrf_token_is_refused(site: Site) -> None:
    name, password = STAFF["safeguarding-nurse"]
    with httpx.Client(base_url=site.url, timeout=10) as client:
        client.get("/web/sign-in")
        answer = client.post("/web/sign-in", data={"name": name, "password": password})
    assert answer.status_code == 403


def test_signing_in_sends_the_person_to_the_page_they_asked_for(site: Site) -> None:
    name, password = STAFF["governance"]
    with httpx.Client(base_url=site.url, timeout=10) as client:
        form = client.get("/web/sign-in?next=%2Fweb%2Faudit")
        data = {"csrf": token(form), "name": name, "password": password, "next": "/web/audit"}
        assert client.post("/web/sign-in", data=data).headers["location"] == "/web/audit"


def test_signing_in_never_redirects_to_another_site(site: Site) -> None:
    name, password = STAFF["governance"]
    with httpx.Client(base_url=site.url, timeout=10) as client:
        form = client.get("/web/sign-in")
        data = {"csrf": token(form), "name": name, "password": password, "next": "https://evil.example/"}
        assert client.post("/web/sign-in", data=data).headers["location"] == "/web/governance"


def test_signing_out_ends_the_session(site: Site) -> None:
    with signed_in(site, "booking-team", fresh=True) as client:
        page = client.get("/web/")
        assert client.post("/web/sign-out", data={"csrf": token(page)}).status_code == 303
        assert client.get("/web/").status_code == 303


def test_signing_in_and_out_is_audited(site: Site) -> None:
    before = len(audit_records(site, "signed_in")), len(audit_records(site, "signed_out"))
    with signed_in(site, "admin", fresh=True) as client:
        client.post("/web/sign-out", data={"csrf": token(client.get("/web/"))})
    assert audit_records(site, "signed_in")[-1]["actor"] == "user:admin.kim"
    assert audit_records(site, "signed_out")[-1]["actor"] == "user:admin.kim"
    assert (len(audit_records(site, "signed_in")), len(audit_records(site, "signed_out"))) == (
        before[0] + 1,
        before[1] + 1,
    )


def test_the_session_cookie_is_http_only_and_sent_only_to_the_pages(site: Site) -> None:
    name, password = STAFF["booking-team"]
    with httpx.Client(base_url=site.url, timeout=10) as client:
        form = client.get("/web/sign-in")
        answer = client.post("/web/sign-in", data={"csrf": token(form), "name": name, "password": password})
    assert "httponly" in answer.headers["set-cookie"].lower()
    assert "path=/web;" in answer.headers["set-cookie"].lower()


# ---- CSRF and roles ----


def test_an_action_without_the_csrf_token_is_refused_and_changes_nothing(site: Site) -> None:
    task = open_task(site, REPEAT_CHILD, "booking-team")
    with signed_in(site, "booking-team") as client:
        answer = client.post(f"/web/tasks/{task['id']}/ack", data={"back": "/web/"})
    assert answer.status_code == 403
    assert open_task(site, REPEAT_CHILD, "booking-team")["status"] == "requested"


def test_an_action_with_another_sessions_token_is_refused(site: Site) -> None:
    task = open_task(site, REPEAT_CHILD, "booking-team")
    with signed_in(site, "booking-team", fresh=True) as mine, signed_in(site, "booking-team", fresh=True) as theirs:
        stolen = token(theirs.get("/web/"))
        mine.get("/web/")
        assert mine.post(f"/web/tasks/{task['id']}/ack", data={"csrf": stolen}).status_code == 403


@pytest.mark.parametrize("path", ["/web/governance", "/web/governance.csv", "/web/audit", "/web/simulate"])
def test_the_booking_team_is_refused_governance_pages(site: Site, path: str) -> None:
    with signed_in(site, "booking-team") as client:
        answer = client.get(path)
    assert answer.status_code == 403
    assert "may not open this page" in answer.text


def test_governance_staff_are_sent_from_the_worklist_to_their_dashboard(site: Site) -> None:
    with signed_in(site, "governance") as client:
        assert client.get("/web/").headers["location"] == "/web/governance"


def test_the_menu_shows_only_the_pages_a_role_may_open(site: Site) -> None:
    with signed_in(site, "booking-team") as client:
        page = client.get("/web/").text
    assert "/web/children" in page and "/web/rejects" in page
    assert "/web/governance" not in page and "/web/audit" not in page


def test_the_api_still_answers_json_beside_the_pages(site: Site) -> None:
    answer = httpx.get(f"{site.url}/v1/tasks", timeout=10)
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/") and "json" in answer.headers["content-type"]


# ---- worklist ----


def test_a_red_task_comes_before_an_overdue_amber_one(site: Site) -> None:
    with signed_in(site, "safeguarding-nurse") as client:
        page = client.get("/web/")
    rows = task_rows(page)
    red = open_task(site, RED_CHILD, "safeguarding-nurse")["id"]
    amber = open_task(site, AMBER_CHILD, "safeguarding-nurse")["id"]
    assert rows.index(red) == 0 and rows.index(amber) == 1


def test_an_overdue_amber_task_comes_before_one_due_later(site: Site) -> None:
    with signed_in(site, "safeguarding-nurse") as client:
        rows = task_rows(client.get("/web/"))
    overdue = open_task(site, AMBER_CHILD, "safeguarding-nurse")["id"]
    later = open_task(site, REPEAT_CHILD, "safeguarding-nurse")["id"]
    assert rows.index(overdue) < rows.index(later)


def test_due_times_are_shown_in_words_in_uk_time(site: Site) -> None:
    with signed_in(site, "safeguarding-nurse") as client:
        page = client.get("/web/").text
    assert "today 17:00" in page
    assert "overdue 1 working day" in page


def test_the_header_counts_open_red_and_overdue_tasks(site: Site) -> None:
    with signed_in(site, "safeguarding-nurse") as client:
        page = client.get("/web/").text
    counts = dict(re.findall(r'<strong id="count-(\w+)">(\d+)</strong>', page))
    assert counts["red"] == "1" and counts["overdue"] == "1" and int(counts["open"]) >= 2


def test_the_worklist_shows_only_the_tasks_of_my_role(site: Site) -> None:
    with signed_in(site, "booking-team") as client:
        rows = task_rows(client.get("/web/"))
    with site.service.db.connect() as connection:
        roles = {item["id"]: item["owner_role"] for item in listing.tasks(connection)}
    assert rows and {roles[row] for row in rows} == {"booking-team"}


def test_an_administrator_may_look_at_any_roles_worklist(site: Site) -> None:
    with signed_in(site, "admin") as client:
        rows = task_rows(client.get("/web/", params={"role": "clinician"}))
    with site.service.db.connect() as connection:
        roles = {item["id"]: item["owner_role"] for item in listing.tasks(connection)}
    assert rows and {roles[row] for row in rows} == {"clinician"}


def test_the_worklist_filters_by_service(site: Site) -> None:
    with signed_in(site, "safeguarding-nurse") as client:
        rows = task_rows(client.get("/web/", params={"service": "audiology"}))
    assert rows == [open_task(site, REPEAT_CHILD, "safeguarding-nurse")["id"]]


def test_acknowledging_records_the_signed_in_person(site: Site) -> None:
    task = open_task(site, AMBER_CHILD, "booking-team")
    with signed_in(site, "booking-team") as client:
        page = client.get("/web/")
        answer = client.post(f"/web/tasks/{task['id']}/ack", data={"csrf": token(page), "back": "/web/"})
        assert answer.status_code == 303
        assert "acknowledged" in client.get("/web/").text
    records = [r for r in audit_records(site, "task_acknowledged") if r["subject"][0] == task["id"]]  # type: ignore[index]
    assert records and records[-1]["actor"] == "user:booking.al"


def test_acknowledging_a_task_twice_says_why_it_cannot(site: Site) -> None:
    task = open_task(site, RED_CHILD, "booking-team")
    with signed_in(site, "booking-team") as client:
        csrf = token(client.get("/web/"))
        client.post(f"/web/tasks/{task['id']}/ack", data={"csrf": csrf})
        client.post(f"/web/tasks/{task['id']}/ack", data={"csrf": csrf})
        page = client.get("/web/").text
    assert "is accepted; only a task that is requested can be acknowledged" in page


def test_a_task_of_another_role_cannot_be_acted_on(site: Site) -> None:
    task = open_task(site, AMBER_CHILD, "safeguarding-nurse")
    with signed_in(site, "booking-team") as client:
        csrf = token(client.get("/web/"))
        refused = client.post(f"/web/tasks/{task['id']}/complete", data={"csrf": csrf})
    assert refused.status_code == 403  # the refusal page, saying whose task it is (wnb.core.policy)
    assert "is for the safeguarding-nurse role" in refused.text
    assert open_task(site, AMBER_CHILD, "safeguarding-nurse")["status"] == "requested"


# ---- a child's page ----


def test_opening_a_childs_page_is_audited_with_the_reader(site: Site) -> None:
    before = len(audit_records(site, "record_read"))
    with signed_in(site, "governance") as client:
        page = client.get(f"/web/children/{RED_CHILD}")
    assert page.status_code == 200 and "Child protection plan" in page.text
    records = audit_records(site, "record_read")
    assert len(records) == before + 1
    assert records[-1]["actor"] == "user:gov.sam" and records[-1]["subject"] == [RED_CHILD]


def test_a_childs_page_starts_with_the_timeline_across_services(site: Site) -> None:
    with signed_in(site, "safeguarding-nurse") as client:
        page = client.get(f"/web/children/{RED_CHILD}")
    timeline = page.text.split('<table id="chronology">')[1].split("</table>")[0]
    assert page.text.index('id="timeline"') < page.text.index('id="safeguarding"')
    assert "child protection plan started" in timeline and "red flag raised" in timeline
    assert "not brought (did not attend); appointment a-red-1 from pas" in timeline


def test_the_chronology_prints_under_its_own_policy_and_downloads_as_csv_each_audited(site: Site) -> None:
    before = len(audit_records(site, "record_read"))
    with signed_in(site, "safeguarding-nurse") as client:
        printable = client.get(f"/web/children/{RED_CHILD}/chronology")
        table = client.get(f"/web/children/{RED_CHILD}/chronology", params={"format": "csv"})
        wrong = client.get(f"/web/children/{RED_CHILD}/chronology", params={"format": "pdf"})
    assert printable.status_code == 200 and "Multi-agency chronology: NHS 9990000018" in printable.text
    assert printable.headers["content-security-policy"].startswith("default-src 'none'; style-src 'sha256-")
    assert table.headers["content-type"].startswith("text/csv") and "attachment" in table.headers["content-disposition"]
    assert table.text.startswith("date,agency or service,event,significance,action taken,by whom")
    assert wrong.status_code == 400
    views = [record["payload"]["view"] for record in audit_records(site, "record_read")[before:]]
    assert views == ["chronology", "chronology"]


def test_an_invalid_nhs_number_is_refused_naming_the_problem(site: Site) -> None:
    with signed_in(site, "governance") as client:
        answer = client.get("/web/children", params={"nhs_number": "1234567890"})
    assert answer.status_code == 400 and "NHS number" in answer.text


def test_resolving_a_flag_without_a_reason_is_refused(site: Site) -> None:
    with site.service.db.connect() as connection:
        flag = listing.flags(connection, nhs_number=RESOLVE_CHILD)[0]
    with signed_in(site, "safeguarding-nurse") as client:
        page = client.get(f"/web/children/{RESOLVE_CHILD}")
        client.post(f"/web/flags/{flag['id']}/resolve", data={"csrf": token(page), "reason": "  "})
        assert "needs a reason" in client.get(f"/web/children/{RESOLVE_CHILD}").text
    with site.service.db.connect() as connection:
        assert listing.flags(connection, nhs_number=RESOLVE_CHILD)[0]["status"] == "active"


def test_the_booking_team_may_not_resolve_a_flag(site: Site) -> None:
    with site.service.db.connect() as connection:
        flag = listing.flags(connection, nhs_number=RED_CHILD)[0]
    with signed_in(site, "booking-team") as client:
        page = client.get(f"/web/children/{RED_CHILD}")
        assert "Resolve flag" not in page.text
        answer = client.post(f"/web/flags/{flag['id']}/resolve", data={"csrf": token(page), "reason": "no"})
    assert answer.status_code == 403
    with site.service.db.connect() as connection:
        assert listing.flags(connection, nhs_number=RED_CHILD)[0]["status"] == "active"


def test_resolving_a_flag_with_a_reason_closes_it_as_the_person(site: Site) -> None:
    with site.service.db.connect() as connection:
        flag = next(f for f in listing.flags(connection, nhs_number=RESOLVE_CHILD))
    with signed_in(site, "safeguarding-nurse") as client:
        page = client.get(f"/web/children/{RESOLVE_CHILD}")
        reason = "Family moved; care transferred"
        client.post(f"/web/flags/{flag['id']}/resolve", data={"csrf": token(page), "reason": reason})
    with site.service.db.connect() as connection:
        row = repo.flag_by_id(connection, int(str(flag["id"])[1:]))
    assert row is not None and row.status == "inactive" and row.changed_by == "user:nurse.jo"


# ---- governance ----


def test_the_dashboard_draws_its_charts_as_svg(site: Site) -> None:
    with signed_in(site, "governance") as client:
        page = client.get("/web/governance", params={"first": "2026-02-01", "last": "2026-03-02"}).text
    assert page.count("<svg") == 2
    assert 'aria-label="Flags and tasks raised per rule"' in page
    row = r"<th scope=\"row\">WNB-01 · <span class=\"rule-title\">[^<]+</span></th><td>1</td><td>1</td>"
    assert re.search(row, page)


def test_the_dashboard_labels_its_rule_chart_by_rule_title(site: Site) -> None:
    title = site.service.ruleset.rule("WNB-01").title
    with signed_in(site, "governance") as client:
        page = client.get("/web/governance", params={"first": "2026-02-01", "last": "2026-03-02"}).text
    chart = page[page.index('aria-label="Flags and tasks raised per rule"') : page.index("</svg>")]
    assert f"<title>WNB-01 · {html.escape(title)}</title>" in chart  # the whole title as the label's tooltip
    assert re.search(r">WNB-01 · A child on a child protection plan[^<]*</text>", chart)


def test_the_dashboard_keeps_its_dating_in_the_url_and_says_which_it_uses(site: Site) -> None:
    with signed_in(site, "governance") as client:
        default = client.get("/web/governance", params={"first": "2026-02-01", "last": "2026-03-02"}).text
        processed = client.get(
            "/web/governance", params={"first": "2026-02-01", "last": "2026-03-02", "by": "processed"}
        ).text
        csv_link = re.search(r'id="csv" href="([^"]+)"', processed)
        assert csv_link is not None
        answer = client.get(html.unescape(csv_link.group(1)))
    assert '<option value="appointment" selected>' in default and "counted by appointment date" in default
    assert '<option value="processed" selected>' in processed and "by when wnb processed them" in processed
    assert "by=processed" in html.unescape(csv_link.group(1))
    assert ["period", "2026-02-01T00:00:00+00:00/2026-03-03T00:00:00+00:00", "dated by", "processed"] in list(
        csv.reader(io.StringIO(answer.text))
    )


def test_the_dashboard_lists_tasks_overdue_now_in_words(site: Site) -> None:
    overdue = open_task(site, AMBER_CHILD, "safeguarding-nurse")
    with signed_in(site, "governance") as client:
        page = client.get("/web/governance").text
    section = page[page.index('id="overdue"') :]
    assert f"{overdue['id']}</a>" in section and "overdue 1 working day" in section


def test_the_dashboard_downloads_as_csv(site: Site) -> None:
    with signed_in(site, "governance") as client:
        answer = client.get("/web/governance.csv", params={"first": "2026-02-01", "last": "2026-03-02"})
    assert answer.headers["content-type"].startswith("text/csv")
    assert "wnb-governance-2026-02-01-to-2026-03-02.csv" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["section", "name", "measure", "value"]
    assert ["rule", "WNB-01", "flags raised", "1"] in rows
    assert ["source", "pas", "rejected", "1"] in rows


def test_the_audit_page_shows_the_chain_intact_and_filters_by_action(site: Site) -> None:
    with signed_in(site, "governance") as client:
        page = client.get("/web/audit", params={"action": "event_rejected"}).text
    assert "Chain intact" in page
    actions = re.findall(r'data-action="([^"]+)"', page)
    assert actions and set(actions) == {"event_rejected"}


def test_explain_shows_the_rules_behind_a_task(site: Site) -> None:
    task = open_task(site, RED_CHILD, "safeguarding-nurse")
    with signed_in(site, "governance") as client:
        page = client.get(f"/web/explain/{task['id']}").text
    assert "WNB-01, “A child on a child protection plan, or looked after, was not brought”:" in page


def test_explain_is_audited_as_a_read_of_the_childs_record(site: Site) -> None:
    task = open_task(site, RED_CHILD, "safeguarding-nurse")
    with signed_in(site, "safeguarding-nurse") as client:
        client.get(f"/web/explain/{task['id']}")
    record = audit_records(site, "record_read")[-1]
    assert record["subject"] == [RED_CHILD, task["id"]] and record["actor"] == "user:nurse.jo"


def test_explaining_an_unknown_item_says_so(site: Site) -> None:
    with signed_in(site, "governance") as client:
        answer = client.get("/web/explain/T99999")
    assert answer.status_code == 404 and "no task T99999" in answer.text


def test_pages_are_never_cached_or_framed(site: Site) -> None:
    with signed_in(site, "governance") as client:
        answer = client.get(f"/web/children/{RED_CHILD}")
    assert answer.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


def test_simulating_a_version_that_is_not_in_the_registry_says_so(site: Site) -> None:
    with signed_in(site, "governance") as client:
        csrf = token(client.get("/web/simulate"))
        data = {"csrf": csrf, "version": "abcdef0123", "first": "2026-03-01", "last": "2026-03-02"}
        answer = client.post("/web/simulate", data=data)
    assert answer.status_code == 400 and "no ruleset version starts with" in answer.text


def test_the_simulate_page_never_loads_a_path_on_the_server(site: Site) -> None:
    with signed_in(site, "governance") as client:
        csrf = token(client.get("/web/simulate"))
        data = {"csrf": csrf, "version": str(ROOT / "rules" / "default"), "first": "2026-03-01", "last": "2026-03-02"}
        answer = client.post("/web/simulate", data=data)
    assert answer.status_code == 400 and "no ruleset version starts with" in answer.text


# ---- data quality ----


def test_marking_a_reject_handled_removes_it_from_the_queue_and_is_audited(site: Site, tmp_path: Path) -> None:
    with site.service.db.connect() as connection:
        reject = listing.rejects(connection)[0]
    with signed_in(site, "booking-team") as client:
        page = client.get("/web/rejects")
        assert reject["raw"].replace('"', "&#34;") in page.text
        client.post(f"/web/rejects/{reject['id']}/handled", data={"csrf": token(page), "note": "PAS fixed"})
        assert f"reject-{reject['id']}" not in client.get("/web/rejects").text
    records = audit_records(site, "reject_handled")
    assert records[-1]["actor"] == "user:booking.al" and records[-1]["subject"] == [reject["id"]]


def test_a_row_sent_twice_is_one_reject_the_queue_says_was_sent_twice(site: Site) -> None:
    bad = {"source": "web-test", "event_id": "twice", "colour": "blue"}
    for _ in range(2):
        site.service.ingest_one(RawItem(1, json.dumps(bad), bad), origin="twice.ndjson")
    with signed_in(site, "booking-team") as client:
        page = client.get("/web/rejects").text
    (row,) = re.findall(r'<tr id="reject-R\d+">(?:(?!</tr>).)*twice\.ndjson.*?</tr>', page, re.S)
    assert "sent 2 times, last " in row


def test_the_queue_shows_a_stale_outcome_as_such_beside_the_rejects(site: Site) -> None:
    miss = {
        "source": "web-stale",
        "event_id": "s1",
        "nhs_number": "9990000115",
        "date_of_birth": "2019-05-01",
        "service": "audiology",
        "appointment_id": "w1",
        "appointment_at": "2026-03-02T10:00:00+00:00",
        "attendance": "did-not-attend",
        "recorded_at": "2026-03-02T11:00:00+00:00",
    }
    older = {**miss, "event_id": "s2", "attendance": "attended", "recorded_at": "2026-03-02T10:30:00+00:00"}
    for data in (miss, older):
        site.service.ingest_one(RawItem(1, json.dumps(data), data), origin="stale.ndjson")
    with signed_in(site, "booking-team") as client:
        page = client.get("/web/rejects").text
    (row,) = re.findall(r'<tr id="reject-R\d+">(?:(?!</tr>).)*stale\.ndjson.*?</tr>', page, re.S)
    assert '<td class="kind">stale outcome</td>' in row
    assert "attended recorded before the stored did-not-attend" in row
    assert '<td class="kind">reject</td>' in page  # the fixture's rejected row


def test_a_simulation_run_from_the_page_is_compared_and_audited(site: Site) -> None:
    version = stored_candidate(site.service, site.folder, repeat_misses=3)
    with signed_in(site, "governance") as client:
        simulate_page = client.get("/web/simulate")
        assert f'<option value="{version}"' in simulate_page.text
        csrf = token(simulate_page)
        data = {"csrf": csrf, "version": version, "first": "2026-02-01", "last": "2026-03-02"}
        page = client.post("/web/simulate", data=data).text
    assert re.search(r'<tr class="differs" data-key="WNB-06">', page)
    record = audit_records(site, "simulation_run")[-1]
    assert record["actor"] == "user:gov.sam" and record["payload"]["differs"] is True  # type: ignore[index]


def test_the_audit_page_names_a_changed_record(site: Site) -> None:
    table = audit._audit
    with site.service.db.begin() as connection:
        original = connection.execute(select(table.c.actor).where(table.c.seq == 3)).scalar_one()
        connection.execute(update(table).where(table.c.seq == 3).values(actor="someone-else"))
    try:
        with signed_in(site, "governance") as client:
            page = client.get("/web/audit").text
    finally:
        with site.service.db.begin() as connection:
            connection.execute(update(table).where(table.c.seq == 3).values(actor=original))
    assert "Chain NOT intact: record 3 was changed" in page


def _forged_cookie(secret: str, data: dict[str, str]) -> str:
    """A session cookie as Starlette signs it (base64 JSON, itsdangerous timestamp signature)."""
    encoded = base64.b64encode(json.dumps(data).encode())
    return itsdangerous.TimestampSigner(secret).sign(encoded).decode()


def test_a_session_cookie_signed_with_another_secret_is_not_a_session(site: Site) -> None:
    token = start_session(site.service.db, "admin.kim", site.clock(), 1)
    cookie = _forged_cookie("a-guessed-development-secret", {"sid": token})
    answer = httpx.get(f"{site.url}/web/governance", cookies={"wnb_session": cookie}, timeout=10)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/web/sign-in")


def test_a_cookie_naming_a_person_is_not_a_session_even_signed_with_the_servers_secret(site: Site) -> None:
    cookie = _forged_cookie(SECRET, {"user": "gov.sam"})  # what a session cookie held before sessions were kept
    answer = httpx.get(f"{site.url}/web/governance", cookies={"wnb_session": cookie}, timeout=10)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/web/sign-in")


def test_a_session_cookie_signed_with_the_servers_secret_is_accepted(site: Site) -> None:
    token = start_session(site.service.db, "gov.sam", site.clock(), 1)  # the checks above fail for the
    cookie = _forged_cookie(SECRET, {"sid": token})  # secret and the missing session, not the format
    answer = httpx.get(f"{site.url}/web/governance", cookies={"wnb_session": cookie}, timeout=10)
    assert answer.status_code == 200


def test_the_audit_log_pages_back_to_older_records(site: Site) -> None:
    with signed_in(site, "governance") as client:
        for _ in range(3):  # each an audited read, so there are more records than one page
            client.get(f"/web/children/{RED_CHILD}")
        first = client.get("/web/audit").text
        older = re.search(r'href="(/web/audit\?[^"]*before=(\d+))"', first)
        assert older, "more than one page of records, so a link to older ones"
        second = client.get(older[1].replace("&amp;", "&")).text
    shown = [int(seq) for seq in re.findall(r'<tr data-action="\w+"><td>(\d+)</td>', second)]
    assert shown and max(shown) < int(older[2])


def test_the_data_quality_page_shows_the_context_match_rate_and_the_contacts_needing_structure(site: Site) -> None:
    with signed_in(site, "booking-team") as client:
        with site.service.db.connect() as connection:
            coverage = quality.context_coverage(connection, site.clock(), stale_days=90)
            needing = quality.contacts_needing_structure(connection)
        page = client.get("/web/rejects").text
    assert coverage.ratio is not None and needing  # the fixtures' register gives its contacts as text
    share = f"{coverage.ratio * 100:.0f}% ({coverage.events_with_context} of {coverage.events})"
    assert re.search(rf'<dd id="match-rate">{re.escape(share)}', page)
    assert f'<dd id="without-context-count">{coverage.people_without_context}</dd>' in page
    assert f'<dd id="unstructured-count">{len(needing)}</dd>' in page
    (table,) = re.findall(r'<table id="unstructured">.*?</table>', page, re.S)
    row = f"<td>social-worker</td><td>{html.escape(needing[0].text)}</td>"
    assert needing[0].nhs_number == RED_CHILD and row in table.replace("&#39;", "&#x27;")


def test_a_childs_page_shows_a_contact_naming_only_an_ods_code_completed_from_the_directory(site: Site) -> None:
    child = "9990000123"
    with writing(site.service.db) as connection:
        recipients.save_recipients(
            connection,
            [Recipient(ods_code="Y00009", name="Hillside Surgery", email="hillside@nhs.net")],
            site.clock(),
            "test",
        )
    record = {
        "nhs_number": child,
        "date_of_birth": "2019-05-01",
        "contacts": {"school_nurse": "Hillside school nursing team"},
        "structured_contacts": [{"role": "gp-practice", "ods_code": "Y00009"}],
    }
    site.service.import_context([RawItem(1, json.dumps(record), record)], origin="context")
    with signed_in(site, "safeguarding-nurse") as client:
        page = client.get(f"/web/children/{child}").text
    assert '<dd class="structured">Hillside Surgery, ODS Y00009, hillside@nhs.net</dd>' in page
    assert 'Hillside school nursing team <span class="muted">(free text)</span>' in page
