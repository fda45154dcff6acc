"""Every kind of bad input against every entry point: how many are mishandled (issue 12, "Ingestion is total").

    .venv/bin/python bench/bad_inputs.py                   # SQLite (a temporary file)
    .venv/bin/python bench/bad_inputs.py --store postgres  # a fresh database on WNB_TEST_POSTGRES's server
    .venv/bin/python bench/bad_inputs.py --verbose         # also each mishandled kind and what happened

Each trial sends a good item, the bad one and another good item through one entry point (a file, a batch, a
folder), or the bad item alone where the entry point takes one item (POST one event, PUT context, MLLP).
A kind is handled when the bad item becomes a reject with a reason (its raw bytes kept, for invalid UTF-8),
nothing crashes or answers 500, and the good items around it are stored. Otherwise it is mishandled, saying
how: crash (an exception escaped), 500, aborted (the good items of the file or batch were lost), nothing
kept, accepted (stored although it must be refused), raw lost (the bytes kept were not those received),
stalled (the inbox did not go on to the next file), no admin task (an unreadable inbox file opened none).

The catalogue (`JSON_KINDS`, `CSV_KINDS`, `HL7_KINDS`, `FHIR_KINDS`, `CONTEXT_KINDS`) is also the explicit
examples of tests/ingest/test_ingest_total.py.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = "9990000018"
DEEP = 100_000  # past any recursion limit
BAD_BYTES = b"\x81\xff\xfe"  # invalid UTF-8, and not Windows-1252 either (0x81 is undefined there)


def event(event_id: str, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "source": "pas",
        "event_id": event_id,
        "nhs_number": CHILD,
        "date_of_birth": "2019-05-01",
        "service": "audiology",
        "appointment_id": f"a-{event_id}",
        "appointment_at": "2026-03-02T10:00:00+00:00",
        "attendance": "did-not-attend",
        "recorded_at": "2026-03-02T11:00:00+00:00",
    }
    base.update(changes)
    return base


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _replace(text: bytes, old: bytes, new: bytes) -> bytes:
    assert old in text, (old, text)
    return text.replace(old, new, 1)


# ---- canonical events as JSON (NDJSON lines, POST /v1/attendance-events, batch items) ----
def json_kinds(event_id: str) -> dict[str, bytes]:
    good = _json(event(event_id))
    return {
        "deep-nesting": _replace(good, b'"audiology"', b"[" * DEEP + b"]" * DEEP),
        "deep-nesting-small": _replace(good, b'"audiology"', b"[" * 60 + b"]" * 60),
        "huge-integer": _replace(good, b'"audiology"', b"9" * 5000),
        "long-integer": _replace(good, b'"audiology"', b"9" * 40),
        "appointment-year-1": _json(event(event_id, appointment_at="0001-01-01T00:00:00+00:00")),
        "appointment-year-9999": _json(event(event_id, appointment_at="9999-12-31T23:30:00-01:00")),
        "appointment-year-2101": _json(event(event_id, appointment_at="2101-01-01T10:00:00+00:00")),
        "recorded-year-1": _json(event(event_id, recorded_at="0001-01-01T00:00:00+01:00")),
        "birth-year-1800": _json(event(event_id, date_of_birth="1800-01-01")),
        "nul-escaped": _json(event(event_id, service="audio\u0000logy")),
        "nul-raw": _replace(good, b'"audiology"', b'"audio\x00logy"'),
        "nul-in-key": _replace(good, b'"service"', b'"\\u0000": 1, "service"'),
        "lone-surrogate": _replace(good, b'"audiology"', b'"\\ud800"'),
        "invalid-utf8": _replace(good, b'"audiology"', b'"' + BAD_BYTES + b'"'),
        "not-an-object": b"[1, 2, 3]",
        "malformed": good[:-5],
        "random-bytes": b"\x8f\x13\xc3(\xa0\xf0\x28\x8c\x28 }{",
    }


# ---- CSV rows (the header is CSV_HEADER) ----
CSV_FIELDS = list(event("x"))
CSV_HEADER = ",".join(CSV_FIELDS).encode()


def csv_row(event_id: str, **changes: str) -> bytes:
    values = event(event_id, **changes)
    return ",".join(f'"{values[name]}"' for name in CSV_FIELDS).encode()


def csv_kinds(event_id: str) -> dict[str, bytes]:
    good = csv_row(event_id)
    return {
        "field-over-csv-limit": _replace(good, b'"audiology"', b'"' + b"x" * 200_000 + b'"'),
        "huge-integer": _replace(good, b'"2026-03-02T10:00:00+00:00"', b"9" * 5000),
        "appointment-year-1": csv_row(event_id, appointment_at="0001-01-01T00:00:00+00:00"),
        "appointment-year-9999": csv_row(event_id, appointment_at="9999-12-31T23:30:00-01:00"),
        "appointment-year-2101": csv_row(event_id, appointment_at="2101-01-01T10:00:00+00:00"),
        "recorded-year-1": csv_row(event_id, recorded_at="0001-01-01T00:00:00+01:00"),
        "birth-year-1800": csv_row(event_id, date_of_birth="1800-01-01"),
        "nul-raw": _replace(good, b'"audiology"', b'"audio\x00logy"'),
        "invalid-utf8": _replace(good, b'"audiology"', b'"' + BAD_BYTES + b'"'),
        "wrong-column-count": good + b",extra",
        "random-bytes": b"\x8f\x13\xc3(\xa0\xf0\x28\x8c\x28 }{",
    }


# ---- HL7 v2 messages (one segment a line) ----
def siu(control_id: str, start: str = "20260302100000", sent: str = "20260302120500", born: str = "20190501") -> bytes:
    return (
        f"MSH|^~\\&|PAS|RXX-PAS|WNB|RXX|{sent}||SIU^S26^SIU_S12|{control_id}|P|2.5\n"
        f"SCH|PL{control_id}^PAS|FL{control_id}^PAS|||||||||^^^{start}\n"
        f"PID|1||{CHILD}^^^NHS^NH||Patient^Test||{born}\n"
        "AIS|1||audiology^Audiology\n"
    ).encode()


def hl7_kinds(control_id: str) -> dict[str, bytes]:
    good = siu(control_id)
    return {
        "appointment-year-1": siu(control_id, start="00010101000000"),
        "appointment-year-9999": siu(control_id, start="99991231233000-0100"),
        "appointment-year-2101": siu(control_id, start="21010101100000"),
        "recorded-year-1": siu(control_id, sent="00010101000000"),
        "birth-year-1800": siu(control_id, born="18000101"),
        "nul-raw": _replace(good, b"audiology^", b"audio\x00logy^"),
        "invalid-utf8": _replace(good, b"audiology^", BAD_BYTES + b"^"),
        "huge-integer": _replace(good, b"audiology^", b"9" * 5000 + b"^"),
        "not-siu": _replace(good, b"SIU^S26^SIU_S12", b"ADT^A01^ADT_A01"),
        "random-bytes": b"MSH|\x8f\x13\xc3(\xa0\xf0|\x28\x8c\x28\n",
    }


# ---- FHIR Appointments ----
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"


def appointment(value: str, **changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "meta": {"versionId": "1", "lastUpdated": "2026-03-02T11:00:00+00:00"},
        "identifier": [{"system": "https://pas.example.nhs.uk/appointment", "value": value}],
        "status": "noshow",
        "serviceType": [{"coding": [{"code": "audiology"}]}],
        "start": "2026-03-02T10:00:00+00:00",
        "contained": [{"resourceType": "Patient", "id": "p", "birthDate": "2019-05-01"}],
        "participant": [{"actor": {"identifier": {"system": NHS_SYSTEM, "value": CHILD}}, "status": "accepted"}],
    }
    resource.update(changes)
    return resource


def fhir_resource_kinds(value: str) -> dict[str, bytes]:
    good = _json(appointment(value))
    return {
        "deep-nesting": _replace(good, b'"audiology"', b"[" * DEEP + b"]" * DEEP),
        "deep-nesting-small": _replace(good, b'"audiology"', b"[" * 60 + b"]" * 60),
        "huge-integer": _replace(good, b'"audiology"', b"9" * 5000),
        "long-integer": _replace(good, b'"audiology"', b"9" * 40),
        "appointment-year-1": _json(appointment(value, start="0001-01-01T00:00:00+00:00")),
        "appointment-year-9999": _json(appointment(value, start="9999-12-31T23:30:00-01:00")),
        "appointment-year-2101": _json(appointment(value, start="2101-01-01T10:00:00+00:00")),
        "recorded-year-1": _replace(good, b"2026-03-02T11:00:00+00:00", b"0001-01-01T00:00:00+01:00"),
        "birth-year-1800": _replace(good, b'"2019-05-01"', b'"1800-01-01"'),
        "nul-escaped": _replace(good, b'"audiology"', b'"audio\\u0000logy"'),
        "nul-in-key": _replace(good, b'"status"', b'"\\u0000": 1, "status"'),
        "lone-surrogate": _replace(good, b'"audiology"', b'"\\ud800"'),
        "invalid-utf8": _replace(good, b'"audiology"', b'"' + BAD_BYTES + b'"'),
        "not-an-object": b"[1, 2, 3]",
        "malformed": good[:-5],
    }


def bundle(entries: list[bytes], kind: str = "batch") -> bytes:
    items = b",".join(b'{"resource": ' + entry + b"}" for entry in entries)
    return b'{"resourceType": "Bundle", "type": "' + kind.encode() + b'", "entry": [' + items + b"]}"


def fhir_bundle_kinds(value: str) -> dict[str, bytes]:
    """Whole Bundles: each resource kind between two good Appointments, and the Bundle-level kinds."""
    kinds = {
        name: bundle([_json(appointment(f"{value}-1")), bad, _json(appointment(f"{value}-2"))])
        for name, bad in fhir_resource_kinds(value).items()
    }
    goods = [_json(appointment(f"{value}-1")), _json(appointment(f"{value}-2"))]
    kinds["entry-not-an-object"] = (
        b'{"resourceType": "Bundle", "type": "batch", "entry": [{"resource": '
        + goods[0]
        + b'}, 7, "x", null, {"resource": '
        + goods[1]
        + b"}]}"
    )
    kinds["collection-bundle"] = bundle(goods, "collection")
    return kinds


# ---- person context records ----
def context(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "nhs_number": CHILD,
        "date_of_birth": "2019-05-01",
        "statuses": [{"kind": "child-protection-plan", "start": "2025-01-01"}],
        "contacts": {"social_worker": "team-a"},
    }
    record.update(changes)
    return record


def context_kinds() -> dict[str, bytes]:
    good = _json(context())
    return {
        "deep-nesting": _replace(good, b'"team-a"', b"[" * DEEP + b"]" * DEEP),
        "deep-nesting-small": _replace(good, b'"team-a"', b"[" * 60 + b"]" * 60),
        "huge-integer": _replace(good, b'"team-a"', b"9" * 5000),
        "long-integer": _replace(good, b'"team-a"', b"9" * 40),
        "birth-year-1800": _json(context(date_of_birth="1800-01-01")),
        "birth-year-9999": _json(context(date_of_birth="9999-01-01")),
        "status-year-1": _json(context(statuses=[{"kind": "child-protection-plan", "start": "0001-01-01"}])),
        "nul-escaped": _replace(good, b'"team-a"', b'"team\\u0000a"'),
        "nul-in-key": _replace(good, b'"social_worker"', b'"social\\u0000worker"'),
        "lone-surrogate": _replace(good, b'"team-a"', b'"\\ud800"'),
        "invalid-utf8": _replace(good, b'"team-a"', b'"' + BAD_BYTES + b'"'),
        "not-an-object": b"[1, 2, 3]",
        "malformed": good[:-5],
    }


# ---- judging ----
class Store:
    """Counts read from the database around a trial."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def counts(self) -> tuple[int, int, int]:
        with self.service.db.connect() as connection:
            events = connection.exec_driver_sql("SELECT count(*) FROM event").scalar_one()
            rejects = connection.exec_driver_sql("SELECT coalesce(sum(received_count), 0) FROM reject").scalar_one()
            contexts = connection.exec_driver_sql("SELECT count(*) FROM person_context").scalar_one()
        return int(events), int(rejects), int(contexts)

    def event_ids(self) -> set[str]:
        with self.service.db.connect() as connection:
            return {row[0] for row in connection.exec_driver_sql("SELECT event_id FROM event")}

    def raws_since(self, reject_count: int) -> list[bytes]:
        """The raw bytes of the rejects stored after the first `reject_count` (by id)."""
        with self.service.db.connect() as connection:
            try:
                rows = connection.exec_driver_sql("SELECT raw, raw_encoding FROM reject ORDER BY id").fetchall()
            except Exception:
                connection.rollback()
                rows = [(row[0], None) for row in connection.exec_driver_sql("SELECT raw FROM reject ORDER BY id")]
        kept = []
        for raw, encoding in rows:
            if encoding == "base64":
                kept.append(base64.b64decode(raw))
            else:
                kept.append(raw.encode("utf-8", "surrogateescape"))
        return kept

    def quarantine_tasks(self) -> int:
        with self.service.db.connect() as connection:
            return int(
                connection.exec_driver_sql(
                    "SELECT count(*) FROM task WHERE nhs_number = '' AND code = 'inbox-file-quarantined'"
                ).scalar_one()
            )


