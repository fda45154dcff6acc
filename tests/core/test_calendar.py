"""Working days, bank holidays and due-time rules in Europe/London (DOMAIN.md §4, §6 Time)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from wnb.core.calendar import (
    LONDON,
    DueRule,
    add_working_days,
    is_working_day,
    london_date,
    london_time_on,
    next_escalation_due,
    working_days_between,
)

SAME_DAY = DueRule.parse("same-working-day")
ONE_WD = DueRule.parse("1-working-day")
TWO_WD = DueRule.parse("2-working-days")
DAY_HOURS = DueRule.parse("24-hours")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def london(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=LONDON)  # type: ignore[misc]


# ---- working days ----

BANK_HOLIDAYS_2026 = [
    date(2026, 1, 1),  # New Year's Day
    date(2026, 4, 3),  # Good Friday
    date(2026, 4, 6),  # Easter Monday
    date(2026, 5, 4),  # Early May
    date(2026, 5, 25),  # Spring
    date(2026, 8, 31),  # Summer
    date(2026, 12, 25),  # Christmas Day
    date(2026, 12, 28),  # Boxing Day substitute (26 Dec is a Saturday)
]


@pytest.mark.parametrize("day", BANK_HOLIDAYS_2026, ids=str)
def test_england_and_wales_bank_holidays_2026_are_not_working_days(day: date) -> None:
    assert day.weekday() < 5
    assert not is_working_day(day)


WEEKEND_DAYS = [date(2026, 3, 7), date(2026, 3, 8), date(2026, 12, 26), date(2026, 12, 27)]


@pytest.mark.parametrize("day", WEEKEND_DAYS, ids=str)
def test_saturdays_and_sundays_are_not_working_days(day: date) -> None:
    assert not is_working_day(day)


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 3, 2),
        date(2026, 3, 6),
        date(2026, 4, 2),
        date(2026, 4, 7),
        date(2026, 12, 24),
        date(2026, 12, 29),
    ],
    ids=str,
)
def test_ordinary_weekdays_are_working_days(day: date) -> None:
    assert is_working_day(day)


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 1, 2),  # Scotland only
        date(2026, 3, 17),  # St Patrick's Day, Northern Ireland only
        date(2026, 7, 13),  # Battle of the Boyne (observed), Northern Ireland only
        date(2026, 8, 3),  # Summer bank holiday in Scotland only
        date(2026, 11, 30),  # St Andrew's Day, Scotland only
    ],
    ids=str,
)
def test_bank_holidays_of_scotland_or_northern_ireland_only_are_working_days(day: date) -> None:
    assert is_working_day(day)


def test_the_first_working_day_after_a_friday_is_monday() -> None:
    assert add_working_days(date(2026, 3, 6), 1) == date(2026, 3, 9)


def test_the_day_itself_never_counts_as_a_working_day_after_it() -> None:
    assert add_working_days(date(2026, 3, 2), 1) == date(2026, 3, 3)


def test_working_days_between_counts_whole_london_working_days() -> None:
    assert working_days_between(utc(2026, 4, 2, 9), utc(2026, 4, 8, 9)) == 2  # Tue 7, Wed 8 April


def test_working_days_between_is_zero_when_the_end_is_not_after_the_start() -> None:
    assert working_days_between(utc(2026, 4, 8, 9), utc(2026, 4, 2, 9)) == 0


# ---- same-working-day ----


def test_same_working_day_recorded_at_1659_on_a_friday_is_due_that_day_at_1700() -> None:
    assert SAME_DAY.due_at(utc(2026, 1, 9, 16, 59)) == utc(2026, 1, 9, 17)


def test_same_working_day_recorded_at_exactly_1700_on_a_friday_is_due_monday() -> None:
    assert SAME_DAY.due_at(utc(2026, 1, 9, 17, 0)) == utc(2026, 1, 12, 17)


def test_same_working_day_recorded_at_1701_on_a_friday_is_due_monday() -> None:
    assert SAME_DAY.due_at(utc(2026, 1, 9, 17, 1)) == utc(2026, 1, 12, 17)


def test_same_working_day_recorded_one_second_before_1700_is_due_that_day() -> None:
    assert SAME_DAY.due_at(utc(2026, 1, 9, 16, 59, 59)) == utc(2026, 1, 9, 17)


def test_same_working_day_recorded_on_a_saturday_morning_is_due_monday() -> None:
    assert SAME_DAY.due_at(utc(2026, 1, 10, 9)) == utc(2026, 1, 12, 17)


def test_same_working_day_recorded_on_a_bank_holiday_is_due_the_next_working_day() -> None:
    # Spring bank holiday Monday 25 May 2026 (BST): due Tuesday 17:00 London = 16:00Z.
    assert SAME_DAY.due_at(utc(2026, 5, 25, 9)) == utc(2026, 5, 26, 16)


def test_same_working_day_recorded_on_christmas_eve_afternoon_skips_to_29_december() -> None:
    assert SAME_DAY.due_at(utc(2026, 12, 24, 17, 30)) == utc(2026, 12, 29, 17)


def test_same_working_day_in_bst_is_due_at_1700_london_which_is_1600_utc() -> None:
    assert SAME_DAY.due_at(utc(2026, 6, 10, 15, 59)) == utc(2026, 6, 10, 16)


def test_same_working_day_in_bst_recorded_at_1700_london_is_due_the_next_working_day() -> None:
    assert SAME_DAY.due_at(utc(2026, 6, 10, 16, 0)) == utc(2026, 6, 11, 16)


def test_same_working_day_in_bst_recorded_at_1630_utc_is_already_after_1700_london() -> None:
    assert SAME_DAY.due_at(utc(2026, 6, 10, 16, 30)) == utc(2026, 6, 11, 16)


def test_same_working_day_on_a_friday_at_1659_london_in_bst_is_due_that_friday() -> None:
    assert SAME_DAY.due_at(london(2026, 6, 12, 16, 59)) == utc(2026, 6, 12, 16)


def test_same_working_day_on_a_friday_at_1701_london_in_bst_is_due_monday() -> None:
    assert SAME_DAY.due_at(london(2026, 6, 12, 17, 1)) == utc(2026, 6, 15, 16)


def test_same_working_day_uses_the_london_date_after_midnight_utc_offset() -> None:
    # 23:30Z on Thursday 11 June is 00:30 London on Friday 12 June: due that Friday at 17:00 London.
    assert SAME_DAY.due_at(utc(2026, 6, 11, 23, 30)) == utc(2026, 6, 12, 16)


def test_same_working_day_late_on_a_friday_utc_is_saturday_in_london_and_due_monday() -> None:
    assert SAME_DAY.due_at(utc(2026, 6, 12, 23, 30)) == utc(2026, 6, 15, 16)


def test_due_times_are_returned_in_utc() -> None:
    assert SAME_DAY.due_at(london(2026, 6, 10, 9)).tzinfo is UTC
    assert ONE_WD.due_at(london(2026, 6, 10, 9)).tzinfo is UTC
    assert DAY_HOURS.due_at(london(2026, 6, 10, 9)).tzinfo is UTC


def test_a_ruleset_may_end_the_working_day_at_another_hour() -> None:
    assert SAME_DAY.due_at(utc(2026, 1, 9, 15), day_end=time(16)) == utc(2026, 1, 9, 16)
    assert SAME_DAY.due_at(utc(2026, 1, 9, 16), day_end=time(16)) == utc(2026, 1, 12, 16)


# ---- N working days ----


def test_one_working_day_from_a_monday_is_tuesday_at_1700() -> None:
    assert ONE_WD.due_at(utc(2026, 3, 2, 11)) == utc(2026, 3, 3, 17)


def test_n_working_days_count_from_the_recorded_date_whatever_the_hour() -> None:
    assert ONE_WD.due_at(utc(2026, 3, 2, 23, 59)) == utc(2026, 3, 3, 17)


def test_one_working_day_over_easter_skips_good_friday_to_easter_monday() -> None:
    # Recorded Thursday 2 April 2026: Fri 3 (Good Friday), Sat, Sun, Mon 6 (Easter Monday) → Tue 7 April.
    assert ONE_WD.due_at(utc(2026, 4, 2, 9)) == utc(2026, 4, 7, 16)


def test_two_working_days_over_easter_is_the_wednesday_after() -> None:
    assert TWO_WD.due_at(utc(2026, 4, 2, 9)) == utc(2026, 4, 8, 16)


def test_one_working_day_over_christmas_skips_to_29_december() -> None:
    # Recorded Thursday 24 December 2026: Fri 25, Sat 26, Sun 27, Mon 28 (substitute) → Tue 29 December.
    assert ONE_WD.due_at(utc(2026, 12, 24, 10)) == utc(2026, 12, 29, 17)


def test_five_working_days_over_christmas_reach_into_january_after_new_year() -> None:
    # 29, 30, 31 December, (1 January 2027 holiday), 4, 5 January.
    assert DueRule.parse("5-working-days").due_at(utc(2026, 12, 24, 10)) == utc(2027, 1, 5, 17)


def test_working_days_due_in_bst_fall_at_1700_london() -> None:
    assert ONE_WD.due_at(utc(2026, 3, 27, 10)) == utc(2026, 3, 30, 16)  # Fri GMT → Mon BST


# ---- hours ----


def test_24_hours_is_24_elapsed_hours_across_the_spring_clock_change() -> None:
    assert DAY_HOURS.due_at(utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 12)


def test_24_hours_is_24_elapsed_hours_across_the_autumn_clock_change() -> None:
    assert DAY_HOURS.due_at(utc(2026, 10, 24, 12)) == utc(2026, 10, 25, 12)


def test_24_hours_from_a_london_time_is_24_elapsed_hours_across_the_spring_clock_change() -> None:
    recorded = london(2026, 3, 28, 12)  # 12:00 GMT = 12:00Z
    due = DAY_HOURS.due_at(recorded)
    assert due == utc(2026, 3, 29, 12)
    assert due.timestamp() - recorded.timestamp() == 24 * 3600


def test_24_hours_ignores_weekends_and_bank_holidays() -> None:
    assert DAY_HOURS.due_at(utc(2026, 12, 24, 18)) == utc(2026, 12, 25, 18)


# ---- parsing ----


@pytest.mark.parametrize(
    ("text", "kind", "amount"),
    [
        ("same-working-day", "same-working-day", 0),
        ("SAME-WORKING-DAY", "same-working-day", 0),
        ("1-working-day", "working-days", 1),
        ("2-working-days", "working-days", 2),
        ("20-working-days", "working-days", 20),
        ("24-hours", "hours", 24),
        ("1-hour", "hours", 1),
        (" 2-working-days ", "working-days", 2),
    ],
)
def test_due_rules_parse_from_their_words(text: str, kind: str, amount: int) -> None:
    assert DueRule.parse(text) == DueRule(kind, amount)


@pytest.mark.parametrize("text", ["same-working-day", "1-working-day", "2-working-days", "24-hours", "1-hour"])
def test_a_due_rule_prints_back_as_it_was_written(text: str) -> None:
    assert str(DueRule.parse(text)) == text


@pytest.mark.parametrize(
    "text",
    ["", "tomorrow", "2-days", "two-working-days", "-1-working-days", "1.5-hours", "same working day", "24h"],
)
def test_an_unknown_due_rule_is_a_value_error_that_lists_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="unknown due rule") as caught:
        DueRule.parse(text)
    assert "same-working-day" in str(caught.value)
    assert "N-working-days" in str(caught.value)


# ---- escalation ----


def test_after_an_escalation_the_new_due_time_is_1700_on_the_next_working_day() -> None:
    assert next_escalation_due(utc(2026, 3, 2, 17)) == utc(2026, 3, 3, 17)


def test_after_an_escalation_on_a_friday_the_new_due_time_is_monday() -> None:
    assert next_escalation_due(utc(2026, 3, 6, 17)) == utc(2026, 3, 9, 17)


def test_after_an_escalation_before_easter_the_new_due_time_skips_the_bank_holidays() -> None:
    assert next_escalation_due(utc(2026, 4, 2, 16)) == utc(2026, 4, 7, 16)


def test_after_an_escalation_the_next_working_day_counts_from_the_london_date_of_the_old_due_time() -> None:
    # 23:30Z on Thursday 11 June is Friday in London: the next working day is Monday 15 June.
    assert next_escalation_due(utc(2026, 6, 11, 23, 30)) == utc(2026, 6, 15, 16)


def test_escalation_delay_is_a_number_of_working_days() -> None:
    assert next_escalation_due(utc(2026, 3, 2, 17), delay_working_days=2) == utc(2026, 3, 4, 17)


def test_escalation_due_uses_the_ruleset_end_of_day() -> None:
    assert next_escalation_due(utc(2026, 3, 2, 17), day_end=time(16, 30)) == utc(2026, 3, 3, 16, 30)


# ---- London dates ----


def test_london_date_just_before_midnight_utc_in_bst_is_the_next_day() -> None:
    assert london_date(utc(2026, 6, 30, 23, 30)) == date(2026, 7, 1)


def test_london_date_at_2259_utc_in_bst_is_still_the_same_day() -> None:
    assert london_date(utc(2026, 6, 30, 22, 59)) == date(2026, 6, 30)


def test_london_date_at_2300_utc_in_bst_is_midnight_of_the_next_day() -> None:
    assert london_date(utc(2026, 6, 30, 23, 0)) == date(2026, 7, 1)


def test_london_date_just_before_midnight_utc_in_gmt_is_the_same_day() -> None:
    assert london_date(utc(2026, 1, 31, 23, 59)) == date(2026, 1, 31)


def test_london_date_of_an_instant_with_another_offset_is_converted() -> None:
    from datetime import timezone

    assert london_date(datetime(2026, 7, 1, 1, 30, tzinfo=timezone(timedelta(hours=3)))) == date(2026, 6, 30)


def test_london_time_on_a_summer_day_is_one_hour_earlier_in_utc() -> None:
    assert london_time_on(date(2026, 6, 10), time(17)) == utc(2026, 6, 10, 16)


def test_london_time_on_a_winter_day_equals_utc() -> None:
    assert london_time_on(date(2026, 1, 10), time(17)) == utc(2026, 1, 10, 17)
