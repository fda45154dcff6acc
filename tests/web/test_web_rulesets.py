"""The Rulesets page over HTTP against a real server (issue 15): history, diff, proposing by form and by upload
(with its limits), the background backtest, approval and rejection by a clinical safety officer (never the
proposer, never another role, the password checked), activation by an admin, the safety case report, and the
banner while the active version is unapproved.

Proposing runs the default ruleset's scenarios (seconds), so the module's site makes its two proposals once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import DEFAULT_RULES
from tests.web_fixtures import STAFF, Site, event, running_site
from wnb.core.calendar import LONDON
from wnb.core.ruleset import Ruleset
from wnb.rule_files import read_files
from wnb.store import audit, ruleset_jobs, rulesets
from wnb.store.accounts import create_user

OFFICERS = {"cso.one": "first officer passphrase", "cso.two": "second officer passphrase"}
THRESHOLD = "counts.missed_all_services_365d.window_days"
MASH_CHILD = "9990000123"  # three misses over eleven months: WNB-07 under 365 days, not under 300


@dataclass
class Registry:
    site: Site
    first: str  # the default ruleset, registered as active, not yet approved
    by_form: str  # the threshold lowered to 300 days, proposed by gov.sam on the form
    by_upload: str  # the default ruleset with a comment, uploaded by cso.one


def token(page: httpx.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, "the page has no CSRF field"
    return match[1]


@contextmanager
def signed_in(site: Site, name: str, password: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=30) as client:
        form = client.get("/web/sign-in")
        answer = client.post("/web/sign-in", data={"csrf": token(form), "name": name, "password": password})
        assert answer.status_code == 303, answer.text
        yield client


def as_role(site: Site, role: str) -> Any:
    return signed_in(site, *STAFF[role])


def wait_for_job(client: httpx.Client, location: str) -> str:
    """The version a proposal's background job stored, once its page says it is done."""
    deadline = time.monotonic() + 120
    while True:
        page = client.get(location).text
        state = re.search(r'id="job-state" data-state="(\w+)"', page)
        assert state, page
        if state[1] == "done":
            found = re.search(r'id="job-version" href="/web/rulesets/(\w+)"', page)
            assert found, page
            return found[1]
        assert state[1] != "failed", page
        assert time.monotonic() < deadline, "the backtest did not finish"
        time.sleep(0.2)


def upload_files(folder: Path) -> list[tuple[str, tuple[str, bytes, str]]]:
    files = read_files(folder)
    return [
        ("scenarios" if name.startswith("scenarios/") else "files", (name.rpartition("/")[2], content, "text/yaml"))
        for name, content in sorted(files.items())
    ]


def commented_copy(folder: Path) -> Path:
    import shutil

    target = folder / "commented"
    shutil.copytree(DEFAULT_RULES, target)
    with (target / "ruleset.yaml").open("a", encoding="utf-8") as handle:
        handle.write("# uploaded\n")
    return target


def seed_mash_child(site: Site) -> None:
    now = site.clock.now
    for number, day in enumerate(("2025-04-10", "2025-10-09", "2026-03-02"), start=1):
        site.clock.now = datetime.fromisoformat(f"{day}T10:00:00+00:00")
        site.service.ingest([event(MASH_CHILD, f"mash-{number}", day)], origin="feed")
    site.clock.now = now


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, ruleset: Ruleset) -> Iterator[Registry]:
    folder = tmp_path_factory.mktemp("rulesets")
    with running_site(folder, ruleset, follow_registry=True) as site:
        for name, password in OFFICERS.items():
            create_user(site.service.db, name, "clinical-safety-officer", password)
        seed_mash_child(site)
        (first,) = rulesets.history(site.service.db)
        with as_role(site, "governance") as client:
            form = client.get("/web/rulesets/propose")
            data = {"csrf": token(form), f"p:{THRESHOLD}": "300", "note": "a shorter look-back for the MASH rule"}
            answer = client.post("/web/rulesets/propose", data=data)
            assert answer.status_code == 303, answer.text
            by_form = wait_for_job(client, answer.headers["location"])
        with signed_in(site, "cso.one", OFFICERS["cso.one"]) as client:
            page = client.get("/web/rulesets")
            answer = client.post(
                "/web/rulesets/upload",
                data={"csrf": token(page), "note": "a comment"},
                files=upload_files(commented_copy(folder)),
            )
            assert answer.status_code == 303, answer.text
            by_upload = wait_for_job(client, answer.headers["location"])
        yield Registry(site, first.version, by_form, by_upload)


def records(site: Site, action: str) -> list[dict[str, Any]]:
    with site.service.db.connect() as connection:
        query = select(audit._audit).where(audit._audit.c.action == action).order_by(audit._audit.c.seq)
        return [dict(row._mapping) for row in connection.execute(query)]