def judge(
    store: Store, before: tuple[int, int, int], goods: list[str], raw_bytes: bytes | None, accepted: bool = False
) -> str:
    """'ok' or how the trial was mishandled, from the database after it (`accepted`: the caller was told so)."""
    events, rejects, contexts = store.counts()
    ids = store.event_ids()
    if any(good not in ids for good in goods):
        return "aborted"
    if rejects == before[1]:
        stored = accepted or events - len(goods) > before[0] or contexts > before[2]
        return "accepted" if stored else "nothing kept"
    if raw_bytes is not None and not any(raw_bytes in raw for raw in store.raws_since(before[1])):
        return "raw lost"
    return "ok"


def attempt(run: Callable[[], Any]) -> str | None:
    try:
        run()
    except BaseException as error:  # noqa: BLE001 - a crash is what is being counted
        return f"crash ({type(error).__name__})"
    return None


# ---- entry points ----
def _file_trial(store: Store, folder: Path, fmt: str, name: str, body: bytes, goods: list[str], bad: bytes) -> str:
    from wnb.ingest import read_file

    path = folder / f"{uuid.uuid4().hex[:8]}.{fmt}"
    path.write_bytes(body)
    before = store.counts()
    crash = attempt(lambda: store.service.ingest(read_file(path, fmt), origin=f"file:{path.name}"))
    return crash or judge(store, before, goods, BAD_BYTES if name == "invalid-utf8" else None)


