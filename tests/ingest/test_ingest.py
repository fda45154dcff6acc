"""The NDJSON and CSV readers, through the real service: bad rows go to the data-quality queue with the reason,
the line and the raw text, the rest of the file still loads, and files are read as a stream."""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.factories import CHILD, event
from wnb.core.items import RawItem
from wnb.ingest import csv as csv_reader
from wnb.ingest import ndjson as ndjson_reader
from wnb.ingest import read_file
from wnb.service import Service
from wnb.store import listing, repo

INVALID_NHS_NUMBER = "9990000019"

CSV_COLUMNS = [
    "source",
    "event_id",
    "nhs_number",
    "date_of_birth",
    "service",
    "appointment_id",
    "appointment_at",
    "attendance",
    "priority",
    "outcome",
    "first_appointment",
    "recorded_at",
]


def write_ndjson(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
        encoding="utf-8",
    )
    return path


def csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


def csv_row(data: dict[str, Any], columns: list[str] = CSV_COLUMNS) -> str:
    return csv_line([str(data.get(column, "")) for column in columns])


def write_csv(path: Path, rows: list[str], columns: list[str] = CSV_COLUMNS) -> Path:
    path.write_text(csv_line(columns) + "\n" + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def stored_events(service: Service) -> list[Any]:
    with service.db.connect() as connection:
        return list(connection.execute(select(repo.events).order_by(repo.events.c.id)))


def rejects(service: Service) -> list[dict[str, Any]]:
    with service.db.connect() as connection:
        return listing.rejects(connection, include_handled=True)


def event_count(service: Service) -> int:
    with service.db.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(repo.events)).scalar_one())


# ---- NDJSON: each kind of bad line is rejected, the rest of the file loads ----

NDJSON_BAD_LINES = {
    "invalid NHS number": (event("bad", nhs_number=INVALID_NHS_NUMBER), "nhs_number", "Modulus 11"),
    "unknown field": ({**event("bad"), "colour": "blue"}, "colour", "unknown field"),
    "bad date of birth": (event("bad", date_of_birth="2019-13-45"), "date_of_birth", "ISO-8601"),
    "bad appointment time": (event("bad", appointment_at="02/03/2026 10:00"), "appointment_at", "ISO-8601"),
    "unknown attendance code": (event("bad", attendance="9"), "attendance", "unknown code"),
    "appointment before date of birth": (
        event("bad", date_of_birth="2026-03-03"),
        "appointment_at",
        "before the date of birth",
    ),
    "malformed JSON": (
        '{"source": "pas", "event_id": "bad", "nhs_number": "9990000018"',
        "line",
        "not valid JSON",
    ),
    "a JSON value that is not an object": ('["pas", "bad"]', "line", "one JSON object"),
}


@pytest.mark.parametrize("bad_line", list(NDJSON_BAD_LINES.values()), ids=list(NDJSON_BAD_LINES))
def test_a_bad_ndjson_line_is_rejected_with_field_reason_line_and_raw_text_while_the_rest_loads(
    service: Service, tmp_path: Path, bad_line: tuple[dict[str, Any] | str, str, str]
) -> None:
    line, field, reason = bad_line
    path = write_ndjson(tmp_path / "feed.ndjson", [event("e1"), line, event("e3", appointment_id="A-e3")])

    counts = service.ingest(read_file(path), origin=path.name)

    assert counts["rejected"] == 1
    assert counts["accepted"] == 2
    assert [row.event_id for row in stored_events(service)] == ["e1", "e3"]
    (reject,) = rejects(service)
    assert reject["line"] == 2
    assert reject["field"] == field
    assert reason in reject["reason"]
    assert reject["raw"] == (line if isinstance(line, str) else json.dumps(line))
    assert reject["origin"] == "feed.ndjson"