def test_the_history_shows_each_version_and_says_the_first_is_active_not_yet_approved(registry: Registry) -> None:
    with as_role(registry.site, "governance") as client:
        page = client.get("/web/rulesets").text
    first = re.search(rf'<tr id="version-{registry.first[:12]}" data-status="(\w+)">.*?</tr>', page, re.S)
    assert first and first[1] == "active" and "active, not yet approved" in first[0]
    assert f"version-{registry.by_form[:12]}" in page and f"version-{registry.by_upload[:12]}" in page
    assert "a shorter look-back for the MASH rule" in page


def test_every_page_shows_the_banner_while_the_active_version_is_unapproved(registry: Registry) -> None:
    with as_role(registry.site, "governance") as client:
        for path in ("/web/governance", "/web/audit", "/web/rulesets"):
            assert 'id="unapproved-banner"' in client.get(path).text, path


def test_the_diff_of_two_versions_shows_the_changed_parameter_and_the_hazard_log(registry: Registry) -> None:
    with as_role(registry.site, "governance") as client:
        page = client.get("/web/rulesets/diff", params={"first": registry.first, "second": registry.by_form}).text
    row = re.search(rf'<tr data-key="{re.escape(THRESHOLD)}">.*?</tr>', page, re.S)
    assert row and "<td>365</td><td>300</td>" in row[0]
    assert "-    value: 365" in page and "+    value: 300" in page  # hazards.yaml's entry for the threshold


def test_a_form_proposal_stores_its_backtest_against_the_active_version(registry: Registry) -> None:
    with as_role(registry.site, "governance") as client:
        page = client.get(f"/web/rulesets/{registry.by_form}").text
    assert f"against <code>{registry.first[:12]}</code>" in page
    assert re.search(r'<tr class="differs" data-key="WNB-07">', page)
    assert records(registry.site, "ruleset_proposed")[0]["actor"] == "user:gov.sam"


def test_a_form_value_of_the_wrong_kind_is_refused_with_the_loaders_message(registry: Registry) -> None:
    with as_role(registry.site, "governance") as client:
        form = client.get("/web/rulesets/propose")
        answer = client.post("/web/rulesets/propose", data={"csrf": token(form), f"p:{THRESHOLD}": "a year"})
    assert answer.status_code == 400
    assert f"{THRESHOLD}: give a whole number" in answer.text


def test_a_form_change_whose_scenarios_fail_is_refused_naming_them(registry: Registry) -> None:
    with as_role(registry.site, "governance") as client:
        form = client.get("/web/rulesets/propose")
        answer = client.post("/web/rulesets/propose", data={"csrf": token(form), "p:parameters.repeat_misses": "3"})
    assert answer.status_code == 400
    assert "scenarios fail under this ruleset" in answer.text and "wnb-06-repeat-in-service.yaml" in answer.text


def test_an_upload_of_too_many_files_is_refused(registry: Registry) -> None:
    many = [("files", (f"rule-{n}.yaml", b"x: 1\n", "text/yaml")) for n in range(129)]
    with as_role(registry.site, "governance") as client:
        page = client.get("/web/rulesets")
        answer = client.post("/web/rulesets/upload", data={"csrf": token(page)}, files=many)
    assert answer.status_code == 400 and "at most 128 files" in answer.text


def test_an_upload_larger_than_the_limit_is_refused(registry: Registry) -> None:
    big = [("files", (f"rule-{n}.yaml", b"#" * 400_000, "text/yaml")) for n in range(3)]
    with as_role(registry.site, "governance") as client:
        page = client.get("/web/rulesets")
        answer = client.post("/web/rulesets/upload", data={"csrf": token(page)}, files=big)
    assert answer.status_code == 413 and "larger than 1024 KB" in answer.text


def test_an_upload_of_a_file_that_is_not_yaml_is_refused(registry: Registry) -> None:
    with as_role(registry.site, "governance") as client:
        page = client.get("/web/rulesets")
        files = [("files", ("run.sh", b"echo\n", "text/plain"))]
        answer = client.post("/web/rulesets/upload", data={"csrf": token(page)}, files=files)
    assert answer.status_code == 400 and "only .yaml ruleset and scenario files" in answer.text


def test_the_report_page_is_the_stored_report_with_its_hash(registry: Registry) -> None:
    with as_role(registry.site, "governance") as client:
        first = client.get(f"/web/rulesets/{registry.by_form}/report")
        again = client.get(f"/web/rulesets/{registry.by_form[:10]}/report")
    assert first.status_code == 200 and first.content == again.content
    assert first.headers["x-report-sha256"] == again.headers["x-report-sha256"]
    assert f'<code id="config-hash">{registry.by_form}</code>' in first.text and "<script" not in first.text
    stored = rulesets.reports_of(registry.site.service.db, registry.by_form)
    assert [item["sha256"] for item in stored] == [first.headers["x-report-sha256"]]


def _decide(client: httpx.Client, version: str, verb: str, password: str, reason: str = "checked") -> httpx.Response:
    page = client.get(f"/web/rulesets/{version}")
    data = {"csrf": token(page), "reason": reason, "password": password}
    return client.post(f"/web/rulesets/{version}/{verb}", data=data)