def ndjson_file(store: Store, folder: Path) -> dict[str, str]:
    results = {}
    for name, _ in json_kinds("x").items():
        tag = uuid.uuid4().hex[:8]
        bad = json_kinds(f"bad-{tag}")[name]
        goods = [f"g1-{tag}", f"g2-{tag}"]
        body = _json(event(goods[0])) + b"\n" + bad + b"\n" + _json(event(goods[1])) + b"\n"
        results[name] = _file_trial(store, folder, "ndjson", name, body, goods, bad)
    return results


def csv_file(store: Store, folder: Path) -> dict[str, str]:
    results = {}
    for name in csv_kinds("x"):
        tag = uuid.uuid4().hex[:8]
        bad = csv_kinds(f"bad-{tag}")[name]
        goods = [f"g1-{tag}", f"g2-{tag}"]
        body = b"\n".join([CSV_HEADER, csv_row(goods[0]), bad, csv_row(goods[1])]) + b"\n"
        results[name] = _file_trial(store, folder, "csv", name, body, goods, bad)
    return results


def hl7_file(store: Store, folder: Path) -> dict[str, str]:
    results = {}
    for name in hl7_kinds("x"):
        tag = uuid.uuid4().hex[:8]
        bad = hl7_kinds(f"B{tag}")[name]
        goods = [f"G1{tag}", f"G2{tag}"]
        body = siu(goods[0]) + bad + siu(goods[1])
        results[name] = _file_trial(store, folder, "hl7", name, body, goods, bad)
    return results


