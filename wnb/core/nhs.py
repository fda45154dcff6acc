"""NHS numbers (Modulus 11) and the NHS Data Dictionary code tables wnb accepts (DOMAIN.md §2)."""

from __future__ import annotations

import functools
import re
from enum import StrEnum
from typing import TypeVar

from wnb.core.errors import InvalidEvent

_WEIGHTS = range(10, 1, -1)
E = TypeVar("E", bound=StrEnum)


def normalise_nhs_number(raw: str) -> str:
    """Strip the spaces (and dashes) a feed may carry; the result is not yet checked."""
    return re.sub(r"[\s-]", "", raw)


def nhs_number_problem(raw: str | None) -> str | None:
    """Why `raw` is not a valid NHS number, or None when it is."""
    # A feed names the same children again and again: remember the answer for text, the usual case.
    return _text_problem(raw) if isinstance(raw, str) else _problem(raw)


@functools.lru_cache(maxsize=65_536)
def _text_problem(raw: str) -> str | None:
    return _problem(raw)


def _problem(raw: str | None) -> str | None:
    if raw is None or not str(raw).strip():
        return "missing NHS number"
    number = normalise_nhs_number(str(raw))
    if not re.fullmatch(r"[0-9]{10}", number):
        return "an NHS number has exactly 10 digits"
    total = sum(int(digit) * weight for digit, weight in zip(number[:9], _WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10 or check != int(number[9]):
        return "fails the Modulus 11 check"
    return None


def spaced_nhs_number(number: str) -> str:
    """An NHS number as people read and say it, 3-3-4: '9990000018' → '999 000 0018'. Anything that is not ten
    digits (spaces or dashes aside) is shown as given, never half-formatted."""
    digits = normalise_nhs_number(number)
    if not re.fullmatch(r"[0-9]{10}", digits):
        return number
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def is_valid_nhs_number(raw: str | None) -> bool:
    return nhs_number_problem(raw) is None


class Attendance(StrEnum):
    """ATTENDED OR DID NOT ATTEND, by canonical name (docs/readings.md, "Attendance")."""

    ATTENDED = "attended"
    ATTENDED_LATE = "attended-late"
    LATE_NOT_SEEN = "late-not-seen"
    DID_NOT_ATTEND = "did-not-attend"
    CANCELLED_BY_PATIENT = "cancelled-by-patient"
    CANCELLED_BY_PROVIDER = "cancelled-by-provider"
    BOOKED = "booked"
    ENTERED_IN_ERROR = "entered-in-error"

    @property
    def is_missed(self) -> bool:
        return self in (Attendance.DID_NOT_ATTEND, Attendance.LATE_NOT_SEEN)

    @property
    def is_attended(self) -> bool:
        return self in (Attendance.ATTENDED, Attendance.ATTENDED_LATE)


class Priority(StrEnum):
    """PRIORITY TYPE of the referral, by canonical name (codes 1, 2, 3)."""

    ROUTINE = "routine"
    URGENT = "urgent"
    TWO_WEEK_WAIT = "two-week-wait"


class Outcome(StrEnum):
    """OUTCOME OF ATTENDANCE, by canonical name (codes 1, 2, 3)."""

    DISCHARGED = "discharged"
    ANOTHER_APPOINTMENT = "another-appointment"
    APPOINTMENT_TO_BE_MADE_LATER = "appointment-to-be-made-later"


_ATTENDANCE_CODES = {
    "5": Attendance.ATTENDED,
    "6": Attendance.ATTENDED_LATE,
    "7": Attendance.LATE_NOT_SEEN,
    "3": Attendance.DID_NOT_ATTEND,
    "2": Attendance.CANCELLED_BY_PATIENT,
    "4": Attendance.CANCELLED_BY_PROVIDER,
    "0": Attendance.BOOKED,
}
_PRIORITY_CODES = {"1": Priority.ROUTINE, "2": Priority.URGENT, "3": Priority.TWO_WEEK_WAIT}
_OUTCOME_CODES = {
    "1": Outcome.DISCHARGED,
    "2": Outcome.ANOTHER_APPOINTMENT,
    "3": Outcome.APPOINTMENT_TO_BE_MADE_LATER,
}


def _parse_code(field: str, raw: object, codes: dict[str, E], enum: type[E]) -> E:
    text = str(raw).strip().lower()
    if text in codes:
        return codes[text]
    try:
        return enum(text)
    except ValueError:
        known = ", ".join(f"{code} ({name.value})" for code, name in codes.items())
        extra = [member.value for member in enum if member not in codes.values()]
        if extra:
            known += ", " + ", ".join(extra)
        raise InvalidEvent(field, f"unknown code {raw!r}; expected one of {known}") from None


def parse_attendance(raw: object) -> Attendance:
    """An attendance code ('3') or canonical name ('did-not-attend')."""
    return _parse_code("attendance", raw, _ATTENDANCE_CODES, Attendance)


def parse_priority(raw: object) -> Priority:
    return _parse_code("priority", raw, _PRIORITY_CODES, Priority)


def parse_outcome(raw: object) -> Outcome:
    return _parse_code("outcome", raw, _OUTCOME_CODES, Outcome)
