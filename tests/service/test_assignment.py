"""People own the work (issue 16), through the real service on both stores: claims, assignments, releases,
notes required to close, escalation clearing the assignee, the audit naming both, and the assignee's e-mail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import FixedClock
from tests.factories import event, raw
from wnb.core.domain import Role
from wnb.core.errors import Forbidden, InvalidAction, NoteRequired
from wnb.core.items import RawItem
from wnb.core.policy import Kind, Principal
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.store import audit, listing, repo
from wnb.store.accounts import create_user, disable_user

STORES = ("sqlite", "postgres")  # every test here runs on both stores (conftest.py)

CHILD = "9990000018"  # on a child-protection plan: WNB-01 raises a red flag and five tasks
PLAN = {"date_of_birth": "2019-05-01", "statuses": [{"kind": "child-protection-plan", "start": "2025-06-01"}]}
NURSE, OTHER_NURSE, LEAD, CLERK = "nurse.one", "nurse.two", "lead.one", "clerk.one"


@pytest.fixture
def service(db_url: str, ruleset: Ruleset, clock: FixedClock) -> Iterator[Service]:
    db = open_database(db_url)
    notify = {"safeguarding-nurse": ("nurses@example.nhs.uk",)}
    wnb = Service(db, ruleset, clock, notify=notify)
    for name, role in [(NURSE, "safeguarding-nurse"), (OTHER_NURSE, "safeguarding-nurse"), (LEAD, "safeguarding-lead")]:
        create_user(db, name, role, f"{name} passphrase long", email=f"{name}@example.nhs.uk")
    create_user(db, CLERK, "booking-team", f"{CLERK} passphrase long")
    wnb.import_context([RawItem(1, json.dumps({"nhs_number": CHILD, **PLAN}), {"nhs_number": CHILD, **PLAN})], "t")
    wnb.ingest_one(raw(event("e1"), line=None), origin="feed")
    yield wnb
    db.dispose()


def person(name: str, role: Role) -> Principal:
    return Principal(Kind.USER, name, role)


def nurse_task(service: Service) -> dict[str, Any]:
    with service.db.connect() as connection:
        return listing.tasks(connection, include_closed=True, code="notify-social-worker")[0]


def records(service: Service, action: str) -> list[dict[str, Any]]:
    with service.db.connect() as connection:
        query = select(audit._audit).where(audit._audit.c.action == action).order_by(audit._audit.c.seq)
        return [dict(row._mapping) for row in connection.execute(query)]


def outbox(service: Service) -> list[dict[str, Any]]:
    with service.db.connect() as connection:
        return listing.outbox(connection, include_sent=True)


def test_claiming_a_requested_task_acknowledges_it_and_assigns_it_to_the_claimer(service: Service) -> None:
    task = nurse_task(service)
    row = service.assign_task(task["id"], "claim", person(NURSE, Role.SAFEGUARDING_NURSE))
    assert (row.status, row.assignee) == ("accepted", NURSE)
    assert nurse_task(service)["assignee"] == NURSE
    with service.db.connect() as connection:
        history = repo.task_history_of(connection, row.id)
    assert (history[-1].action, history[-1].assignee) == ("claimed", NURSE)
    (record,) = records(service, "task_claimed")
    assert record["actor"] == f"user:{NURSE}" and record["payload"]["assignee"] == NURSE


def test_a_lead_assigns_to_a_member_of_the_role_who_hears_by_email_and_reassigning_needs_a_reason(
    service: Service,
) -> None:
    task = nurse_task(service)
    lead = person(LEAD, Role.SAFEGUARDING_LEAD)
    row = service.assign_task(task["id"], "assign", lead, NURSE)
    assert (row.status, row.assignee) == ("requested", NURSE)  # assigned, not yet acknowledged by them
    assert [item["recipient"] for item in outbox(service) if "assigned" in item["notification"]] == [
        f"{NURSE}@example.nhs.uk"
    ]
    with pytest.raises(InvalidAction, match="needs a reason"):
        service.assign_task(task["id"], "assign", lead, OTHER_NURSE)
    row = service.assign_task(task["id"], "assign", lead, OTHER_NURSE, "nurse.one is on leave")
    assert row.assignee == OTHER_NURSE
    record = records(service, "task_assigned")[-1]
    assert record["actor"] == f"user:{LEAD}"
    assert (record["payload"]["assignee"], record["payload"]["previous_assignee"]) == (OTHER_NURSE, NURSE)
    assert record["payload"]["reason"] == "nurse.one is on leave"


def test_a_task_is_assigned_only_to_an_enabled_account_of_its_role(service: Service) -> None:
    task, lead = nurse_task(service), person(LEAD, Role.SAFEGUARDING_LEAD)
    with pytest.raises(InvalidAction, match="only to a member of its role"):
        service.assign_task(task["id"], "assign", lead, CLERK)
    disable_user(service.db, NURSE)
    with pytest.raises(InvalidAction, match="disabled"):
        service.assign_task(task["id"], "assign", lead, NURSE)
    assert nurse_task(service)["assignee"] is None


def test_only_a_lead_assigns_and_only_a_member_of_the_role_claims(service: Service) -> None:
    task = nurse_task(service)
    with pytest.raises(Forbidden, match="may not assign"):
        service.assign_task(task["id"], "assign", person(NURSE, Role.SAFEGUARDING_NURSE), OTHER_NURSE)
    with pytest.raises(Forbidden, match="may not claim it"):
        service.assign_task(task["id"], "claim", person(CLERK, Role.BOOKING_TEAM))


def test_a_role_mate_may_still_act_on_a_colleagues_task_and_the_audit_names_both(service: Service) -> None:
    task = nurse_task(service)
    service.assign_task(task["id"], "claim", person(NURSE, Role.SAFEGUARDING_NURSE))
    with pytest.raises(NoteRequired, match="only with a note"):
        service.act_on_task(task["id"], "complete", person(OTHER_NURSE, Role.SAFEGUARDING_NURSE), "  ")
    row = service.act_on_task(task["id"], "complete", person(OTHER_NURSE, Role.SAFEGUARDING_NURSE), "phoned")
    assert row.status == "completed"
    (record,) = records(service, "task_completed")
    assert record["actor"] == f"user:{OTHER_NURSE}" and record["payload"]["assignee"] == NURSE


def test_only_the_assignee_or_a_lead_releases_a_task(service: Service) -> None:
    task = nurse_task(service)
    service.assign_task(task["id"], "claim", person(NURSE, Role.SAFEGUARDING_NURSE))
    with pytest.raises(Forbidden, match="may not release it"):
        service.assign_task(task["id"], "release", person(OTHER_NURSE, Role.SAFEGUARDING_NURSE))
    row = service.assign_task(task["id"], "release", person(NURSE, Role.SAFEGUARDING_NURSE))
    assert (row.assignee, row.status) == (None, "accepted")


def test_an_escalation_clears_the_assignee(service: Service) -> None:
    task = nurse_task(service)
    service.assign_task(task["id"], "assign", person(LEAD, Role.SAFEGUARDING_LEAD), NURSE)  # still requested
    with service.db.connect() as connection:
        due = repo.task_by_id(connection, int(task["id"][1:]))
    assert due is not None
    service.sweep(due.due_at + timedelta(minutes=1))
    after = nurse_task(service)
    assert after["owner_role"] != "safeguarding-nurse" and after["assignee"] is None
    (record,) = [r for r in records(service, "task_escalated") if r["subject"][0] == task["id"]]
    assert record["payload"]["cleared_assignee"] == NURSE