def _fhir_goods(tag: str) -> list[str]:
    return [f"{tag}-1/_history/1", f"{tag}-2/_history/1"]


# A FHIR file or Bundle is one JSON document: these leave nothing of it readable (or refuse it as a whole),
# so the one reject of the whole document, its text kept, is the right handling; the good entries cannot be.
WHOLE_DOCUMENT = frozenset({"deep-nesting", "malformed", "collection-bundle"})


def fhir_file(store: Store, folder: Path) -> dict[str, str]:
    results = {}
    for name in fhir_bundle_kinds("x"):
        tag = uuid.uuid4().hex[:8]
        body = fhir_bundle_kinds(tag)[name]
        goods = [] if name in WHOLE_DOCUMENT else _fhir_goods(tag)
        results[name] = _file_trial(store, folder, "fhir", name, body, goods, body)
    return results


def context_import(store: Store, folder: Path) -> dict[str, str]:
    from wnb.ingest import read_file

    results = {}
    for name, bad in context_kinds().items():
        path = folder / f"{uuid.uuid4().hex[:8]}.ndjson"
        path.write_bytes(bad + b"\n")
        before = store.counts()
        counts: dict[str, int] = {}
        crash = attempt(
            lambda path=path, counts=counts: counts.update(
                store.service.import_context(read_file(path, "ndjson"), origin="ctx")
            )
        )
        stored = bool(counts.get("created") or counts.get("updated"))
        results[name] = crash or judge(store, before, [], BAD_BYTES if name == "invalid-utf8" else None, stored)
    return results


