"""Working days, England and Wales bank holidays and due-time rules, in Europe/London (DOMAIN.md §4).

Pure: every function takes the instants it needs; nothing reads the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


@lru_cache(maxsize=64)
def _bank_holidays(year: int) -> frozenset[date]:
    import holidays  # a tenth of a second to import: only when a working day is first counted, not at start

    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year).keys())


def london_date(at: datetime) -> date:
    """The Europe/London calendar date of an instant."""
    return at.astimezone(LONDON).date()


def is_working_day(day: date) -> bool:
    """Monday to Friday, except England and Wales bank holidays (substitute days included)."""
    return day.weekday() < 5 and day not in _bank_holidays(day.year)


def add_working_days(day: date, n: int) -> date:
    """The n-th working day after `day` (n ≥ 1); `day` itself never counts."""
    while n > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            n -= 1
    return day


def london_time_on(day: date, clock: time) -> datetime:
    """The UTC instant at which London clocks show `clock` on `day`."""
    return datetime.combine(day, clock, tzinfo=LONDON).astimezone(UTC)


@dataclass(frozen=True)
class DueRule:
    """How long someone has to act: `same-working-day`, `N-working-days` or `N-hours`."""

    kind: str  # "same-working-day" | "working-days" | "hours"
    amount: int = 0

    @classmethod
    def parse(cls, text: str) -> DueRule:
        text = text.strip().lower()
        if text == "same-working-day":
            return cls("same-working-day")
        if match := re.fullmatch(r"(\d+)-working-days?", text):
            return cls("working-days", int(match[1]))
        if match := re.fullmatch(r"(\d+)-hours?", text):
            return cls("hours", int(match[1]))
        raise ValueError(
            f"unknown due rule {text!r}; use same-working-day, N-working-days (e.g. 1-working-day) or N-hours"
        )

    def __str__(self) -> str:
        if self.kind == "same-working-day":
            return self.kind
        unit = "working-day" if self.kind == "working-days" else "hour"
        return f"{self.amount}-{unit}{'' if self.amount == 1 else 's'}"

    def due_at(self, recorded_at: datetime, day_end: time = time(17)) -> datetime:
        """The due instant (UTC) for an outcome recorded at `recorded_at`."""
        if self.kind == "hours":
            # In UTC: aware arithmetic in a London zone would add wall-clock hours across a clock change.
            return recorded_at.astimezone(UTC) + timedelta(hours=self.amount)
        recorded_day = london_date(recorded_at)
        if self.kind == "same-working-day":
            end_of_day = london_time_on(recorded_day, day_end)
            if is_working_day(recorded_day) and recorded_at < end_of_day:
                return end_of_day
            return london_time_on(add_working_days(recorded_day, 1), day_end)
        return london_time_on(add_working_days(recorded_day, self.amount), day_end)


def next_escalation_due(old_due: datetime, delay_working_days: int = 1, day_end: time = time(17)) -> datetime:
    """After an escalation: `day_end` on the n-th working day after the London date of the old due time."""
    return london_time_on(add_working_days(london_date(old_due), delay_working_days), day_end)


def working_days_between(start: datetime, end: datetime) -> int:
    """Whole working days from the London date of `start` to that of `end` (0 when not after)."""
    day, last, count = london_date(start), london_date(end), 0
    while day < last:
        day += timedelta(days=1)
        count += is_working_day(day)
    return count