def test_only_another_safety_officer_decides_and_only_an_admin_activates(registry: Registry) -> None:
    site = registry.site
    with as_role(site, "governance") as client:  # not an officer
        assert _decide(client, registry.by_form, "approve", STAFF["governance"][1]).status_code == 403
    with signed_in(site, "cso.one", OFFICERS["cso.one"]) as client:
        own = _decide(client, registry.by_upload, "approve", OFFICERS["cso.one"])
        assert own.status_code == 409 and "proposed version" in own.text and "may not approve" in own.text
        wrong = _decide(client, registry.by_form, "approve", "not my password")
        assert wrong.status_code == 403 and "Wrong password" in wrong.text
        assert rulesets.find(site.service.db, registry.by_form).status.value == "proposed"
    with signed_in(site, "cso.two", OFFICERS["cso.two"]) as client:
        rejected = _decide(client, registry.by_upload, "reject", OFFICERS["cso.two"], "only a comment")
        assert rejected.status_code == 303
        approved = _decide(client, registry.by_form, "approve", OFFICERS["cso.two"], "the backtest is as intended")
        assert approved.status_code == 303
    assert records(site, "ruleset_rejected")[-1]["actor"] == "user:cso.two"
    assert records(site, "ruleset_approved")[-1]["payload"]["reason"] == "the backtest is as intended"
    with as_role(site, "governance") as client:
        page = client.get(f"/web/rulesets/{registry.by_form}")
        refused = client.post(f"/web/rulesets/{registry.by_form}/activate", data={"csrf": token(page)})
        assert refused.status_code == 403
    with as_role(site, "admin") as client:
        page = client.get(f"/web/rulesets/{registry.by_form}")
        assert 'id="activate-form"' in page.text
        activated = client.post(f"/web/rulesets/{registry.by_form}/activate", data={"csrf": token(page)})
        assert activated.status_code == 303
        after = client.get("/web/rulesets").text
    assert re.search(rf'<tr id="version-{registry.by_form[:12]}" data-status="active">', after)
    assert 'id="unapproved-banner"' not in after
    assert records(site, "ruleset_activated")[-1]["actor"] == "user:admin.kim"


def test_a_job_whose_process_has_gone_shows_interrupted_and_is_offered_to_run_again(registry: Registry) -> None:
    site = registry.site
    broken = {"ruleset.yaml": "rules: [\n"}  # its files, run again, are checked before anything else
    job_id = ruleset_jobs.start(site.service.db, broken, "c" * 64, "gov.sam", None, site.clock.now, owner=None)
    with as_role(site, "governance") as client:
        page = client.get(f"/web/rulesets/jobs/{job_id}")
        assert 'data-state="interrupted"' in page.text and 'id="again-form"' in page.text
        assert "before wnb recorded which process runs a job" in page.text
        again = client.post(f"/web/rulesets/jobs/{job_id}/again", data={"csrf": token(page)})
    assert again.status_code == 400 and "ruleset.yaml" in again.text  # run again: the stored files were checked


def _form_version_active(registry: Registry) -> None:
    """The form's version approved by the second officer and activated by an admin, as the test of deciding does,
    unless it did already: the first version is then retired."""
    site = registry.site
    if rulesets.find(site.service.db, registry.by_form).status.value == "active":
        return
    with signed_in(site, "cso.two", OFFICERS["cso.two"]) as client:
        approved = _decide(client, registry.by_form, "approve", OFFICERS["cso.two"], "the backtest is as intended")
        assert approved.status_code == 303, approved.text
    with as_role(site, "admin") as client:
        page = client.get(f"/web/rulesets/{registry.by_form}")
        assert client.post(f"/web/rulesets/{registry.by_form}/activate", data={"csrf": token(page)}).status_code == 303


def test_an_admin_schedules_a_retired_version_again_as_a_rollback_marked_for_review(registry: Registry) -> None:
    site = registry.site
    _form_version_active(registry)
    assert rulesets.find(site.service.db, registry.first).status.value == "retired"
    with as_role(site, "admin") as client:
        page = client.get(f"/web/rulesets/{registry.first}")
        assert 'id="rollback-note"' in page.text and 'name="at"' in page.text
        url = f"/web/rulesets/{registry.first}/activate"
        past = client.post(url, data={"csrf": token(page), "at": "2020-01-01T09:00"})
        assert past.status_code == 409 and "has passed" in past.text
        later = (site.clock.now + timedelta(days=2)).astimezone(LONDON).strftime("%Y-%m-%dT%H:%M")
        answer = client.post(url, data={"csrf": token(page), "at": later})
        assert answer.status_code == 303
        shown = client.get(answer.headers["location"]).text
        history_page = client.get("/web/rulesets").text
    assert "is scheduled: it becomes active at" in shown and "rollback is audited and marked for review" in shown
    release = rulesets.find(site.service.db, registry.first)
    assert (release.status.value, release.rollback) == ("scheduled", True)
    assert release.active_from is not None and release.active_from > site.clock.now
    assert re.search(rf'<tr id="version-{registry.first[:12]}" data-status="scheduled">', history_page)
    assert "scheduled: active from" in history_page
    assert records(site, "ruleset_scheduled")[-1]["actor"] == "user:admin.kim"