def http_trials(store: Store, client: Any, entry: str) -> dict[str, str]:
    """One of POST one event, POST a batch, PUT context, POST /fhir/Appointment and POST /fhir."""

    def call(method: str, path: str, body: bytes) -> tuple[str | None, int]:
        try:
            answer = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
        except BaseException as error:  # noqa: BLE001
            return f"crash ({type(error).__name__})", 0
        return (("500" if answer.status_code >= 500 else None), answer.status_code)

    def raw_of(name: str) -> bytes | None:
        return BAD_BYTES if name == "invalid-utf8" else None

    results = {}
    if entry == "POST event":
        for name in json_kinds("x"):
            before = store.counts()
            failed, code = call("POST", "/v1/attendance-events", json_kinds(f"bad-{uuid.uuid4().hex[:8]}")[name])
            results[name] = failed or judge(store, before, [], raw_of(name), code < 300)
    elif entry == "POST batch":
        for name in json_kinds("x"):
            tag = uuid.uuid4().hex[:8]
            goods = [f"g1-{tag}", f"g2-{tag}"]
            items = [_json(event(goods[0])), json_kinds(f"b-{tag}")[name], _json(event(goods[1]))]
            before = store.counts()
            failed, code = call("POST", "/v1/attendance-events", b'{"events": [' + b", ".join(items) + b"]}")
            # A body that is not JSON at all cannot be answered per item: a 400 with the body kept is right.
            results[name] = failed or judge(store, before, [] if code == 400 else goods, raw_of(name))
    elif entry == "PUT context":
        for name, bad in context_kinds().items():
            before = store.counts()
            failed, code = call("PUT", f"/v1/people/{CHILD}/context", bad)
            results[name] = failed or judge(store, before, [], raw_of(name), code < 300)
    elif entry == "POST /fhir/Appointment":
        for name in fhir_resource_kinds("x"):
            before = store.counts()
            failed, code = call("POST", "/fhir/Appointment", fhir_resource_kinds(uuid.uuid4().hex[:8])[name])
            results[name] = failed or judge(store, before, [], raw_of(name), code < 300)
    else:
        for name in fhir_bundle_kinds("x"):
            tag = uuid.uuid4().hex[:8]
            before = store.counts()
            failed, code = call("POST", "/fhir", fhir_bundle_kinds(tag)[name])
            goods = [] if code == 400 or name in WHOLE_DOCUMENT else _fhir_goods(tag)
            results[name] = failed or judge(store, before, goods, raw_of(name))
    return results