def test_every_bad_line_of_one_ndjson_file_is_rejected_and_every_good_line_is_stored(
    service: Service, tmp_path: Path
) -> None:
    lines: list[dict[str, Any] | str] = []
    for number, (line, _field, _reason) in enumerate(NDJSON_BAD_LINES.values()):
        lines.append(event(f"good-{number}"))
        lines.append(line)
    lines.append(event("good-last"))
    path = write_ndjson(tmp_path / "feed.ndjson", lines)

    counts = service.ingest(read_file(path), origin=path.name)

    assert counts["rejected"] == len(NDJSON_BAD_LINES)
    assert counts["accepted"] == len(NDJSON_BAD_LINES) + 1
    assert [reject["line"] for reject in rejects(service)] == list(range(2, 2 * len(NDJSON_BAD_LINES) + 1, 2))
    assert event_count(service) == len(NDJSON_BAD_LINES) + 1


def test_blank_ndjson_lines_are_skipped_and_line_numbers_count_them(service: Service, tmp_path: Path) -> None:
    path = tmp_path / "feed.ndjson"
    path.write_text(json.dumps(event("e1")) + "\n\n   \n" + "{not json\n", encoding="utf-8")

    counts = service.ingest(read_file(path), origin=path.name)

    assert counts == {"accepted": 1, "rejected": 1}
    assert rejects(service)[0]["line"] == 4


# ---- CSV ----

CSV_BAD_ROWS = {
    "invalid NHS number": (csv_row(event("bad", nhs_number=INVALID_NHS_NUMBER)), "nhs_number", "Modulus 11"),
    "bad date of birth": (csv_row(event("bad", date_of_birth="01/05/2019")), "date_of_birth", "ISO-8601"),
    "bad appointment time": (
        csv_row(event("bad", appointment_at="2026-03-02 morning")),
        "appointment_at",
        "ISO-8601",
    ),
    "unknown attendance code": (csv_row(event("bad", attendance="no-show")), "attendance", "unknown code"),
    "appointment before date of birth": (
        csv_row(event("bad", date_of_birth="2026-03-03")),
        "appointment_at",
        "before the date of birth",
    ),
    "too few columns": (csv_line(["pas", "bad", CHILD]), "row", "has 3 values but the header has 12 columns"),
    "too many columns": (
        csv_row(event("bad")) + ",extra",
        "row",
        "has 13 values but the header has 12 columns",
    ),
}


@pytest.mark.parametrize("bad_row", list(CSV_BAD_ROWS.values()), ids=list(CSV_BAD_ROWS))
def test_a_bad_csv_row_is_rejected_with_field_reason_line_and_raw_text_while_the_rest_loads(
    service: Service, tmp_path: Path, bad_row: tuple[str, str, str]
) -> None:
    row, field, reason = bad_row
    path = write_csv(tmp_path / "feed.csv", [csv_row(event("e1")), row, csv_row(event("e3"))])

    counts = service.ingest(read_file(path), origin=path.name)

    assert counts["rejected"] == 1
    assert counts["accepted"] == 2
    assert [stored.event_id for stored in stored_events(service)] == ["e1", "e3"]
    (reject,) = rejects(service)
    assert reject["line"] == 3  # the header is line 1
    assert reject["field"] == field
    assert reason in reject["reason"]
    assert reject["raw"] == row


def test_a_csv_column_that_is_not_a_canonical_field_rejects_each_row_that_fills_it_naming_the_field(
    service: Service, tmp_path: Path
) -> None:
    columns = [*CSV_COLUMNS, "ward"]
    path = write_csv(
        tmp_path / "feed.csv",
        [csv_row(event("e1"), columns), csv_row({**event("e2"), "ward": "Ward 7"}, columns)],
        columns,
    )

    counts = service.ingest(read_file(path), origin=path.name)

    assert counts == {"accepted": 1, "rejected": 1}
    (reject,) = rejects(service)
    assert (reject["line"], reject["field"], reject["reason"]) == (3, "ward", "unknown field")
    assert "Ward 7" in reject["raw"]


