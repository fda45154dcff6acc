"""Which of two events of one appointment stands (DOMAIN.md §6, "Input"). Pure.

A later-received event for the same (source, appointment id) replaces the stored one unless it is stale:
- a booking never replaces an outcome, whatever its recorded time (a no-show is never lost behind a
  booking sent after it), and an outcome always replaces a stored booking, whatever the recorded times;
- otherwise (two outcomes, two bookings, or an `entered-in-error` on either side) the new event is stale
  only when its recorded time is strictly earlier. A tie goes to the event received later, which is the
  events table's order, never a replica's clock: so when neither event carried a `recorded_at` (both times
  are the receiving replicas' clocks) the later-received one stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wnb.core.nhs import Attendance

# An outcome of an appointment: it happened (or not), or it was cancelled. Not a booking, not a withdrawal.
OUTCOMES = frozenset(
    {
        Attendance.ATTENDED,
        Attendance.ATTENDED_LATE,
        Attendance.LATE_NOT_SEEN,
        Attendance.DID_NOT_ATTEND,
        Attendance.CANCELLED_BY_PATIENT,
        Attendance.CANCELLED_BY_PROVIDER,
    }
)

OLDER = "older"  # recorded strictly earlier than the stored event
BOOKING_AFTER_OUTCOME = "booking-after-outcome"  # a booking received after the appointment's outcome


@dataclass(frozen=True, slots=True)
class Stored:
    """What ingestion knows of an appointment's current event."""

    attendance: Attendance
    recorded_at: datetime
    recorded_at_given: bool  # false: recorded_at is the time a replica received it


def is_outcome(attendance: Attendance) -> bool:
    return attendance in OUTCOMES


def stale_because(attendance: Attendance, recorded_at: datetime, recorded_at_given: bool, stored: Stored) -> str | None:
    """Why a new event is stale against the stored one (OLDER or BOOKING_AFTER_OUTCOME), or None when it stands."""
    if stored.attendance is Attendance.BOOKED and is_outcome(attendance):
        return None
    if attendance is Attendance.BOOKED and is_outcome(stored.attendance):
        return BOOKING_AFTER_OUTCOME
    if not recorded_at_given and not stored.recorded_at_given:
        return None  # two receiving clocks: the events table's order decides
    return OLDER if recorded_at < stored.recorded_at else None


def stale_reason(kind: str, attendance: Attendance, stored_attendance: Attendance) -> str:
    """Why an event was stored as stale, in words for the data-quality queue and the sender's answer.

    The words name attendances, never row ids, so the same feed gives the same words on any store or replica.
    """
    if kind == BOOKING_AFTER_OUTCOME:
        why = f"a booking never replaces the appointment's stored outcome ({stored_attendance.value})"
    else:
        why = f"{attendance.value} recorded before the stored {stored_attendance.value}"
    return f"stored as stale, not evaluated: {why}"