HTTP_ENTRY_POINTS = ("POST event", "POST batch", "PUT context", "POST /fhir/Appointment", "POST /fhir bundle")


def mllp(store: Store) -> dict[str, str]:
    """Each HL7 kind framed and sent to a real listener on loopback; one answer per message is expected."""
    import socket
    import threading

    from wnb.ingest.mllp import Listener

    listener = Listener(store.service)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(listener.start(), loop).result(10)
    results = {}
    try:
        for name in hl7_kinds("x"):
            tag = uuid.uuid4().hex[:8]
            bad = hl7_kinds(f"B{tag}")[name].replace(b"\n", b"\r")
            before = store.counts()
            try:
                with socket.create_connection(("127.0.0.1", listener.port), timeout=20) as connection:
                    connection.sendall(b"\x0b" + bad + b"\x1c\r")
                    answer = b""
                    while b"\x1c\r" not in answer:
                        chunk = connection.recv(65536)
                        if not chunk:
                            break
                        answer += chunk
                failed = None if b"MSA|" in answer else "no answer"
            except OSError as error:
                failed = f"crash ({type(error).__name__})"
            results[name] = failed or judge(store, before, [], BAD_BYTES if name == "invalid-utf8" else None)
    finally:
        asyncio.run_coroutine_threadsafe(listener.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    return results


def inbox(store: Store, folder: Path) -> dict[str, str]:
    """A folder per kind: the bad file, then a good file behind it; one poll."""
    from wnb.ingest.inbox import poll

    files: dict[str, tuple[str, bytes, list[str]]] = {}
    for name in json_kinds("x"):
        tag = uuid.uuid4().hex[:8]
        goods = [f"g1-{tag}", f"g2-{tag}"]
        body = _json(event(goods[0])) + b"\n" + json_kinds(f"b-{tag}")[name] + b"\n" + _json(event(goods[1])) + b"\n"
        files[f"ndjson {name}"] = ("ndjson", body, goods)
    for name in csv_kinds("x"):
        tag = uuid.uuid4().hex[:8]
        goods = [f"g1-{tag}", f"g2-{tag}"]
        body = b"\n".join([CSV_HEADER, csv_row(goods[0]), csv_kinds(f"b-{tag}")[name], csv_row(goods[1])]) + b"\n"
        files[f"csv {name}"] = ("csv", body, goods)
    for name in fhir_bundle_kinds("x"):
        tag = uuid.uuid4().hex[:8]
        goods = [] if name in WHOLE_DOCUMENT else _fhir_goods(tag)
        files[f"fhir {name}"] = ("json", fhir_bundle_kinds(tag)[name], goods)
    for name in hl7_kinds("x"):
        tag = uuid.uuid4().hex[:8]
        goods = [f"G1{tag}", f"G2{tag}"]
        files[f"hl7 {name}"] = ("hl7", siu(goods[0]) + hl7_kinds(f"B{tag}")[name] + siu(goods[1]), goods)
    unreadable = {
        "binary file": ("pdf", b"%PDF-1.4\0\0binary", []),
        "unknown type": ("xml", b"<?xml version='1.0'?><appointments/>\n", []),
    }
    results = {}
    for label, (suffix, body, goods) in {**files, **unreadable}.items():
        where = folder / uuid.uuid4().hex[:8]
        where.mkdir()
        (where / f"a.{suffix}").write_bytes(body)
        behind = f"next-{uuid.uuid4().hex[:8]}"
        (where / "b.ndjson").write_bytes(_json(event(behind)) + b"\n")
        settled = time.time() - 60
        for path in where.iterdir():
            os.utime(path, (settled, settled))
        before = store.counts()
        tasks_before = _quietly(store.quarantine_tasks)
        crash = attempt(lambda where=where: poll(store.service, where))
        if crash:
            results[label] = crash
            continue
        if behind not in store.event_ids():
            results[label] = "stalled"
            continue
        quarantined = list((where / "quarantine").glob("*-a.*")) if (where / "quarantine").exists() else []
        if label in unreadable:
            if not quarantined:
                results[label] = "not quarantined"
            elif _quietly(store.quarantine_tasks) <= tasks_before:
                results[label] = "no admin task"
            else:
                results[label] = "ok"
            continue
        if quarantined:
            results[label] = "aborted"  # a readable file with one bad row must be ingested, not quarantined
            continue
        results[label] = judge(store, before, [*goods, behind], BAD_BYTES if "invalid-utf8" in label else None)
    return results


def _quietly(count: Callable[[], int]) -> int:
    try:
        return count()
    except Exception:  # noqa: BLE001 - before the change there is no such code; none is counted
        return 0


def run(store_kind: str) -> dict[str, dict[str, str]]:
    """Every entry point's trials, each entry point on a database of its own (a fresh SQLite file or
    PostgreSQL database), so that one entry point's accepted poison does not spoil the next one's figures."""
    import structlog

    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    folder = Path(tempfile.mkdtemp(prefix="wnb-bad-"))
    tables: dict[str, dict[str, str]] = {}
    with fresh(store_kind, folder) as store:
        tables["NDJSON file"] = ndjson_file(store, folder)
    with fresh(store_kind, folder) as store:
        tables["CSV file"] = csv_file(store, folder)
    with fresh(store_kind, folder) as store:
        tables["FHIR file"] = fhir_file(store, folder)
    with fresh(store_kind, folder) as store:
        tables["HL7 file"] = hl7_file(store, folder)
    with fresh(store_kind, folder) as store:
        tables["context import"] = context_import(store, folder)
    from starlette.testclient import TestClient

    from wnb.api import create_app
    from wnb.store.accounts import create_api_key

    for entry in HTTP_ENTRY_POINTS:
        with fresh(store_kind, folder) as store:
            key = create_api_key(
                store.service.db,
                "clinic-system",
                "pas",
                sources=["pas", "https://pas.example.nhs.uk/appointment"],
                context=True,
            )
            app = create_app(store.service)
            with TestClient(app, raise_server_exceptions=False, headers={"X-API-Key": key}) as client:
                tables[entry] = http_trials(store, client, entry)
    with fresh(store_kind, folder) as store:
        tables["MLLP"] = mllp(store)
    with fresh(store_kind, folder) as store:
        tables["inbox"] = inbox(store, folder)
    return tables


@contextlib.contextmanager
def fresh(store_kind: str, folder: Path) -> Iterator[Store]:
    from wnb.database import open_database
    from wnb.rule_files import load_ruleset
    from wnb.service import Service

    name = f"wnb_bad_{uuid.uuid4().hex[:10]}"
    server = os.environ.get("WNB_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")
    if store_kind == "sqlite":
        url = f"sqlite:///{folder / name}.db"
    else:
        import psycopg

        with psycopg.connect(server.replace("+psycopg", "") + "/postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{server}/{name}"
    db = open_database(url)
    try:
        yield Store(Service(db, load_ruleset(ROOT / "rules" / "default")))
    finally:
        db.dispose()
        if store_kind == "postgres":
            with psycopg.connect(server.replace("+psycopg", "") + "/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(tables: dict[str, dict[str, str]], store_kind: str, verbose: bool) -> str:
    lines = [f"{store_kind}: entry point | kinds tried | mishandled"]
    total = bad = 0
    for entry, results in tables.items():
        wrong = {name: outcome for name, outcome in results.items() if outcome != "ok"}
        total, bad = total + len(results), bad + len(wrong)
        lines.append(f"  {entry:24} {len(results):3} {len(wrong):3}")
        if verbose:
            lines.extend(f"      {name}: {outcome}" for name, outcome in wrong.items())
    lines.append(f"  {'all':24} {total:3} {bad:3}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite", help="the store to run on")
    parser.add_argument("--verbose", action="store_true", help="name each mishandled kind and what happened")
    parser.add_argument("--json", type=Path, help="also write every outcome to this JSON file")
    arguments = parser.parse_args()
    tables = run(arguments.store)
    print(report(tables, arguments.store, arguments.verbose))
    if arguments.json:
        arguments.json.write_text(json.dumps(tables, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