def test_empty_csv_cells_are_absent_values_not_errors(service: Service, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "feed.csv", [csv_row(event("e1", date_of_birth=None))])
    service.import_context([RawItem(1, "", {"nhs_number": CHILD, "date_of_birth": "2019-05-01"})], origin="ctx")

    counts = service.ingest(read_file(path), origin=path.name)

    assert counts == {"accepted": 1}
    assert stored_events(service)[0].date_of_birth is None
    assert stored_events(service)[0].priority is None


def test_a_csv_row_with_a_quoted_comma_keeps_its_raw_text_when_rejected(service: Service, tmp_path: Path) -> None:
    row = csv_row(event("bad", service="paediatrics, community", attendance="unknown"))
    path = write_csv(tmp_path / "feed.csv", [row])

    service.ingest(read_file(path), origin=path.name)

    assert rejects(service)[0]["raw"] == row
    assert '"paediatrics, community"' in rejects(service)[0]["raw"]


# ---- what is accepted ----


@pytest.mark.parametrize("written", ["999 000 0018", " 9990000018 ", "999-000-0018"])
def test_an_nhs_number_with_spaces_is_accepted_and_stored_without_them(
    service: Service, tmp_path: Path, written: str
) -> None:
    path = write_ndjson(tmp_path / "feed.ndjson", [event("e1", nhs_number=written)])

    counts = service.ingest(read_file(path), origin=path.name)

    assert counts == {"accepted": 1}
    assert stored_events(service)[0].nhs_number == CHILD
    with service.db.connect() as connection:
        assert {task["nhs_number"] for task in listing.tasks(connection)} == {CHILD}


def test_an_nhs_number_with_spaces_in_a_csv_file_is_accepted(service: Service, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "feed.csv", [csv_row(event("e1", nhs_number="999 000 0018"))])

    assert service.ingest(read_file(path), origin=path.name) == {"accepted": 1}
    assert stored_events(service)[0].nhs_number == CHILD


CODES_AND_NAMES = [
    ("attendance", "5", "attended"),
    ("attendance", "6", "attended-late"),
    ("attendance", "7", "late-not-seen"),
    ("attendance", "3", "did-not-attend"),
    ("attendance", "2", "cancelled-by-patient"),
    ("attendance", "4", "cancelled-by-provider"),
    ("attendance", "0", "booked"),
    ("priority", "1", "routine"),
    ("priority", "2", "urgent"),
    ("priority", "3", "two-week-wait"),
    ("outcome", "1", "discharged"),
    ("outcome", "2", "another-appointment"),
    ("outcome", "3", "appointment-to-be-made-later"),
]


@pytest.mark.parametrize(("field", "code", "name"), CODES_AND_NAMES, ids=[f"{f}-{c}" for f, c, _ in CODES_AND_NAMES])
def test_a_data_dictionary_code_and_its_canonical_name_are_both_accepted_and_stored_as_the_name(
    service: Service, tmp_path: Path, field: str, code: str, name: str
) -> None:
    path = write_csv(
        tmp_path / "feed.csv",
        [csv_row(event("by-code", **{field: code})), csv_row(event("by-name", **{field: name}))],
    )

    counts = service.ingest(read_file(path), origin=path.name)

    assert counts == {"accepted": 2}
    assert [getattr(row, field) for row in stored_events(service)] == [name, name]


def test_entered_in_error_is_accepted_by_name(service: Service, tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "feed.ndjson", [event("e1", attendance="entered-in-error")])

    assert service.ingest(read_file(path), origin=path.name) == {"accepted": 1}
    assert stored_events(service)[0].attendance == "entered-in-error"


def test_the_format_is_found_by_content_when_the_file_has_no_known_extension(service: Service, tmp_path: Path) -> None:
    ndjson_file = write_ndjson(tmp_path / "feed-one.txt", [event("e1")])
    csv_file = write_csv(tmp_path / "feed-two.txt", [csv_row(event("e2", appointment_id="A-2"))])

    assert service.ingest(read_file(ndjson_file), origin="one") == {"accepted": 1}
    assert service.ingest(read_file(csv_file), origin="two") == {"accepted": 1}
    assert [row.event_id for row in stored_events(service)] == ["e1", "e2"]


