"""FHIR out: Flag, Task and AuditEvent searchset Bundles over the real server, Provenance, and the NDJSON export.

One server per module over a fixed feed (two misses for one child, one for another): the searches only read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.provenance import Provenance

from tests.api.test_api import GOVERNANCE, NURSE, OTHER_CHILD, Api
from tests.factories import CHILD, event
from wnb.api import create_app
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.fhir.appointments import NHS_NUMBER_SYSTEM
from wnb.service import Service
from wnb.store.accounts import create_api_key, create_user

PATIENT = f"{NHS_NUMBER_SYSTEM}|{CHILD}"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, ruleset: Ruleset) -> Iterator[Api]:
    """A real uvicorn server on loopback, loaded with the module's feed."""
    db = open_database(f"sqlite:///{tmp_path_factory.mktemp('fhir') / 'wnb.db'}")
    service = Service(db, ruleset)
    keys = create_api_key(db, "clinic-system", "pas", sources=["pas"]), create_api_key(db, "admin", "ops")
    create_user(db, NURSE[0], "safeguarding-nurse", NURSE[1])
    create_user(db, GOVERNANCE[0], "governance", GOVERNANCE[1])
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    loaded = Api(f"http://127.0.0.1:{port}", service, *keys)
    feed = [event("e1"), event("e2", appointment_id="a2"), event("o1", nhs_number=OTHER_CHILD)]
    with loaded.clinic() as client:
        assert client.post("/v1/attendance-events", json={"events": feed}).status_code == 200
    yield loaded
    server.should_exit = True
    thread.join(timeout=10)
    db.dispose()


def search(api: Api, path: str, credentials: tuple[str, str] | None = None, **params: str) -> dict[str, Any]:
    client = api.person(credentials) if credentials else api.person()
    with client:
        answer = client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    bundle = answer.json()
    Bundle.model_validate(bundle)  # a valid FHIR R4 Bundle, every resource in it validated too
    return bundle


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in bundle.get("entry", []) if entry["resource"]["resourceType"] == kind]


def test_flags_search_by_patient_returns_valid_flags_with_the_nhs_number(api: Api) -> None:
    bundle = search(api, "/fhir/Flag", **{"patient:identifier": PATIENT})
    flags = resources(bundle, "Flag")
    assert bundle["type"] == "searchset" and bundle["total"] == len(flags) >= 1
    assert {flag["subject"]["identifier"]["value"] for flag in flags} == {CHILD}
    repeat = next(flag for flag in flags if flag["code"]["coding"][0]["code"] == "repeat-wnb")
    assert repeat["status"] == "active"
    assert repeat["category"][0]["coding"][0]["code"] == "safety"
    assert repeat["subject"]["identifier"]["system"] == NHS_NUMBER_SYSTEM
    assert repeat["period"]["start"]


def test_tasks_search_by_status_and_code_gives_owner_priority_and_due(api: Api) -> None:
    bundle = search(api, "/fhir/Task", status="requested", code="urn:wnb:task-code|reoffer-appointment")
    task = resources(bundle, "Task")[0]
    assert bundle["total"] == 2  # one for each child: a repeat miss links to the open task
    assert task["status"] == "requested" and task["intent"] == "order"
    assert task["code"]["coding"][0]["code"] == "reoffer-appointment"
    assert task["owner"]["identifier"]["value"] == "booking-team"
    assert task["priority"] in ("routine", "urgent", "asap")
    (listed,) = [item for item in api.tasks() if item["id"] == task["id"]]
    assert task["restriction"]["period"]["end"] == listed["due_at"]


def test_a_status_that_matches_nothing_gives_an_empty_bundle(api: Api) -> None:
    bundle = search(api, "/fhir/Task", status="completed")
    assert bundle["total"] == 0 and "entry" not in bundle


def test_revinclude_adds_provenance_linking_events_and_ruleset_version(api: Api) -> None:
    bundle = search(api, "/fhir/Flag", _revinclude="Provenance:target", code="repeat-wnb")
    (flag,) = resources(bundle, "Flag")
    (provenance,) = resources(bundle, "Provenance")
    Provenance.model_validate(provenance)
    assert provenance["target"] == [{"reference": f"Flag/{flag['id']}"}]
    assert provenance["policy"] == [f"urn:wnb:ruleset:{api.service.ruleset.version}"]
    sources = [e["what"]["identifier"]["value"] for e in provenance["entity"] if e["role"] == "source"]
    assert sources == ["pas/e2"]
    assert any(e["what"].get("reference", "").startswith("AuditEvent/A") for e in provenance["entity"])


