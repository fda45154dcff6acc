"""The HTTP API against a real uvicorn server on loopback: ingestion, idempotency, refusals, roles, actions."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.factories import CHILD, event, pas_clinic_key
from tests.server import serving
from wnb.api import create_app
from wnb.api.ingestion import MAX_BODY_BYTES
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.store import audit, listing
from wnb.store.accounts import create_api_key, create_user

STORES = ("sqlite", "postgres")  # every test here runs on both stores (conftest.py)

OTHER_CHILD = "9990000034"
NURSE = ("nurse.jo", "correct horse battery staple")
GOVERNANCE = ("gov.sam", "another long passphrase")


@dataclass
class Api:
    url: str
    service: Service
    clinic_key: str
    admin_key: str

    def clinic(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": self.clinic_key}, timeout=10)

    def person(self, credentials: tuple[str, str] = NURSE) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=credentials, timeout=10)

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def rejects(self) -> list[dict[str, Any]]:
        with self.service.db.connect() as connection:
            return listing.rejects(connection)

    def tasks(self) -> list[dict[str, Any]]:
        with self.service.db.connect() as connection:
            return listing.tasks(connection, include_closed=True)

    def flags(self) -> list[dict[str, Any]]:
        with self.service.db.connect() as connection:
            return listing.flags(connection, include_closed=True)

    def audit_records(self, action: str) -> list[dict[str, Any]]:
        with self.service.db.connect() as connection:
            query = select(audit._audit).where(audit._audit.c.action == action).order_by(audit._audit.c.seq)
            return [dict(row._mapping) for row in connection.execute(query)]


@pytest.fixture
def api(db_url: str, ruleset: Ruleset) -> Iterator[Api]:
    db = open_database(db_url)
    service = Service(db, ruleset)
    clinic_key = pas_clinic_key(db)
    admin_key = create_api_key(db, "admin", "ops")
    create_user(db, NURSE[0], "safeguarding-nurse", NURSE[1])
    create_user(db, GOVERNANCE[0], "governance", GOVERNANCE[1])
    with serving(create_app(service)) as url:
        yield Api(url, service, clinic_key, admin_key)
    db.dispose()


# ---- ingestion ----


def test_a_posted_missed_appointment_is_evaluated_before_the_answer(api: Api) -> None:
    with api.clinic() as client:
        answer = client.post("/v1/attendance-events", json=event("e1"))
    assert answer.status_code == 200
    assert answer.json() == {"source": "pas", "event_id": "e1", "status": "accepted"}
    assert api.tasks() and all(task["nhs_number"] == CHILD for task in api.tasks())


def test_a_batch_answers_each_event_in_order(api: Api) -> None:
    batch = [
        event("e1"),
        event("e2", appointment_id="a-e1", recorded_at="2026-03-02T12:00:00+00:00", attendance="attended"),
        event("e3", appointment_id="a-e1", recorded_at="2026-03-02T11:30:00+00:00"),
        event("e1"),
        event("e4", nhs_number="1234567890"),
        event("e5", nhs_number=OTHER_CHILD),
    ]
    with api.clinic() as client:
        answer = client.post("/v1/attendance-events", json={"events": batch})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [item["status"] for item in results] == [
        "accepted",
        "superseded",
        "stale",
        "duplicate",
        "rejected",
        "accepted",
    ]
    assert results[4]["field"] == "nhs_number" and results[4]["event_id"] == "e4"
    assert answer.json()["counts"] == {"accepted": 2, "superseded": 1, "stale": 1, "duplicate": 1, "rejected": 1}
    # The child's miss was corrected to attended, so only the other child's tasks stay open.
    assert {task["nhs_number"] for task in api.tasks() if task["status"] == "requested"} == {OTHER_CHILD}
    # e3, a miss recorded before the stored attended, is stored as stale and listed, but it is not a reject.
    assert [(item["kind"], item["event_id"]) for item in api.rejects()] == [("stale-outcome", "e3"), ("reject", "e4")]
    assert results[2]["field"] == "recorded_at" and results[2]["reason"].startswith("stored as stale")


def test_a_batch_resent_after_a_failure_queues_its_bad_rows_once_and_answers_them_rejected_again(api: Api) -> None:
    batch = {"events": [event("e1"), event("e2", nhs_number="1234567890"), ["not", "an", "event"]]}
    malformed = b'{"events": [{"source": "pas", '
    with api.clinic() as client:
        first = client.post("/v1/attendance-events", json=batch)
        again = client.post("/v1/attendance-events", json=batch)  # as a client does when the first answer was lost
        broken = [
            client.post("/v1/attendance-events", content=malformed, headers={"Content-Type": "application/json"})
            for _ in range(2)
        ]
    assert [item["status"] for item in first.json()["results"]] == ["accepted", "rejected", "rejected"]
    assert [item["status"] for item in again.json()["results"]] == ["duplicate", "rejected", "rejected"]
    assert again.json()["results"][1]["field"] == "nhs_number"
    assert [answer.status_code for answer in broken] == [400, 400]
    queued = api.rejects()
    assert [(reject["event_id"], reject["field"], reject["received_count"]) for reject in queued] == [
        ("e2", "nhs_number", 2),
        (None, "events.2", 2),
        (None, "body", 2),
    ]
    assert len(api.audit_records("event_rejected")) == 3
    assert len(api.audit_records("reject_repeated")) == 3


def test_a_repeated_event_id_is_a_duplicate_with_no_second_effect(api: Api) -> None:
    with api.clinic() as client:
        client.post("/v1/attendance-events", json=event("e1"))
        before = api.tasks(), api.flags()
        answer = client.post("/v1/attendance-events", json=event("e1"))
    assert answer.json()["status"] == "duplicate"
    assert (api.tasks(), api.flags()) == before


def test_a_repeated_idempotency_key_returns_the_first_answer_without_a_second_effect(api: Api) -> None:
    headers = {"Idempotency-Key": "k-1"}
    with api.clinic() as client:
        first = client.post("/v1/attendance-events", json=event("e1"), headers=headers)
        evaluations = len(api.audit_records("evaluation"))
        again = client.post("/v1/attendance-events", json=event("e1"), headers=headers)
        changed = client.post("/v1/attendance-events", json=event("e2"), headers=headers)
    assert (again.status_code, again.json()) == (first.status_code, first.json()) == (200, first.json())
    assert again.json()["status"] == "accepted"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(api.audit_records("evaluation")) == evaluations
    assert changed.status_code == 422 and changed.json()["field"] == "Idempotency-Key"


def test_the_same_idempotency_key_from_another_client_is_another_request(api: Api) -> None:
    headers = {"Idempotency-Key": "k-1"}
    with api.clinic() as client:
        client.post("/v1/attendance-events", json=event("e1"), headers=headers)
    admin = httpx.Client(base_url=api.url, headers={"X-API-Key": api.admin_key, **headers})
    with admin:
        answer = admin.post("/v1/attendance-events", json=event("e1"))
    assert answer.json()["status"] == "duplicate"
    assert "Idempotent-Replayed" not in answer.headers


def test_malformed_json_answers_400_and_keeps_the_body_in_the_queue(api: Api) -> None:
    body = b'{"source": "pas", "event_id": '
    with api.clinic() as client:
        answer = client.post("/v1/attendance-events", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["status"] == "rejected" and answer.json()["field"] == "body"
    assert "malformed JSON" in answer.json()["reason"]
    assert [(reject["field"], reject["raw"]) for reject in api.rejects()] == [("body", body.decode())]


def test_an_unknown_field_answers_422_naming_it_and_is_queued(api: Api) -> None:
    with api.clinic() as client:
        answer = client.post("/v1/attendance-events", json=event("e1", colour="blue"))
    assert answer.status_code == 422
    assert answer.json() == {"status": "rejected", "field": "colour", "reason": "unknown field"}
    assert [(reject["event_id"], reject["field"]) for reject in api.rejects()] == [("e1", "colour")]


def test_a_bad_nhs_number_answers_422_naming_the_field(api: Api) -> None:
    with api.clinic() as client:
        answer = client.post("/v1/attendance-events", json=event("e1", nhs_number="1234567890"))
    assert answer.status_code == 422
    assert answer.json()["field"] == "nhs_number"
    assert api.tasks() == []


def test_a_wrong_type_answers_422_naming_the_field(api: Api) -> None:
    with api.clinic() as client:
        answer = client.post("/v1/attendance-events", json=event("e1", appointment_at=42))
    assert answer.status_code == 422
    assert answer.json()["field"] == "appointment_at"


def test_an_oversized_body_answers_413(api: Api) -> None:
    padding = "x" * MAX_BODY_BYTES
    with api.clinic() as client:
        declared = client.post("/v1/attendance-events", json=event("e1", source=padding))
        streamed = client.post(
            "/v1/attendance-events",
            content=iter([b'{"source": "', padding.encode(), b'"}']),
            headers={"Content-Type": "application/json"},
        )
    assert declared.status_code == 413 and declared.json()["field"] == "body"
    assert streamed.status_code == 413
    assert api.rejects() == []


def test_a_batch_longer_than_the_limit_is_refused_whole(api: Api) -> None:
    with api.clinic() as client:
        answer = client.post("/v1/attendance-events", json={"events": [{}] * 1001})
    assert answer.status_code == 422 and answer.json()["field"] == "events"
    assert api.tasks() == []


def test_context_is_put_under_the_path_nhs_number(api: Api) -> None:
    record = {"date_of_birth": "2019-05-01", "statuses": [{"kind": "child-protection-plan", "start": "2025-01-01"}]}
    with api.clinic() as client:
        created = client.put(f"/v1/people/{CHILD}/context", json=record)
        updated = client.put(f"/v1/people/{CHILD}/context", json={**record, "nhs_number": CHILD})
        mismatch = client.put(f"/v1/people/{CHILD}/context", json={**record, "nhs_number": OTHER_CHILD})
        unknown = client.put(f"/v1/people/{CHILD}/context", json={**record, "shoe_size": 3})
    assert created.json() == {"nhs_number": CHILD, "status": "created"}
    assert updated.json()["status"] == "updated"
    assert (mismatch.status_code, mismatch.json()["field"]) == (422, "nhs_number")
    assert (unknown.status_code, unknown.json()["field"]) == (422, "shoe_size")
    assert [reject["field"] for reject in api.rejects()] == ["nhs_number", "shoe_size"]


def test_context_naming_related_people_is_put_and_a_bad_entry_refused_naming_it(api: Api) -> None:
    sibling = {"nhs_number": OTHER_CHILD, "relationship": "sibling"}
    with api.clinic() as client:
        created = client.put(f"/v1/people/{CHILD}/context", json={"related": [sibling]})
        itself = client.put(
            f"/v1/people/{CHILD}/context", json={"related": [sibling, {**sibling, "nhs_number": CHILD}]}
        )
        twice = client.put(f"/v1/people/{CHILD}/context", json={"related": [sibling, sibling]})
        cousin = client.put(f"/v1/people/{CHILD}/context", json={"related": [{**sibling, "relationship": "cousin"}]})
    assert created.json() == {"nhs_number": CHILD, "status": "created"}
    assert [(a.status_code, a.json()["field"]) for a in (itself, twice, cousin)] == [
        (422, "related.1.nhs_number"),
        (422, "related.1.nhs_number"),
        (422, "related.0.relationship"),
    ]
    assert "themself" in itself.json()["reason"] and "again" in twice.json()["reason"]
    assert [reject["field"] for reject in api.rejects()] == [
        "related.1.nhs_number",
        "related.1.nhs_number",
        "related.0.relationship",
    ]


# ---- authentication and roles ----


def _fill(path: str) -> str:
    values = {
        "{nhs_number}": CHILD,
        "{task_id}": "T1",
        "{flag_id}": "F1",
        "{action}": "ack",
        "{communication_id}": "M1",
    }
    for name, value in values.items():
        path = path.replace(name, value)
    assert "{" not in path, f"no sample value for a parameter of {path}"
    return path


def test_every_route_in_the_openapi_document_refuses_an_anonymous_call(api: Api) -> None:
    with api.anonymous() as client:
        document = client.get("/openapi.json").json()
        calls = [(method, path) for path, item in document["paths"].items() for method in item]
        assert len(calls) >= 8
        for method, path in calls:
            answer = client.request(method.upper(), _fill(path), json={})
            expected = 200 if path.startswith("/health/") else 401
            assert answer.status_code == expected, f"{method.upper()} {path} answered {answer.status_code}"
            if expected == 401:
                assert answer.headers["WWW-Authenticate"].startswith("Basic")


def test_a_wrong_key_or_password_is_refused(api: Api) -> None:
    with httpx.Client(base_url=api.url, headers={"X-API-Key": api.clinic_key + "x"}) as client:
        assert client.post("/v1/attendance-events", json=event("e1")).status_code == 401
    with api.person((NURSE[0], "wrong password entirely")) as client:
        assert client.get("/v1/tasks").status_code == 401


def test_a_clinic_system_cannot_read_childrens_records(api: Api) -> None:
    with api.clinic() as client:
        for path in ("/v1/tasks", "/v1/flags", f"/v1/people/{CHILD}/timeline"):
            answer = client.get(path)
            assert answer.status_code == 403, path
            assert answer.json()["status"] == "refused"


def test_a_person_cannot_post_events_and_governance_cannot_act(api: Api) -> None:
    with api.person() as client:
        assert client.post("/v1/attendance-events", json=event("e1")).status_code == 403
    with api.person(GOVERNANCE) as client:
        assert client.get("/v1/tasks").status_code == 200
        assert client.post("/v1/tasks/T1/ack", json={}).status_code == 403


# ---- reading and acting ----


ON_A_PLAN = {"date_of_birth": "2019-05-01", "statuses": [{"kind": "child-protection-plan", "start": "2025-06-01"}]}


def test_a_nurse_acknowledges_and_completes_a_task(api: Api) -> None:
    with api.clinic() as client:
        client.put(f"/v1/people/{CHILD}/context", json=ON_A_PLAN)
        client.post("/v1/attendance-events", json=event("e1"))
    with api.person() as client:
        open_tasks = client.get("/v1/tasks", params={"nhs_number": CHILD, "role": "safeguarding-nurse"}).json()
        task_id = open_tasks[0]["id"]
        acked = client.post(f"/v1/tasks/{task_id}/ack", json={})
        completed = client.post(f"/v1/tasks/{task_id}/complete", json={"note": "spoke to the family"})
        again = client.post(f"/v1/tasks/{task_id}/complete", json={"note": "twice"})
        missing = client.post("/v1/tasks/T999/ack", json={})
    assert acked.status_code == 200 and acked.json()["status"] == "accepted"
    assert completed.status_code == 200 and completed.json()["status"] == "completed"
    assert again.status_code == 409 and again.json()["status"] == "conflict"
    assert missing.status_code == 404
    actions = [(record["action"], record["actor"]) for record in api.audit_records("task_acknowledged")]
    actions += [(record["action"], record["actor"]) for record in api.audit_records("task_completed")]
    assert actions == [("task_acknowledged", f"user:{NURSE[0]}"), ("task_completed", f"user:{NURSE[0]}")]


def test_a_nurse_resolves_a_flag_with_a_reason(api: Api) -> None:
    with api.clinic() as client:
        client.post(
            "/v1/attendance-events",
            json={"events": [event("e1"), event("e2", appointment_at="2026-03-03T10:00:00+00:00")]},
        )
    with api.person() as client:
        flags = client.get("/v1/flags").json()
        assert flags, "two misses raise a flag"
        no_reason = client.post(f"/v1/flags/{flags[0]['id']}/resolve", json={})
        resolved = client.post(f"/v1/flags/{flags[0]['id']}/resolve", json={"reason": "seen at home"})
    assert (no_reason.status_code, no_reason.json()["field"]) == (422, "reason")
    assert resolved.json()["status"] == "inactive"


def test_tasks_filter_by_role_status_and_due_time(api: Api) -> None:
    with api.clinic() as client:
        client.post("/v1/attendance-events", json=event("e1"))
    with api.person() as client:
        every = client.get("/v1/tasks", params={"status": "all"}).json()
        role = every[0]["owner_role"]
        by_role = client.get("/v1/tasks", params={"role": role}).json()
        none_due = client.get("/v1/tasks", params={"due_before": "2026-03-02T00:00:00+00:00"}).json()
        completed = client.get("/v1/tasks", params={"status": "completed"}).json()
        naive = client.get("/v1/tasks", params={"due_before": "2026-03-02T00:00:00"})
        bad_number = client.get("/v1/tasks", params={"nhs_number": "1234567890"})
    assert by_role and all(task["owner_role"] == role for task in by_role)
    assert none_due == [] and completed == []
    assert (naive.status_code, naive.json()["field"]) == (422, "due_before")
    assert (bad_number.status_code, bad_number.json()["field"]) == (422, "nhs_number")


def test_reading_a_timeline_is_audited_with_the_reader(api: Api) -> None:
    with api.clinic() as client:
        client.post("/v1/attendance-events", json=event("e2", appointment_at="2026-03-04T10:00:00+00:00"))
        client.post("/v1/attendance-events", json=event("e1"))
    with api.person() as client:
        answer = client.get(f"/v1/people/{CHILD}/timeline")
        bad = client.get("/v1/people/123/timeline")
    timeline = answer.json()
    assert answer.status_code == 200
    assert [item["event_id"] for item in timeline["events"]] == ["e1", "e2"]
    assert timeline["events"][0]["attendance"] == "did-not-attend"
    assert timeline["tasks"] and timeline["flags"] is not None
    reads = api.audit_records("record_read")
    assert [(record["actor"], record["subject"]) for record in reads] == [(f"user:{NURSE[0]}", [CHILD])]
    assert bad.status_code == 422 and bad.json()["field"] == "nhs_number"
    with api.service.db.connect() as connection:
        assert audit.verify(connection).ok


def test_health_live_needs_no_authentication(api: Api) -> None:
    with api.anonymous() as client:
        assert client.get("/health/live").json() == {"status": "ok"}


def test_health_ready_answers_ok_while_the_database_answers(api: Api) -> None:
    with api.anonymous() as client:
        assert client.get("/health/ready").json() == {"status": "ok"}


def test_every_answer_carries_a_request_id_and_echoes_a_given_one(api: Api) -> None:
    with api.anonymous() as client:
        made = client.get("/health/live").headers["X-Request-ID"]
        echoed = client.get("/health/live", headers={"X-Request-ID": "pas-req-42"}).headers["X-Request-ID"]
    assert len(made) == 32 and echoed == "pas-req-42"


def test_keys_and_passwords_are_stored_only_hashed(api: Api) -> None:
    with api.service.db.connect() as connection:
        dump = json.dumps([list(map(str, row)) for row in connection.exec_driver_sql("SELECT * FROM api_key")])
        dump += json.dumps([list(map(str, row)) for row in connection.exec_driver_sql("SELECT * FROM user_account")])
    assert api.clinic_key not in dump and api.clinic_key.split("_", 2)[2] not in dump
    assert NURSE[1] not in dump and "$argon2id$" in dump


def test_malformed_context_json_answers_400_and_is_queued(api: Api) -> None:
    with api.clinic() as client:
        answer = client.put(
            f"/v1/people/{CHILD}/context", content=b"{nope", headers={"Content-Type": "application/json"}
        )
    assert (answer.status_code, answer.json()["field"]) == (400, "body")
    assert [reject["raw"] for reject in api.rejects()] == ["{nope"]


def test_metrics_count_ingested_events_raised_items_and_overdue_tasks_for_an_admin(api: Api) -> None:
    with api.clinic() as client:
        client.post("/v1/attendance-events", json=event("m1"))
        assert client.get("/metrics").status_code == 403  # not for a clinic system
    with httpx.Client(base_url=api.url, headers={"X-API-Key": api.admin_key}, timeout=10) as admin:
        text = admin.get("/metrics").text
    assert 'wnb_events_ingested_total{origin="api",result="accepted"}' in text
    assert 'wnb_items_raised_total{kind="task",rule="WNB-09"}' in text
    assert 'wnb_overdue_tasks{role="booking-team"}' in text  # the event was recorded in 2026-03: all overdue
    assert "wnb_sweep_seconds" in text and "9990000018" not in text


# ---- the governance figures for analysts ----

MARCH_WEEK = {"from": "2026-03-01", "to": "2026-03-07"}  # the factories' appointments are on Mon 2 Mar 2026


def processing_days() -> dict[str, str]:
    """A period around today, when the test's events are processed (whatever the time of day)."""
    today = datetime.now(UTC).date()
    return {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}


