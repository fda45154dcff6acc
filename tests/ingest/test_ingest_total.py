"""Ingestion is total (issue 12): each kind of bad row, message or resource is a named reject with its raw input,
and the rest of the file, batch, inbox or connection goes on; on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import factories
from tests.factories import pas_clinic_key, running_listener
from tests.ingest.test_inbox import drop, events_stored
from tests.ingest.test_mllp import frame, msa
from tests.server import serving
from wnb.api import create_app
from wnb.core import limits, policy
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.ingest import read_file
from wnb.ingest.inbox import QUARANTINED_CODE, poll
from wnb.ingest.mllp import Listener
from wnb.service import Service
from wnb.store import listing
from wnb.store.accounts import create_api_key

STORES = ("sqlite", "postgres")
CHILD = "9990000018"
PAS_SYSTEM = factories.PAS_SOURCES[1]  # the FHIR identifier system of the key's source


def event(event_id: str, **changes: Any) -> dict[str, Any]:
    """The shared event (tests/factories.py), at audiology: the service of this module's HL7 messages."""
    return factories.event(event_id, **{"service": "audiology", **changes})


def nested(leaf: Any, depth: int = 25) -> Any:
    """`leaf` inside `depth` lists: deeper than wnb.core.limits.MAX_JSON_DEPTH, well within Python's recursion limit."""
    for _ in range(depth):
        leaf = [leaf]
    return leaf


def line(value: Any) -> bytes:
    return json.dumps(value).encode()


def rejects(service: Service) -> list[dict[str, Any]]:
    with service.db.connect() as connection:
        return listing.rejects(connection)


def raw_bytes(reject: dict[str, Any]) -> bytes:
    return limits.raw_bytes(reject["raw"], reject["raw_encoding"])


def ingest_bytes(service: Service, tmp_path: Path, name: str, content: bytes) -> dict[str, int]:
    path = tmp_path / name
    path.write_bytes(content)
    return dict(service.ingest(read_file(path), origin=f"file:{name}"))


# ---- files: one bad row is its reject, the rows after it are read ----


