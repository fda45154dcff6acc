"""HL7 v2 SIU messages → canonical events (DOMAIN.md §2.1), and HL7 files through ingestion."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import Ran, run_wnb
from wnb.core.errors import InvalidEvent
from wnb.ingest import detect_format, read_file
from wnb.ingest.hl7 import Refused, to_item
from wnb.service import Service
from wnb.store import listing

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules" / "default"


def siu(
    trigger: str = "S26",
    control_id: str = "MSG1",
    nhs: str = "9990000018^^^NHS^NH",
    born: str = "20190501",
    status: str = "",
    reason: str = "",
    start: str = "^^^20260302100000",
    service: str = "AIS|1||community-paediatrics^Community paediatrics",
    msh_type: str = "",
    sent: str = "20260302120500",
    extra: tuple[str, ...] = (),
    appointment: str = "PL1^PAS|FL1^PAS",
) -> str:
    """A SIU message with one segment per line, as a file holds it."""
    kind = msh_type or f"SIU^{trigger}^SIU_S12"
    sch = ["SCH", *appointment.split("|")] + [""] * 23
    sch[6], sch[11], sch[25] = reason, start, status
    segments = [
        f"MSH|^~\\&|PAS|RXX-PAS|WNB|RXX|{sent}||{kind}|{control_id}|P|2.5",
        "|".join(sch[:26]),
        f"PID|1||H123^^^RXX^MR~{nhs}||Patient^Test||{born}",
        service,
        *extra,
    ]
    return "\n".join(segment for segment in segments if segment) + "\n"


def wnb_command(folder: Path, *args: str) -> Ran:
    """`wnb ARGS` in `folder` on its own SQLite file (in this process: tests.factories.run_wnb)."""
    return run_wnb(
        folder, *args, env={"WNB_DATABASE_URL": f"sqlite:///{folder / 'cli.db'}", "WNB_RULES_DIR": str(RULES)}
    )


def event_of(text: str) -> dict[str, object]:
    item = to_item(1, text)
    assert isinstance(item.data, dict), item.data
    return item.data


def problem_of(text: str) -> InvalidEvent:
    item = to_item(1, text)
    assert isinstance(item.data, InvalidEvent), item.data
    return item.data


@pytest.mark.parametrize(
    ("trigger", "attendance"),
    [
        ("S12", "booked"),
        ("S13", "booked"),
        ("S14", "booked"),
        ("S15", "cancelled-by-provider"),
        ("S17", "entered-in-error"),
        ("S26", "did-not-attend"),
    ],
)
def test_each_trigger_event_maps_to_its_attendance(trigger: str, attendance: str) -> None:
    status = "Booked" if trigger in ("S13", "S14") else ""
    assert event_of(siu(trigger, status=status))["attendance"] == attendance


@pytest.mark.parametrize("trigger", ["S13", "S14"])
def test_a_modification_without_a_filler_status_is_in_error_not_read_as_booked(trigger: str) -> None:
    assert problem_of(siu(trigger)).field == "SCH-25"


def test_a_cancellation_with_a_patient_reason_is_a_patient_cancellation() -> None:
    assert event_of(siu("S15", reason="PAT^Patient request"))["attendance"] == "cancelled-by-patient"


@pytest.mark.parametrize(
    ("status", "attendance"),
    [("Noshow", "did-not-attend"), ("Complete", "attended"), ("Cancelled", "cancelled-by-provider")],
)
def test_filler_status_overrides_the_trigger(status: str, attendance: str) -> None:
    assert event_of(siu("S14", status=status))["attendance"] == attendance


def test_the_event_carries_source_ids_service_times_and_date_of_birth() -> None:
    assert event_of(siu()) == {
        "source": "RXX-PAS",
        "event_id": "MSG1",
        "nhs_number": "9990000018",
        "service": "community-paediatrics",
        "appointment_id": "FL1",
        "appointment_at": "2026-03-02T10:00:00+00:00",
        "attendance": "did-not-attend",
        "date_of_birth": "2019-05-01",
        "recorded_at": "2026-03-02T12:05:00+00:00",
    }


@pytest.mark.parametrize(
    "nhs",
    [
        "9990000018^^^NHS^NH",
        "9990000018^^^nhs^NH",
        "9990000018^^^2.16.840.1.113883.2.1.4.1^NH",
        "9990000018^^^&2.16.840.1.113883.2.1.4.1&ISO^NH",
        "9990000018^^^NHS&2.16.840.1.113883.2.1.4.1&ISO^NH",
    ],
    ids=["NHS", "nhs", "oid-as-namespace", "oid-as-universal-id", "both"],
)
def test_the_nhs_number_is_the_identifier_assigned_by_nhs_or_its_oid(nhs: str) -> None:
    assert event_of(siu(nhs=nhs))["nhs_number"] == "9990000018"


@pytest.mark.parametrize(
    "nhs", ["9990000018^^^XYZ^NH", "9990000018^^^2.16.840.1.113883.2.1.4.10^NH", "9990000018^^^&2.16.840.1&ISO^NH"]
)
def test_another_assigning_authority_is_not_the_nhs(nhs: str) -> None:
    problem = problem_of(siu(nhs=nhs))
    assert problem.field.startswith("PID-3")
    assert "2.16.840.1.113883.2.1.4.1" in problem.reason


def test_a_time_without_offset_is_uk_local_time_in_summer() -> None:
    assert event_of(siu(start="^^^20260702100000"))["appointment_at"] == "2026-07-02T10:00:00+01:00"


def test_tq1_start_is_used_before_sch_11() -> None:
    event = event_of(siu(start="", extra=("TQ1|1||||||20260303093000+0000",)))
    assert event["appointment_at"] == "2026-03-03T09:30:00+00:00"


def test_the_placer_id_is_used_when_there_is_no_filler_id() -> None:
    assert event_of(siu(appointment="PL9^PAS|"))["appointment_id"] == "PL9"


def test_a_location_names_the_service_when_there_is_no_ais() -> None:
    assert event_of(siu(service="AIL|1||audiology^^^RXX"))["service"] == "audiology"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"nhs": "9990000019^^^NHS^NH"}, "PID-3 (nhs_number)"),
        ({"nhs": "H9^^^RXX^MR"}, "PID-3"),
        ({"born": "2019-05-01"}, "PID-7"),
        ({"born": "20190231"}, "PID-7"),
        ({"start": "^^^tomorrow"}, "SCH-11"),
        ({"start": ""}, "SCH-11"),
        ({"service": ""}, "AIS-3"),
        ({"appointment": "|"}, "SCH-2"),
        ({"control_id": ""}, "MSH-10"),
    ],
)
def test_an_invalid_message_is_in_error_naming_the_hl7_field(changes: dict[str, str], field: str) -> None:
    problem = problem_of(siu(**changes))
    assert problem.field == field
    assert not isinstance(problem, Refused)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (siu().replace("|RXX-PAS|", "||"), "MSH-4"),
        ("\n".join(line for line in siu().splitlines() if not line.startswith("PID")), "PID"),
        ("\n".join(line for line in siu().splitlines() if not line.startswith("SCH")), "SCH"),
    ],
)
def test_a_message_missing_a_required_segment_or_field_is_in_error(text: str, field: str) -> None:
    assert problem_of(text).field == field


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (siu(msh_type="ADT^A01"), "not SIU"),
        (siu("S16"), "SIU^S16"),
        ("PID|1||9990000018^^^NHS^NH\n", "MSH"),
        ("MSH|\n", "MSH"),
    ],
)
def test_a_message_wnb_cannot_use_is_refused_with_the_reason(text: str, words: str) -> None:
    problem = problem_of(text)
    assert isinstance(problem, Refused)
    assert words in problem.reason or words in problem.field


def test_a_file_of_messages_is_detected_and_read_one_item_per_message(tmp_path: Path) -> None:
    path = tmp_path / "feed.txt"
    path.write_text(siu("S12", "M1") + siu("S26", "M2", sent="20260302150000"), encoding="utf-8")
    items = list(read_file(path))
    assert detect_format(path) == "hl7"
    assert [item.line for item in items] == [1, 5]
    assert [item.data["event_id"] for item in items if isinstance(item.data, dict)] == ["M1", "M2"]


def test_mllp_framed_files_and_batch_envelopes_are_read(tmp_path: Path) -> None:
    framed = "FHS|^~\\&\rBHS|^~\\&\r" + "".join(
        f"\x0b{siu(control_id=c).replace(chr(10), chr(13))}\x1c\r" for c in "AB"
    )
    path = tmp_path / "feed.hl7"
    path.write_text(framed + "BTS|2\rFTS|1\r", encoding="utf-8")
    assert [item.data["event_id"] for item in read_file(path) if isinstance(item.data, dict)] == ["A", "B"]


def test_segments_before_any_header_are_rejected_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "feed.hl7"
    path.write_text("PID|1||9990000018^^^NHS^NH\n" + siu(), encoding="utf-8")
    items = list(read_file(path))
    assert isinstance(items[0].data, Refused)
    assert isinstance(items[1].data, dict)


def test_an_hl7_file_through_the_service_raises_tasks_and_keeps_rejects(tmp_path: Path, service: Service) -> None:
    path = tmp_path / "feed.hl7"
    path.write_text(
        siu("S12", "M1", sent="20260302090000") + siu("S26", "M2") + siu("S26", "M3", nhs="9990000019^^^NHS"), "utf-8"
    )
    counts = service.ingest(read_file(path), origin=path.name)
    assert counts == {"accepted": 1, "superseded": 1, "rejected": 1}
    with service.db.connect() as connection:
        tasks = listing.tasks(connection, include_closed=False)
        rejects = listing.rejects(connection, include_handled=True)
    assert {task["code"] for task in tasks} >= {"reoffer-appointment", "letter-to-parent"}
    assert rejects[0]["field"] == "PID-3 (nhs_number)"
    assert (rejects[0]["source"], rejects[0]["event_id"]) == ("RXX-PAS", "M3")
    assert "MSH|" in rejects[0]["raw"]


def test_wnb_ingest_reads_the_sample_hl7_feed(tmp_path: Path) -> None:
    result = wnb_command(tmp_path, "ingest", str(ROOT / "fixtures" / "siu-pas-2026-03.hl7"))
    assert result.returncode == 0, result.stderr
    assert "2 accepted, 1 superseded, 0 stale, 0 duplicate, 0 rejected" in result.stdout


def test_the_inbox_takes_an_hl7_file(tmp_path: Path, service: Service) -> None:
    from wnb.ingest.inbox import poll

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "siu-2026-03-02.hl7").write_text(siu("S12", "M1", sent="20260302090000") + siu(), encoding="utf-8")
    (polled,) = poll(service, inbox, settle_seconds=0)
    assert polled.outcome == "processed"
    assert polled.counts == {"accepted": 1, "superseded": 1}


@pytest.mark.parametrize("bad_escape", ["\\9990000018\\^^^NHS^NH", "9\\\\990000018^^^NHS^NH"])
def test_python_hl7_never_logs_the_text_of_a_field(caplog: pytest.LogCaptureFixture, bad_escape: str) -> None:
    with caplog.at_level(logging.DEBUG):
        to_item(1, siu(nhs=bad_escape))
    assert "990000018" not in caplog.text


@settings(max_examples=300, deadline=None)
@given(cuts=st.lists(st.tuples(st.integers(0, 400), st.sampled_from(["", "|", "^", "~", "\\", "&", "\n", "MSH|"]))))
def test_any_damaged_message_is_mapped_or_refused_never_a_crash(cuts: list[tuple[int, str]]) -> None:
    text = siu()
    for position, insert in cuts:
        text = text[:position] + insert + text[position + 1 :]
    item = to_item(1, text)
    assert isinstance(item.data, dict | InvalidEvent)