def test_pages_follow_next_links(api: Api) -> None:
    first = search(api, "/fhir/Task", _count="2")
    assert len(first["entry"]) == 2 and first["total"] > 2
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    with api.person() as client:
        second = client.get(next_url).json()
    assert {e["resource"]["id"] for e in second["entry"]}.isdisjoint({e["resource"]["id"] for e in first["entry"]})


BAD_SEARCHES = [
    ({"patient:identifier": "9990000019"}, "patient:identifier"),
    ({"patient:identifier": "http://other|9990000018"}, "patient:identifier"),
    ({"status": "done"}, "status"),
    ({"nhs": CHILD}, "nhs"),
    ({"_count": "many"}, "_count"),
]


def test_a_bad_search_parameter_is_refused_with_an_operation_outcome_naming_it(api: Api) -> None:
    with api.person() as client:
        answers = [(client.get("/fhir/Flag", params=params), parameter) for params, parameter in BAD_SEARCHES]
    for answer, parameter in answers:
        assert answer.status_code == 400
        assert answer.json()["resourceType"] == "OperationOutcome"
        assert answer.json()["issue"][0]["expression"] == [parameter]


def test_a_search_naming_a_child_is_audited_as_a_read(api: Api) -> None:
    search(api, "/fhir/Task", **{"patient:identifier": PATIENT})
    reads = [record for record in api.audit_records("record_read") if record["payload"] == {"view": "fhir-task"}]
    assert [read["subject"] for read in reads] == [[CHILD]]


def test_audit_events_for_governance_carry_the_chain(api: Api) -> None:
    bundle = search(api, "/fhir/AuditEvent", GOVERNANCE, type="evaluation")
    evaluation = resources(bundle, "AuditEvent")[0]
    assert bundle["total"] == 3
    AuditEvent.model_validate(evaluation)
    details = {d["type"]: d["valueString"] for e in evaluation["entity"] for d in e.get("detail", [])}
    assert json.loads(details["payload"])["fired"]
    assert len(details["hash"]) == 64 and details["ruleset_version"] == api.service.ruleset.version
    assert any(e["what"].get("identifier", {}).get("value") == CHILD for e in evaluation["entity"])


def test_a_clinic_system_and_a_nurse_may_not_read_audit_events(api: Api) -> None:
    with api.clinic() as client:
        assert client.get("/fhir/Flag").status_code == 403
    with api.person() as client:
        assert client.get("/fhir/AuditEvent").status_code == 403


def test_audit_export_fhir_writes_audit_events_then_provenance_as_ndjson(api: Api, tmp_path: Path) -> None:
    environment = {**os.environ, "WNB_DATABASE_URL": str(api.service.db.url)}
    wnb = Path(sys.executable).parent / "wnb"
    result = subprocess.run(
        [str(wnb), "audit", "export", "--format", "fhir"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [line["resourceType"] for line in lines]
    assert kinds[0] == "AuditEvent" and kinds[-1] == "Provenance"
    assert kinds.count("Provenance") == len(api.flags()) + len(api.tasks())
    for line in lines:
        (AuditEvent if line["resourceType"] == "AuditEvent" else Provenance).model_validate(line)


def test_audit_events_are_searched_by_date(api: Api) -> None:
    everything = search(api, "/fhir/AuditEvent", GOVERNANCE)
    assert everything["total"] > 0
    assert search(api, "/fhir/AuditEvent", GOVERNANCE, date="ge2999-01-01T00:00:00+00:00")["total"] == 0
    assert (
        search(api, "/fhir/AuditEvent", GOVERNANCE, date="le2999-01-01T00:00:00+00:00")["total"] == everything["total"]
    )


def test_a_task_awaiting_acknowledgement_is_an_in_progress_fhir_task_and_searched_by_either_word(api: Api) -> None:
    from datetime import UTC, datetime

    from wnb.fhir.resources import task_resource

    at = datetime(2026, 3, 2, 12, tzinfo=UTC)
    row = {
        "id": 9,
        "service": "community-paediatrics",
        "escalation_level": 0,
        "status": "awaiting-acknowledgement",
        "code": "inform-gp",
        "nhs_number": CHILD,
        "created_at": at,
        "updated_at": at,
        "due_at": at,
        "owner_role": "booking-team",
        "rule_ids": ["WNB-09"],
    }
    assert task_resource(row)["status"] == "in-progress"
    for word in ("in-progress", "awaiting-acknowledgement"):
        assert search(api, "/fhir/Task", status=word)["total"] == 0  # none is sent in this module's feed