def test_reading_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    from wnb.core.errors import WnbError

    with pytest.raises(WnbError, match="no such file"):
        read_file(tmp_path / "absent.ndjson")


# ---- streaming ----


def _first_item_before_the_rest_is_written(read: Any, tmp_path: Path, first: str, rest: str) -> RawItem:
    """Write `first` into a pipe, take the reader's first item, and only then write `rest` and close the pipe.

    A reader that read the whole file before yielding would wait for the end of the pipe, which never comes
    until the first item has been yielded: the consumer would time out.
    """
    pipe = tmp_path / "feed.pipe"
    os.mkfifo(pipe)
    got_first = threading.Event()
    outcome: dict[str, Any] = {}

    def writer() -> None:
        with open(pipe, "w", encoding="utf-8") as handle:
            handle.write(first)
            handle.flush()
            got_first.wait(timeout=10)
            handle.write(rest)

    def consumer() -> None:
        items = read(pipe)
        outcome["first"] = next(items)
        got_first.set()
        outcome["rest"] = list(items)

    threads = [threading.Thread(target=writer, daemon=True), threading.Thread(target=consumer, daemon=True)]
    for thread in threads:
        thread.start()
    seen_in_time = got_first.wait(timeout=5)
    got_first.set()  # let the writer finish whatever happened
    for thread in threads:
        thread.join(timeout=5)
    assert seen_in_time, "the reader did not yield its first item before the end of the file was written"
    assert len(outcome["rest"]) == 2
    first_item: RawItem = outcome["first"]
    return first_item


def test_the_ndjson_reader_yields_the_first_event_before_the_rest_of_the_file_exists(tmp_path: Path) -> None:
    first = json.dumps(event("e1")) + "\n"
    rest = json.dumps(event("e2")) + "\n" + json.dumps(event("e3")) + "\n"

    item = _first_item_before_the_rest_is_written(ndjson_reader.read, tmp_path, first, rest)

    assert (item.line, item.data) == (1, event("e1"))


def test_the_csv_reader_yields_the_first_row_before_the_rest_of_the_file_exists(tmp_path: Path) -> None:
    first = csv_line(CSV_COLUMNS) + "\n" + csv_row(event("e1")) + "\n"
    rest = csv_row(event("e2")) + "\n" + csv_row(event("e3")) + "\n"

    item = _first_item_before_the_rest_is_written(csv_reader.read, tmp_path, first, rest)

    assert item.line == 2
    assert isinstance(item.data, dict)
    assert item.data["event_id"] == "e1"


def test_read_file_returns_a_lazy_iterator_not_a_list(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "feed.ndjson", [event("e1"), event("e2")])

    items = read_file(path)

    assert iter(items) is items
    assert not isinstance(items, list | tuple)
    assert next(items).line == 1


LARGE_ROWS = 20_000


@pytest.mark.parametrize("kind", ["ndjson", "csv"])
def test_reading_a_large_file_keeps_memory_small_whatever_the_file_size(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"large.{kind}"
    with path.open("w", encoding="utf-8") as handle:
        if kind == "csv":
            handle.write(csv_line(CSV_COLUMNS) + "\n")
        for number in range(LARGE_ROWS):
            row = event(f"e{number}", appointment_id=f"A{number}")
            handle.write((json.dumps(row) if kind == "ndjson" else csv_row(row)) + "\n")
    size = path.stat().st_size
    assert size > 2_500_000

    tracemalloc.start()
    try:
        items = read_file(path)
        first = next(items)
        _, peak_after_first = tracemalloc.get_traced_memory()
        count = 1 + sum(1 for _ in items)
        _, peak_after_all = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert isinstance(first.data, dict)
    assert first.data["event_id"] == "e0"
    assert count == LARGE_ROWS
    assert peak_after_first < 1_000_000, f"reading one item took {peak_after_first} bytes"
    assert peak_after_all < size / 10, f"reading {size} bytes peaked at {peak_after_all} bytes"
