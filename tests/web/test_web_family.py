"""The family view over HTTP (issue 18 part 6): on a child's page the safeguarding team sees each related
person's active flags, each an audited read of that person; the booking team and governance see no family
section and read nobody related; the API's `GET /v1/people/{nhs_number}/family` answers the same."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.web.test_web import audit_records, signed_in
from tests.web_fixtures import AMBER_CHILD, RED_CHILD, STAFF, Site, running_site
from wnb.core.items import RawItem
from wnb.core.ruleset import Ruleset

CHILD = "9990000085"  # in the register, no flags of its own
BROTHER = "9990000093"  # names the child in his own context only
FAMILY = {
    "nhs_number": CHILD,
    "date_of_birth": "2016-10-10",
    "related": [
        {"nhs_number": RED_CHILD, "relationship": "sibling"},  # a red flag (a plan, not brought)
        {"nhs_number": AMBER_CHILD, "relationship": "half-sibling"},  # an amber flag (child in need)
    ],
}
BROTHERS = {"nhs_number": BROTHER, "related": [{"nhs_number": CHILD, "relationship": "sibling"}]}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, ruleset: Ruleset) -> Iterator[Site]:
    with running_site(tmp_path_factory.mktemp("family"), ruleset) as running:
        items = [RawItem(line, json.dumps(record), record) for line, record in enumerate((FAMILY, BROTHERS), 1)]
        assert running.service.import_context(items, origin="register")["rejected"] == 0
        yield running


def family_reads(site: Site) -> list[dict[str, Any]]:
    return [record for record in audit_records(site, "record_read") if "family_of" in record["payload"]]  # type: ignore[operator]


def section(page: str) -> str:
    (found,) = re.findall(r'<section aria-labelledby="family">.*?</section>', page, re.S)
    return found


def test_the_safeguarding_nurse_sees_the_related_childrens_flags_each_read_audited(site: Site) -> None:
    before = len(family_reads(site))
    with signed_in(site, "safeguarding-nurse") as client:
        page = client.get(f"/web/children/{CHILD}")
    assert page.status_code == 200
    family = section(page.text)
    rows = re.findall(r'<tr id="relative-(\d+)">(.*?)</tr>', family, re.S)
    assert [number for number, _ in rows] == [RED_CHILD, AMBER_CHILD, BROTHER]
    red, amber, brother = (cells for _, cells in rows)
    title = html.escape(site.service.ruleset.title("safeguarding-plan-wnb"))
    assert "Sibling" in red and '<span class="badge red">red</span>' in red and title in red.replace("&#39;", "&#x27;")
    assert "999 000 0018" in red and "this child&#39;s record" in red and "raised Mon 02 Mar" in red
    assert "Half-sibling" in amber and '<span class="badge amber">amber</span>' in amber
    assert "Sibling" in brother and "their record" in brother and "No active flags." in brother
    reads = family_reads(site)[before:]
    assert [record["subject"] for record in reads] == [[RED_CHILD], [AMBER_CHILD], [BROTHER]]
    assert all(r["actor"] == "user:nurse.jo" and r["payload"]["family_of"] == CHILD for r in reads)  # type: ignore[index]
    assert all(r["payload"]["view"] == "web-family" for r in reads)  # type: ignore[index]


@pytest.mark.parametrize("role", ["booking-team", "governance"])
def test_a_role_without_the_family_view_sees_no_family_section_and_reads_nobody_related(site: Site, role: str) -> None:
    before = len(family_reads(site))
    with signed_in(site, role) as client:
        page = client.get(f"/web/children/{CHILD}")
    assert page.status_code == 200 and 'aria-labelledby="family"' not in page.text
    assert RED_CHILD not in page.text and "999 000 0018" not in page.text
    assert len(family_reads(site)) == before


def test_a_child_naming_nobody_says_so_to_the_nurse(site: Site) -> None:
    with signed_in(site, "safeguarding-nurse") as client:
        page = client.get("/web/children/9990000107")
    assert "No related people recorded." in section(page.text)


def test_the_api_answers_the_family_view_to_the_nurse_and_refuses_the_booking_team(site: Site) -> None:
    before = len(audit_records(site, "record_read"))
    with httpx.Client(base_url=site.url, auth=STAFF["safeguarding-nurse"], timeout=10) as client:
        answer = client.get(f"/v1/people/{CHILD}/family")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["nhs_number"] == CHILD
    assert [
        (r["nhs_number"], r["relationship"], r["named_in_child_context"], r["names_child"]) for r in body["family"]
    ] == [
        (RED_CHILD, "sibling", True, False),
        (AMBER_CHILD, "half-sibling", True, False),
        (BROTHER, "sibling", False, True),
    ]
    assert [(flag["code"], flag["level"]) for flag in body["family"][0]["flags"]] == [("safeguarding-plan-wnb", "red")]
    reads = audit_records(site, "record_read")[before:]
    assert [record["subject"] for record in reads] == [[CHILD], [RED_CHILD], [AMBER_CHILD], [BROTHER]]
    with httpx.Client(base_url=site.url, auth=STAFF["booking-team"], timeout=10) as client:
        refused = client.get(f"/v1/people/{CHILD}/family")
    assert refused.status_code == 403 and "family view" in refused.json()["reason"]
    assert len(audit_records(site, "record_read")) == before + 4
