"""NHS numbers (Modulus 11) and the NHS Data Dictionary code tables (DOMAIN.md §2.1, §2.2)."""

from __future__ import annotations

import pytest

from wnb.core.domain import AttendanceEvent
from wnb.core.errors import InvalidEvent
from wnb.core.nhs import (
    Attendance,
    Outcome,
    Priority,
    is_valid_nhs_number,
    nhs_number_problem,
    normalise_nhs_number,
    parse_attendance,
    parse_outcome,
    parse_priority,
    spaced_nhs_number,
)

# ---- NHS number: Modulus 11 ----


@pytest.mark.parametrize("number", ["9434765919", "4010232137"])
def test_domain_examples_are_valid_nhs_numbers(number: str) -> None:
    assert is_valid_nhs_number(number)
    assert nhs_number_problem(number) is None


@pytest.mark.parametrize("number", ["9990000018", "9990000026", "9990000034", "9990000042", "9990000069"])
def test_synthetic_999_range_numbers_with_a_correct_check_digit_are_valid(number: str) -> None:
    assert is_valid_nhs_number(number)


@pytest.mark.parametrize("number", ["9990000019", "9990000027", "9434765910", "4010232138"])
def test_a_wrong_check_digit_fails_the_modulus_11_check(number: str) -> None:
    assert nhs_number_problem(number) == "fails the Modulus 11 check"


@pytest.mark.parametrize("last", "0123456789")
def test_a_number_whose_check_computes_to_10_is_invalid_whatever_its_last_digit(last: str) -> None:
    # 999000000: 9×10 + 9×9 + 9×8 = 243; 243 mod 11 = 1; 11 − 1 = 10.
    assert not is_valid_nhs_number("999000000" + last)


def test_a_check_of_11_becomes_0() -> None:
    # 999000005: 243 + 5×2 = 253 = 23×11, so r = 0, check = 11 → 0.
    assert is_valid_nhs_number("9990000050")


def test_a_check_of_11_does_not_accept_11_or_1_as_the_last_digit() -> None:
    assert not is_valid_nhs_number("9990000051")


@pytest.mark.parametrize("spaced", ["943 476 5919", " 943 476 5919 ", "999 000 0018", "9990 000 018"])
def test_spaces_are_allowed_in_an_nhs_number(spaced: str) -> None:
    assert is_valid_nhs_number(spaced)


def test_normalising_an_nhs_number_strips_its_spaces() -> None:
    assert normalise_nhs_number("943 476 5919") == "9434765919"


@pytest.mark.parametrize("number", ["943476591", "94347659190", "123", "99900000180"])
def test_an_nhs_number_of_the_wrong_length_is_invalid(number: str) -> None:
    assert nhs_number_problem(number) == "an NHS number has exactly 10 digits"


@pytest.mark.parametrize("number", ["94347659A9", "9434765.19", "943476591x", "+434765919"])
def test_an_nhs_number_with_non_digits_is_invalid(number: str) -> None:
    assert nhs_number_problem(number) == "an NHS number has exactly 10 digits"


@pytest.mark.parametrize(
    "number",
    [
        "\uff19\uff14\uff13\uff14\uff17\uff16\uff15\uff19\uff11\uff19",  # full-width 9434765919
        "\u0669\u0664\u0663\u0664\u0667\u0666\u0665\u0669\u0661\u0669",  # Arabic-Indic 9434765919
    ],
)
def test_an_nhs_number_of_non_ascii_digits_is_invalid(number: str) -> None:
    # Ten digits 0-9: otherwise the same person is stored under two different "numbers".
    assert not is_valid_nhs_number(number)


@pytest.mark.parametrize("number", [None, "", "   "])
def test_a_missing_nhs_number_is_invalid_and_says_missing(number: str | None) -> None:
    assert nhs_number_problem(number) == "missing NHS number"
    assert not is_valid_nhs_number(number)


def _event(**changes: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "source": "pas",
        "event_id": "e1",
        "nhs_number": "9990000018",
        "service": "community-paediatrics",
        "appointment_id": "a1",
        "appointment_at": "2026-03-02T10:00:00+00:00",
        "attendance": "did-not-attend",
    }
    raw.update(changes)
    return raw


def test_an_event_stores_its_nhs_number_without_spaces() -> None:
    assert AttendanceEvent.parse(_event(nhs_number="999 000 0018")).nhs_number == "9990000018"


def test_an_event_with_an_invalid_nhs_number_is_rejected_naming_the_field() -> None:
    with pytest.raises(InvalidEvent) as caught:
        AttendanceEvent.parse(_event(nhs_number="9990000019"))
    assert caught.value.field == "nhs_number"
    assert "Modulus 11" in caught.value.reason


def test_an_event_with_a_missing_nhs_number_is_rejected_naming_the_field() -> None:
    with pytest.raises(InvalidEvent) as caught:
        AttendanceEvent.parse(_event(nhs_number=None))
    assert caught.value.field == "nhs_number"


# ---- attendance, priority and outcome codes ----

ATTENDANCE_TABLE = [
    ("5", Attendance.ATTENDED),
    ("6", Attendance.ATTENDED_LATE),
    ("7", Attendance.LATE_NOT_SEEN),
    ("3", Attendance.DID_NOT_ATTEND),
    ("2", Attendance.CANCELLED_BY_PATIENT),
    ("4", Attendance.CANCELLED_BY_PROVIDER),
    ("0", Attendance.BOOKED),
]


