"""FHIR R4 Appointments in: the mapping of DOMAIN.md §2.1, Bundle files, and the /fhir endpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_api import Api, api  # noqa: F401  (the real uvicorn server fixture)
from wnb.core.errors import InvalidEvent
from wnb.fhir.appointments import NHS_NUMBER_SYSTEM, appointment_to_event
from wnb.ingest import detect_format, read_file
from wnb.service import Service
from wnb.store import listing

CHILD = "9990000018"


def appointment(status: str = "noshow", **changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": "appt-1",
        "meta": {"versionId": "2", "lastUpdated": "2026-03-02T11:00:00+00:00"},
        "identifier": [{"system": "https://pas.example.nhs.uk/appointment", "value": "A-1001"}],
        "status": status,
        "serviceType": [{"coding": [{"code": "audiology"}]}],
        "start": "2026-03-02T10:00:00+00:00",
        "contained": [{"resourceType": "Patient", "id": "p", "birthDate": "2019-05-01"}],
        "participant": [{"actor": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": CHILD}}, "status": "accepted"}],
    }
    resource.update(changes)
    return resource


@pytest.mark.parametrize(
    ("status", "attendance"),
    [
        ("noshow", "did-not-attend"),
        ("fulfilled", "attended"),
        ("arrived", "attended"),
        ("checked-in", "attended"),
        ("booked", "booked"),
        ("pending", "booked"),
        ("proposed", "booked"),
        ("entered-in-error", "entered-in-error"),
    ],
)
def test_appointment_status_maps_to_attendance(status: str, attendance: str) -> None:
    assert appointment_to_event(appointment(status))["attendance"] == attendance


def test_a_cancellation_for_a_patient_reason_is_a_patient_cancellation() -> None:
    reason = {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason", "code": "pat-crs"}
        ]
    }
    assert appointment_to_event(appointment("cancelled", cancelationReason=reason))["attendance"] == (
        "cancelled-by-patient"
    )


def test_a_cancellation_for_another_or_no_reason_is_a_provider_cancellation() -> None:
    reason = {"coding": [{"code": "prov-pers"}]}
    assert appointment_to_event(appointment("cancelled", cancelationReason=reason))["attendance"] == (
        "cancelled-by-provider"
    )
    assert appointment_to_event(appointment("cancelled"))["attendance"] == "cancelled-by-provider"


def test_the_event_carries_identity_service_times_and_the_contained_date_of_birth() -> None:
    event = appointment_to_event(appointment())
    assert event == {
        "source": "https://pas.example.nhs.uk/appointment",
        "event_id": "A-1001/_history/2",
        "nhs_number": CHILD,
        "service": "audiology",
        "appointment_id": "A-1001",
        "appointment_at": "2026-03-02T10:00:00+00:00",
        "attendance": "did-not-attend",
        "date_of_birth": "2019-05-01",
        "recorded_at": "2026-03-02T11:00:00+00:00",
    }


def test_without_a_version_the_same_resource_gives_the_same_event_id() -> None:
    unversioned = appointment(meta={"lastUpdated": "2026-03-02T11:00:00+00:00"})
    assert appointment_to_event(unversioned)["event_id"] == appointment_to_event(dict(unversioned))["event_id"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"participant": [{"actor": {"display": "a child"}, "status": "accepted"}]}, "Appointment.participant"),
        ({"status": "waitlist"}, "Appointment.status"),
        ({"status": "no-such-status"}, "Appointment.status"),
        ({"identifier": []}, "Appointment.identifier"),
        ({"serviceType": None}, "Appointment.serviceType"),
        ({"resourceType": "Patient"}, "resourceType"),
    ],
)
def test_an_unusable_appointment_is_refused_naming_the_element(changes: dict[str, Any], field: str) -> None:
    resource = {key: value for key, value in appointment(**changes).items() if value is not None}
    with pytest.raises(InvalidEvent) as refused:
        appointment_to_event(resource)
    assert refused.value.field.startswith(field)


def test_a_bundle_file_is_ingested_with_its_bad_entry_rejected(tmp_path: Path, service: Service) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": appointment()}, {"resource": appointment(participant=[])}],
    }
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(bundle))
    assert detect_format(path) == "fhir"
    counts = service.ingest(read_file(path), origin="feed.json")
    assert (counts["accepted"], counts["rejected"]) == (1, 1)
    with service.db.connect() as connection:
        assert {task["code"] for task in listing.tasks(connection)} >= {"reoffer-appointment", "letter-to-parent"}
        (reject,) = listing.rejects(connection)
    assert reject["field"] == "Appointment.participant" and reject["line"] == 1


def test_posting_an_appointment_answers_an_operation_outcome_and_raises_tasks(api: Api) -> None:  # noqa: F811
    with api.clinic() as client:
        first = client.post("/fhir/Appointment", json=appointment())
        again = client.post("/fhir/Appointment", json=appointment())
    assert first.status_code == 201 and first.json()["resourceType"] == "OperationOutcome"
    assert again.status_code == 200 and again.json()["issue"][0]["diagnostics"] == "duplicate"
    assert any(task["code"] == "letter-to-parent" for task in api.tasks())


def test_posting_a_bundle_answers_each_entry(api: Api) -> None:  # noqa: F811
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": appointment()}, {"resource": appointment(status="waitlist", id="x")}],
    }
    with api.clinic() as client:
        answer = client.post("/fhir", json=bundle)
    assert answer.status_code == 200 and answer.json()["type"] == "batch-response"
    statuses = [entry["response"]["status"] for entry in answer.json()["entry"]]
    assert statuses == ["201 Created", "422 Unprocessable Entity"]
    assert [reject["field"] for reject in api.rejects()] == ["Appointment.status"]


def test_a_clinic_system_must_authenticate_to_post_fhir(api: Api) -> None:  # noqa: F811
    with api.anonymous() as client:
        assert client.post("/fhir/Appointment", json=appointment()).status_code == 401