def test_the_governance_figures_are_json_dated_by_appointment_unless_asked_otherwise(api: Api) -> None:
    with api.clinic() as client:
        client.post("/v1/attendance-events", json=event("e1"))
    with api.person(GOVERNANCE) as client:
        march = client.get("/v1/reports/governance", params=MARCH_WEEK)
        march_processed = client.get("/v1/reports/governance", params={**MARCH_WEEK, "by": "processed"})
        today_processed = client.get("/v1/reports/governance", params={**processing_days(), "by": "processed"})
        today = client.get("/v1/reports/governance", params=processing_days())
    assert march.status_code == 200 and march.headers["content-type"].startswith("application/json")
    report = march.json()
    assert report["period"] == {
        "first_day": "2026-03-01",
        "last_day": "2026-03-07",
        "starts_at": "2026-03-01T00:00:00+00:00",
        "ends_at": "2026-03-08T00:00:00+00:00",
        "by": "appointment",
    }
    assert report["evaluations"] == 1 and report["sources"][0]["accepted"] == 1
    assert all(rule["title"] == api.service.ruleset.rule(rule["rule_id"]).title for rule in report["rules"])
    assert report["rules"] and report["roles"] and all(role["tasks_raised"] >= 1 for role in report["roles"])
    # Processed today, not in March: the processing date puts it in today's period instead.
    assert march_processed.json()["evaluations"] == 0 and today.json()["evaluations"] == 0
    assert today_processed.json()["evaluations"] == 1 and today_processed.json()["period"]["by"] == "processed"