BAD_LINES = {
    "deep": (b'{"source": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "line", "nested deeper than 20"),
    "nested": (line(event("d", service=nested("x"))), "service", "nested"),
    "huge integer": (line(event("h"))[:-1] + b', "priority": ' + b"9" * 5000 + b"}", "priority", "18 digits"),
    "long integer": (line(event("l"))[:-1] + b', "priority": ' + b"9" * 40 + b"}", "priority", "18 digits"),
    "appointment in year 1": (line(event("y1", appointment_at="0001-01-01T00:00:00+01:00")), "appointment_at", "1900"),
    "appointment in 9999": (line(event("y9", appointment_at="9999-12-31T23:30:00-01:00")), "appointment_at", "2100"),
    "appointment in 2101": (line(event("y2", appointment_at="2101-01-01T10:00:00+00:00")), "appointment_at", "2100"),
    "recorded in year 1": (line(event("r1", recorded_at="0001-01-01T00:00:00+01:00")), "recorded_at", "1900"),
    "born in 1800": (line(event("b1", date_of_birth="1800-01-01")), "date_of_birth", "1900"),
    "escaped NUL": (line(event("n1", service="audio\u0000logy")), "service", "U+0000"),
    "NUL in a name": (line(event("n2"))[:-1] + b', "\\u0000": 1}', "value", "U+0000"),
    "lone surrogate": (line(event("s1"))[:-1] + b', "service": "\\ud800"}', "service", "not valid Unicode"),
}


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_each_kind_of_bad_line_is_a_named_reject_and_the_lines_after_it_are_stored(
    service: Service, tmp_path: Path, kind: str
) -> None:
    bad, field, words = BAD_LINES[kind]
    content = line(event("before")) + b"\n" + bad + b"\n" + line(event("after")) + b"\n"
    assert ingest_bytes(service, tmp_path, "feed.ndjson", content) == {"accepted": 2, "rejected": 1}
    (reject,) = rejects(service)
    assert reject["field"].startswith(field) and words in reject["reason"], reject
    assert raw_bytes(reject) == bad  # kept as sent


def test_a_line_that_is_not_utf8_is_kept_byte_for_byte_as_base64(service: Service, tmp_path: Path) -> None:
    bad = line(event("x")).replace(b"audiology", b"audi\xff\xfeology")
    content = line(event("before")) + b"\n" + bad + b"\n" + line(event("after")) + b"\n"
    assert ingest_bytes(service, tmp_path, "feed.ndjson", content) == {"accepted": 2, "rejected": 1}
    (reject,) = rejects(service)
    assert reject["raw_encoding"] == "base64" and base64.b64decode(reject["raw"]) == bad
    assert "not UTF-8 text (byte" in reject["reason"]


def test_a_raw_nul_byte_is_kept_as_base64_on_both_stores(service: Service, tmp_path: Path) -> None:
    bad = line(event("x")).replace(b"audiology", b"audio\x00logy")
    content = line(event("before")) + b"\n" + bad + b"\n" + line(event("after")) + b"\n"
    assert ingest_bytes(service, tmp_path, "feed.ndjson", content) == {"accepted": 2, "rejected": 1}
    (reject,) = rejects(service)
    assert reject["raw_encoding"] == "base64" and base64.b64decode(reject["raw"]) == bad


def csv_text(*rows: dict[str, Any] | bytes) -> bytes:
    names = list(event("x"))
    lines = [",".join(names).encode()]
    for row in rows:
        lines.append(row if isinstance(row, bytes) else ",".join(f'"{row[name]}"' for name in names).encode())
    return b"\n".join(lines) + b"\n"


def test_a_csv_field_over_the_csv_modules_limit_is_that_rows_reject(service: Service, tmp_path: Path) -> None:
    long_row = csv_text(event("x", service="x" * (limits.CSV_FIELD_LIMIT + 10))).split(b"\n")[1]
    content = csv_text(event("before"), long_row, event("after"))
    assert ingest_bytes(service, tmp_path, "feed.csv", content) == {"accepted": 2, "rejected": 1}
    (reject,) = rejects(service)
    assert reject["line"] == 3 and f"longer than {limits.CSV_FIELD_LIMIT}" in reject["reason"]
    assert raw_bytes(reject) == long_row


def test_a_csv_row_that_is_not_utf8_or_holds_nul_is_rejected_and_kept(service: Service, tmp_path: Path) -> None:
    row = csv_text(event("x")).split(b"\n")[1]
    not_utf8, with_nul = row.replace(b"audiology", b"audi\xffology"), row.replace(b"audiology", b"audio\x00logy")
    content = csv_text(event("before"), not_utf8, with_nul, event("after"))
    assert ingest_bytes(service, tmp_path, "feed.csv", content) == {"accepted": 2, "rejected": 2}
    kept = rejects(service)
    assert raw_bytes(kept[0]) == not_utf8 and b"audio\x00logy" in raw_bytes(kept[1])  # the row as read
    assert "not UTF-8" in kept[0]["reason"] and "U+0000" in kept[1]["reason"]


def appointment(value: str, **changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "meta": {"versionId": "1", "lastUpdated": "2026-03-02T11:00:00+00:00"},
        "identifier": [{"system": PAS_SYSTEM, "value": value}],
        "status": "noshow",
        "serviceType": [{"coding": [{"code": "audiology"}]}],
        "start": "2026-03-02T10:00:00+00:00",
        "participant": [
            {
                "actor": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": CHILD}},
                "status": "accepted",
            }
        ],
    }
    resource.update(changes)
    return resource


def bundle(*entries: Any, kind: str = "batch") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def test_a_bundle_entry_that_is_not_an_object_is_that_entrys_reject(service: Service, tmp_path: Path) -> None:
    document = bundle({"resource": appointment("A1")}, 7, "x", None, {"resource": appointment("A2")})
    assert ingest_bytes(service, tmp_path, "bundle.json", line(document)) == {"accepted": 2, "rejected": 3}
    assert {(reject["line"], reject["field"]) for reject in rejects(service)} == {
        (1, "Bundle.entry"),
        (2, "Bundle.entry"),
        (3, "Bundle.entry"),
    }


def test_bad_resources_of_a_bundle_file_are_rejected_one_by_one(service: Service, tmp_path: Path) -> None:
    text = line(bundle(*({"resource": appointment(f"A{n}")} for n in range(4))))
    text = text.replace(b'"A1"', b'"A\\u0000"').replace(b'"A2"', b"9" * 5000).replace(b'"A3"', b'"A\xff"')
    assert ingest_bytes(service, tmp_path, "bundle.json", text) == {"accepted": 1, "rejected": 3}
    assert all(reject["field"].startswith("Appointment") for reject in rejects(service))


def test_a_collection_bundle_is_refused_by_name(service: Service, tmp_path: Path) -> None:
    document = bundle({"resource": appointment("A1")}, kind="collection")
    assert ingest_bytes(service, tmp_path, "bundle.json", line(document)) == {"rejected": 1}
    (reject,) = rejects(service)
    assert reject["field"] == "Bundle.type" and "collection Bundle" in reject["reason"]


def siu(control_id: str, start: str = "20260302100000", service: str = "audiology") -> bytes:
    return (
        f"MSH|^~\\&|PAS|RXX-PAS|WNB|RXX|20260302120500||SIU^S26^SIU_S12|{control_id}|P|2.5\n"
        f"SCH|PL{control_id}^PAS|FL{control_id}^PAS|||||||||^^^{start}\n"
        f"PID|1||{CHILD}^^^NHS^NH||Patient^Test||20190501\n"
        f"AIS|1||{service}^Audiology\n"
    ).encode()


def test_hl7_messages_out_of_years_with_nul_or_undecodable_bytes_are_rejected(service: Service, tmp_path: Path) -> None:
    far, nul = siu("M2", start="99991231233000-0100"), siu("M3").replace(b"audiology^", b"audio\x00logy^")
    undecodable = siu("M4").replace(b"audiology^", b"\x81\xff^")
    content = siu("M1") + far + nul + undecodable + siu("M5")
    assert ingest_bytes(service, tmp_path, "feed.hl7", content) == {"accepted": 2, "rejected": 3}
    kept = rejects(service)
    assert "2100" in kept[0]["reason"] and "U+0000" in kept[1]["reason"]
    assert "neither UTF-8 nor Windows-1252" in kept[2]["reason"] and raw_bytes(kept[2]) == undecodable


def test_context_records_past_the_limits_are_rejected_one_by_one(service: Service, tmp_path: Path) -> None:
    good = {"nhs_number": CHILD, "date_of_birth": "2019-05-01", "contacts": {"social_worker": "team-a"}}
    lines = [
        line({**good, "date_of_birth": "1800-01-01"}),
        line({**good, "statuses": [{"kind": "child-protection-plan", "start": "0001-01-01"}]}),
        line({**good, "contacts": {"a": "\u0000"}}),
        line({**good, "contacts": {"a": nested(1)}}),
        line(good)[:-1] + b', "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        line(good).replace(b"team-a", b"team-\\ud800"),
        line(good),
    ]
    path = tmp_path / "context.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert service.import_context(read_file(path), origin="context") == {"rejected": 6, "created": 1}
    found = [(reject["field"], reject["reason"]) for reject in rejects(service)]
    assert [field for field, _ in found] == [
        "date_of_birth",
        "statuses.0.start",
        "contacts.a",
        found[3][0],
        "line",
        "contacts.social_worker",
    ]
    assert found[3][0].startswith("contacts.a.0.0")
    assert ["1900" in found[0][1], "U+0000" in found[2][1], "nested" in found[4][1]] == [True] * 3


# ---- HTTP: a named answer per item, never a 500 ----


@pytest.fixture
def api(db_url: str, ruleset: Ruleset) -> Iterator[tuple[httpx.Client, Service]]:
    """A clinic system's client of the real server on loopback, and the service behind it."""
    db = open_database(db_url)
    service = Service(db, ruleset)
    key = pas_clinic_key(db)
    with serving(create_app(service)) as url, httpx.Client(base_url=url, headers={"X-API-Key": key}) as client:
        yield client, service
    db.dispose()


def scrape(client: httpx.Client, service: Service) -> str:
    key = create_api_key(service.db, "admin", f"ops-{uuid.uuid4().hex[:8]}")
    return client.get("/metrics", headers={"X-API-Key": key}).text


def post(client: httpx.Client, path: str, body: bytes, method: str = "POST") -> httpx.Response:
    return client.request(method, path, content=body, headers={"Content-Type": "application/json"})


def test_a_batch_answers_every_item_whatever_is_wrong_with_some(api: tuple[httpx.Client, Service]) -> None:
    client, service = api
    bad = [body for name, (body, _, _) in BAD_LINES.items() if name != "deep"]
    bad.append(line(event("u")).replace(b"audiology", b"audi\xffology"))
    body = b'{"events": [' + b", ".join([line(event("g1")), *bad, line(event("g2"))]) + b"]}"
    answer = post(client, "/v1/attendance-events", body)
    assert answer.status_code == 200, answer.text
    statuses = [result["status"] for result in answer.json()["results"]]
    assert statuses == ["accepted", *["rejected"] * len(bad), "accepted"]
    assert all(result["reason"] for result in answer.json()["results"][1:-1])
    assert len(rejects(service)) == len(bad) and events_stored(service) == 2


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_one_bad_event_answers_a_named_refusal(api: tuple[httpx.Client, Service], kind: str) -> None:
    client, service = api
    answer = post(client, "/v1/attendance-events", BAD_LINES[kind][0])
    assert answer.status_code in (400, 422) and answer.json()["reason"], answer.text
    assert len(rejects(service)) == 1 and raw_bytes(rejects(service)[0]) == BAD_LINES[kind][0]


def test_a_context_record_past_the_limits_answers_422_and_is_kept(api: tuple[httpx.Client, Service]) -> None:
    client, service = api
    record = line({"date_of_birth": "2019-05-01", "contacts": {"a": "\u0000"}})
    answer = post(client, f"/v1/people/{CHILD}/context", record, "PUT")
    assert answer.status_code == 422 and answer.json()["field"] == "contacts.a"
    deep = b'{"contacts": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert post(client, f"/v1/people/{CHILD}/context", deep, "PUT").status_code == 400
    assert len(rejects(service)) == 2


def test_a_fhir_bundle_answers_every_entry(api: tuple[httpx.Client, Service]) -> None:
    client, service = api
    entries = [{"resource": appointment("A1")}, 7, {"resource": appointment("A2", start="0001-01-01T00:00:00Z")}]
    text = line(bundle(*entries, {"resource": appointment("A3")})).replace(b'"A3"', b'"A3\xff"')
    answer = post(client, "/fhir", text)
    assert answer.status_code == 200, answer.text
    assert [entry["response"]["status"][:3] for entry in answer.json()["entry"]] == ["201", "422", "422", "422"]
    assert len(rejects(service)) == 3
    collection = post(client, "/fhir", line(bundle({"resource": appointment("A4")}, kind="collection")))
    assert collection.status_code == 422 and "collection" in collection.text
    single = post(client, "/fhir/Appointment", line(appointment("A5", start="9999-12-31T23:30:00-01:00")))
    assert single.status_code == 422 and "2100" in single.text


# ---- MLLP: every message answered ----


@pytest.fixture
def listening(service: Service) -> Iterator[Listener]:
    """A real listener on a free loopback port, its event loop on a thread of its own."""
    with running_listener(service) as listener:
        yield listener


def test_mllp_answers_messages_past_the_limits_and_keeps_them(listening: Listener, service: Service) -> None:
    messages = [
        siu("M1", start="00010101000000").decode(),
        siu("M2").decode().replace("audiology^", "audio\x00logy^"),
        siu("M3").decode(),
    ]
    with socket.create_connection(("127.0.0.1", listening.port), timeout=20) as connection:
        data = b""
        for text in messages:
            connection.sendall(frame(text))
        connection.sendall(b"\x0b" + siu("M4").replace(b"audiology^", b"\x81\xff^").replace(b"\n", b"\r") + b"\x1c\r")
        while data.count(b"\x1c\r") < 4:
            chunk = connection.recv(65536)
            assert chunk
            data += chunk
    acks = [block.lstrip(b"\x0b").decode() for block in data.split(b"\x1c\r")[:4]]
    assert [msa(ack)[0] for ack in acks] == ["AE", "AE", "AA", "AR"]
    assert len(rejects(service)) == 3 and events_stored(service) == 1


# ---- the inbox never stalls ----


def test_an_unreadable_file_is_quarantined_with_one_admin_task_and_the_files_behind_it_are_read(
    api: tuple[httpx.Client, Service], tmp_path: Path
) -> None:
    client, service = api
    inbox = tmp_path / "inbox"
    drop(inbox, "a-scan.pdf", b"%PDF-1.4\0\0binary")
    drop(inbox, "b-extract.xlsx", b"PK\x03\x04 not a feed")
    drop(inbox, "c-notes.xml", b"<appointments/>\n")
    drop(inbox, "d-pas.ndjson", line(event("e1")) + b"\n" + line(event("e2", service="\u0000")) + b"\n")
    outcomes = {polled.name: polled.outcome for polled in poll(service, inbox)}
    assert outcomes == {
        "a-scan.pdf": "quarantined",
        "b-extract.xlsx": "quarantined",
        "c-notes.xml": "quarantined",
        "d-pas.ndjson": "processed",
    }
    assert events_stored(service) == 1 and len(rejects(service)) == 1
    reports = sorted(path.name for path in (inbox / "quarantine").glob("*.error.txt"))
    report = (inbox / "quarantine" / reports[2]).read_text()
    assert len(reports) == 3 and "unknown type (.xml)" in report and "complete admin task T" in report
    with service.db.connect() as connection:
        tasks = [t for t in listing.tasks(connection, include_closed=True) if t["code"] == QUARANTINED_CODE]
    assert len(tasks) == 3 and {task["owner_role"] for task in tasks} == {"admin"}

    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    warned = {warning["quarantined_file"].split("-", 1)[1] for warning in ready.json()["warnings"]}
    assert warned == {"a-scan.pdf", "b-extract.xlsx", "c-notes.xml"}
    assert "wnb_inbox_quarantined_files 3.0" in scrape(client, service)

    for task in tasks:
        service.act_on_task(task["id"], "complete", by=policy.system("ops"), note="file removed from the inbox")
    assert client.get("/health/ready").json() == {"status": "ok"}
    assert "wnb_inbox_quarantined_files 0.0" in scrape(client, service)


def test_a_quarantined_files_admin_task_is_about_the_file_not_a_child(service: Service, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    drop(inbox, "scan.pdf", b"%PDF-1.4\0\0binary")
    poll(service, inbox)
    with service.db.connect() as connection:
        tasks = [t for t in listing.tasks(connection, include_closed=True) if t["code"] == QUARANTINED_CODE]
    assert len(tasks) == 1 and tasks[0]["service"].startswith("inbox:") and tasks[0]["nhs_number"] == ""