@pytest.mark.parametrize(("code", "expected"), ATTENDANCE_TABLE)
def test_an_attendance_code_maps_to_its_canonical_name(code: str, expected: Attendance) -> None:
    assert parse_attendance(code) is expected


@pytest.mark.parametrize("expected", list(Attendance))
def test_an_attendance_canonical_name_is_accepted(expected: Attendance) -> None:
    assert parse_attendance(expected.value) is expected


@pytest.mark.parametrize("text", ["DID-NOT-ATTEND", "Did-Not-Attend", " did-not-attend "])
def test_attendance_names_are_case_insensitive(text: str) -> None:
    assert parse_attendance(text) is Attendance.DID_NOT_ATTEND


def test_an_integer_attendance_code_is_accepted() -> None:
    assert parse_attendance(3) is Attendance.DID_NOT_ATTEND


def test_entered_in_error_is_accepted_by_name() -> None:
    assert parse_attendance("Entered-In-Error") is Attendance.ENTERED_IN_ERROR


@pytest.mark.parametrize(
    ("attendance", "missed"),
    [(a, a in (Attendance.DID_NOT_ATTEND, Attendance.LATE_NOT_SEEN)) for a in Attendance],
)
def test_only_did_not_attend_and_late_not_seen_count_as_missed(attendance: Attendance, missed: bool) -> None:
    assert attendance.is_missed is missed


@pytest.mark.parametrize(
    ("attendance", "attended"),
    [(a, a in (Attendance.ATTENDED, Attendance.ATTENDED_LATE)) for a in Attendance],
)
def test_only_attended_and_attended_late_count_as_attended(attendance: Attendance, attended: bool) -> None:
    assert attendance.is_attended is attended


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", Priority.ROUTINE),
        ("2", Priority.URGENT),
        ("3", Priority.TWO_WEEK_WAIT),
        ("routine", Priority.ROUTINE),
        ("URGENT", Priority.URGENT),
        ("Two-Week-Wait", Priority.TWO_WEEK_WAIT),
    ],
)
def test_priority_codes_and_names_are_accepted_case_insensitively(raw: str, expected: Priority) -> None:
    assert parse_priority(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", Outcome.DISCHARGED),
        ("2", Outcome.ANOTHER_APPOINTMENT),
        ("3", Outcome.APPOINTMENT_TO_BE_MADE_LATER),
        ("discharged", Outcome.DISCHARGED),
        ("Another-Appointment", Outcome.ANOTHER_APPOINTMENT),
        ("APPOINTMENT-TO-BE-MADE-LATER", Outcome.APPOINTMENT_TO_BE_MADE_LATER),
    ],
)
def test_outcome_codes_and_names_are_accepted_case_insensitively(raw: str, expected: Outcome) -> None:
    assert parse_outcome(raw) is expected


@pytest.mark.parametrize(
    ("parse", "field", "raw"),
    [
        (parse_attendance, "attendance", "8"),
        (parse_attendance, "attendance", "noshow"),
        (parse_priority, "priority", "4"),
        (parse_priority, "priority", "soon"),
        (parse_outcome, "outcome", "0"),
        (parse_outcome, "outcome", "transferred"),
    ],
)
def test_an_unknown_code_error_names_the_field(parse: object, field: str, raw: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse(raw)  # type: ignore[operator]
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert repr(raw) in caught.value.reason


def test_an_unknown_attendance_code_error_lists_the_known_codes() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_attendance("9")
    assert "3 (did-not-attend)" in caught.value.reason
    assert "entered-in-error" in caught.value.reason


def test_an_event_with_an_unknown_attendance_code_is_rejected_naming_the_field() -> None:
    with pytest.raises(InvalidEvent) as caught:
        AttendanceEvent.parse(_event(attendance="9"))
    assert caught.value.field == "attendance"


def test_an_event_with_an_unknown_priority_code_is_rejected_naming_the_field() -> None:
    with pytest.raises(InvalidEvent) as caught:
        AttendanceEvent.parse(_event(priority="x"))
    assert caught.value.field == "priority"


def test_an_event_with_an_unknown_outcome_code_is_rejected_naming_the_field() -> None:
    with pytest.raises(InvalidEvent) as caught:
        AttendanceEvent.parse(_event(outcome="x"))
    assert caught.value.field == "outcome"


def test_an_event_accepts_codes_for_attendance_priority_and_outcome() -> None:
    event = AttendanceEvent.parse(_event(attendance="7", priority="2", outcome="1"))
    assert (event.attendance, event.priority, event.outcome) == (
        Attendance.LATE_NOT_SEEN,
        Priority.URGENT,
        Outcome.DISCHARGED,
    )


def test_an_nhs_number_is_shown_in_three_three_four_groups() -> None:
    assert spaced_nhs_number("9990000018") == "999 000 0018"
    assert len(spaced_nhs_number("9434765919")) == 12


def test_an_nhs_number_given_with_spaces_is_regrouped() -> None:
    assert spaced_nhs_number("99900 00018") == "999 000 0018"


@pytest.mark.parametrize("raw", ["", "12345", "99900000181", "NHS0000018"])
def test_anything_but_ten_digits_is_shown_as_given(raw: str) -> None:
    assert spaced_nhs_number(raw) == raw