def test_the_governance_figures_are_csv_when_asked_with_formula_cells_escaped(api: Api) -> None:
    with httpx.Client(base_url=api.url, headers={"X-API-Key": api.admin_key}, timeout=10) as admin:
        admin.post("/v1/attendance-events", json=event("e1", source="=HYPERLINK(1)"))
    with api.person(GOVERNANCE) as client:
        by_format = client.get("/v1/reports/governance", params={**MARCH_WEEK, "format": "csv"})
        by_accept = client.get("/v1/reports/governance", params=MARCH_WEEK, headers={"Accept": "text/csv"})
    assert by_format.headers["content-type"].startswith("text/csv")
    assert "wnb-governance-2026-03-01-to-2026-03-07.csv" in by_format.headers["content-disposition"]
    assert by_accept.text == by_format.text
    rows = list(csv.reader(io.StringIO(by_format.text)))
    assert rows[0] == ["section", "name", "measure", "value"]
    assert ["period", "2026-03-01T00:00:00+00:00/2026-03-08T00:00:00+00:00", "dated by", "appointment"] in rows
    assert ["source", "'=HYPERLINK(1)", "accepted", "1"] in rows  # a formula is text in a spreadsheet


def test_the_governance_figures_are_for_a_governance_key_and_refused_to_a_nurse(api: Api) -> None:
    analyst_key = create_api_key(api.service.db, "governance", "analyst")
    with httpx.Client(base_url=api.url, headers={"X-API-Key": analyst_key}, timeout=10) as analyst:
        by_key = analyst.get("/v1/reports/governance", params=MARCH_WEEK)
    with api.person(NURSE) as client:
        nurse = client.get("/v1/reports/governance", params=MARCH_WEEK)
    with api.clinic() as client:
        clinic = client.get("/v1/reports/governance", params=MARCH_WEEK)
    with api.anonymous() as client:
        anonymous = client.get("/v1/reports/governance", params=MARCH_WEEK)
    assert by_key.status_code == 200 and by_key.json()["period"]["by"] == "appointment"
    assert nurse.status_code == 403 and "governance" in nurse.json()["reason"]
    assert clinic.status_code == 403 and anonymous.status_code == 401


def test_a_governance_period_that_ends_before_it_starts_is_refused(api: Api) -> None:
    with api.person(GOVERNANCE) as client:
        answer = client.get("/v1/reports/governance", params={"from": "2026-03-07", "to": "2026-03-01"})
        unknown = client.get("/v1/reports/governance", params={**MARCH_WEEK, "by": "received"})
    assert answer.status_code == 422 and answer.json()["field"] == "to"
    assert unknown.status_code == 422
