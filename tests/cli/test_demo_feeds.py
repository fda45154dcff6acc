"""The demo's sample feeds moved by whole weeks (wnb/cli/demo_feeds.py): every date of every file, on London's
clocks, and nothing else; fixtures/ itself never changes."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path

from tests.conftest import ROOT
from wnb.cli.demo import TODAY_FEED
from wnb.cli.demo_feeds import HL7_FORMS, TEXT_FORMS, copy_moved, days_in, forms_of, move_dates, weeks_to
from wnb.ingest import read_file

FIXTURES = ROOT / "fixtures"
LAST_SAMPLE_DAY = date(2026, 3, 16)  # a Monday: the newest outcomes of the sample feeds


def _digest(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def _without_dates(path: Path) -> str:
    text = path.read_bytes().decode("utf-8")
    for pattern, _ in forms_of(path):
        text = pattern.sub("<date>", text)
    return text


def test_every_date_of_every_sample_file_moves_by_the_same_whole_weeks_and_nothing_else_changes(
    tmp_path: Path,
) -> None:
    weeks = copy_moved(FIXTURES, tmp_path, date(2026, 12, 3))

    assert weeks == 37
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(path.name for path in FIXTURES.iterdir())
    for original in FIXTURES.iterdir():
        if original.name == TODAY_FEED:
            continue  # no dates: run_demo times the demo day's own outcomes from its clock
        moved = tmp_path / original.name
        before = list(days_in(original.read_text(encoding="utf-8"), forms_of(original)))
        after = list(days_in(moved.read_text(encoding="utf-8"), forms_of(moved)))
        assert before, original.name  # each sample file has dates to move: context, NDJSON, CSV and HL7
        assert [day - timedelta(weeks=37) for day in after] == before, original.name
        assert _without_dates(moved) == _without_dates(original), original.name


def test_the_moved_sample_files_read_as_the_originals_do(tmp_path: Path) -> None:
    copy_moved(FIXTURES, tmp_path, date(2026, 12, 3))

    for original in FIXTURES.iterdir():
        before = [(item.line, type(item.data).__name__) for item in read_file(original)]
        after = [(item.line, type(item.data).__name__) for item in read_file(tmp_path / original.name)]
        assert after == before, original.name


def test_the_fixtures_on_disk_are_left_as_they_were(tmp_path: Path) -> None:
    before = _digest(FIXTURES)
    copy_moved(FIXTURES, tmp_path, date(2026, 12, 3))
    assert _digest(FIXTURES) == before


def test_a_time_of_day_stays_on_london_clocks_across_a_clock_change() -> None:
    winter_friday = '{"recorded_at": "2026-03-06T16:59:00+00:00"}'
    assert move_dates(winter_friday, TEXT_FORMS, 18) == '{"recorded_at": "2026-07-10T15:59:00+00:00"}'  # 16:59 BST
    assert move_dates("MSH|^~\\&|PAS|RXX|WNB|RXX|20260306165900||SIU^S26", HL7_FORMS, 18) == (
        "MSH|^~\\&|PAS|RXX|WNB|RXX|20260710165900||SIU^S26"  # HL7 times without an offset are UK local time
    )


def test_fhir_and_csv_values_move_in_their_own_form() -> None:
    fhir = '{"resourceType": "Appointment", "start": "2026-03-02T10:00:00Z", "meta": {"lastUpdated": "2026-03-02"}}'
    assert move_dates(fhir, TEXT_FORMS, 1) == (
        '{"resourceType": "Appointment", "start": "2026-03-09T10:00:00+00:00", "meta": {"lastUpdated": "2026-03-09"}}'
    )
    typed_by_a_person = "c-6,S6,16/03/2026 09:00,did-not-attend"
    assert move_dates(typed_by_a_person, TEXT_FORMS, 2) == "c-6,S6,30/03/2026 09:00,did-not-attend"


def test_digits_that_name_no_date_are_left_alone() -> None:
    assert move_dates('{"event_id": "pas-2026-03-02", "at": "2026-13-45"}', TEXT_FORMS, 1) == (
        '{"event_id": "pas-2026-03-02", "at": "2026-13-45"}'
    )
    ids = "PID|1||2012050112^^^NHS^NH~H1234567^^^RXX^MR||Patient^Test||"  # an NHS number and a hospital number
    assert move_dates(f"{ids}20190501", HL7_FORMS, 1) == f"{ids}20190508"


def test_the_feeds_move_from_their_week_to_the_week_of_today() -> None:
    assert weeks_to(date(2026, 3, 18), [LAST_SAMPLE_DAY]) == 0
    assert weeks_to(date(2026, 11, 30), [LAST_SAMPLE_DAY, date(2026, 1, 9)]) == 37  # a Monday
    assert weeks_to(date(2026, 12, 6), [LAST_SAMPLE_DAY]) == 37  # the Sunday of the same week
    assert weeks_to(date(2026, 11, 29), [LAST_SAMPLE_DAY]) == 36
    assert weeks_to(date(2026, 3, 2), [LAST_SAMPLE_DAY]) == -2  # earlier: a day before the sample
