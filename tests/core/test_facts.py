"""The fact document of one evaluation, derived from stored history (DOMAIN.md §3, §6)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any

import pytest

from wnb.core.domain import Appointment, PersonContext, SafeguardingStatus, StatusKind
from wnb.core.facts import age_months, age_years, event_facts, event_triggers, follow_up_facts, person_facts
from wnb.core.nhs import Attendance, Outcome, Priority
from wnb.core.ruleset import Ruleset

NHS = "9990000018"
SERVICE = "community-paediatrics"
OTHER = "paediatric-diabetes"
T = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # the evaluated appointment's time (a Monday)
CHILD = date(2019, 5, 1)
_ids = count(1)


def appt(
    at: datetime = T,
    attendance: Attendance = Attendance.DID_NOT_ATTEND,
    service: str = SERVICE,
    *,
    outcome: Outcome | None = None,
    priority: Priority | None = None,
    recorded_at: datetime | None = None,
    appointment_id: str | None = None,
) -> Appointment:
    return Appointment(
        source="pas",
        appointment_id=appointment_id or f"a{next(_ids)}",
        service=service,
        appointment_at=at,
        attendance=attendance,
        priority=priority,
        outcome=outcome,
        recorded_at=recorded_at or at + timedelta(hours=1),
    )


def context(*statuses: SafeguardingStatus, care: bool = False, complex_needs: bool = False) -> PersonContext:
    return PersonContext(
        nhs_number=NHS,
        date_of_birth=CHILD,
        statuses=statuses,
        care_and_support_needs=care,
        complex_health_needs=complex_needs,
    )


def status(kind: StatusKind, start: date, end: date | None = None) -> SafeguardingStatus:
    return SafeguardingStatus(kind=kind, start=start, end=end)


def facts_for(
    ruleset: Ruleset,
    appointment: Appointment | None = None,
    history: list[Appointment] | tuple[Appointment, ...] = (),
    born: date = CHILD,
    person: PersonContext | None = None,
    completed_reviews: list[tuple[str, datetime]] | tuple[()] = (),
) -> dict[str, Any]:
    return event_facts(ruleset, appointment or appt(), history, born, person, completed_reviews)


# ---- ages ----


def test_age_in_years_goes_up_on_the_birthday() -> None:
    assert age_years(date(2010, 5, 1), date(2026, 4, 30)) == 15
    assert age_years(date(2010, 5, 1), date(2026, 5, 1)) == 16


def test_age_in_months_goes_up_on_the_day_of_the_month_of_birth() -> None:
    assert age_months(date(2025, 3, 15), date(2026, 3, 14)) == 11
    assert age_months(date(2025, 3, 15), date(2026, 3, 15)) == 12


def test_age_in_months_is_zero_on_the_day_of_birth() -> None:
    assert age_months(date(2026, 3, 2), date(2026, 3, 2)) == 0


def test_someone_born_on_29_february_is_still_17_on_28_february_2026() -> None:
    assert age_years(date(2008, 2, 29), date(2026, 2, 28)) == 17


def test_someone_born_on_29_february_reaches_18_on_1_march_2026() -> None:
    assert age_years(date(2008, 2, 29), date(2026, 3, 1)) == 18


def test_someone_born_on_29_february_is_still_a_child_on_28_february_and_an_adult_on_1_march(
    ruleset: Ruleset,
) -> None:
    born = date(2008, 2, 29)
    assert person_facts(ruleset, born, date(2026, 2, 28), None)["is_child"] is True
    assert person_facts(ruleset, born, date(2026, 3, 1), None)["is_child"] is False


def test_someone_born_on_29_february_reaches_a_birthday_on_29_february_in_a_leap_year() -> None:
    assert age_years(date(2008, 2, 29), date(2028, 2, 28)) == 19
    assert age_years(date(2008, 2, 29), date(2028, 2, 29)) == 20


def test_age_is_taken_on_the_london_date_of_the_appointment(ruleset: Ruleset) -> None:
    # 23:30Z on 30 April 2026 is 00:30 on 1 May in London: the 16th birthday.
    facts = facts_for(ruleset, appt(datetime(2026, 4, 30, 23, 30, tzinfo=UTC)), born=date(2010, 5, 1))
    assert facts["age_years"] == 16


# ---- labels ----


def test_a_child_under_16_is_labelled_was_not_brought(ruleset: Ruleset) -> None:
    facts = person_facts(ruleset, date(2010, 5, 1), date(2026, 4, 30), None)
    assert (facts["label"], facts["is_child"]) == ("was-not-brought", True)


def test_a_young_person_of_16_is_labelled_did_not_attend_and_is_still_a_child(ruleset: Ruleset) -> None:
    facts = person_facts(ruleset, date(2010, 5, 1), date(2026, 5, 1), None)
    assert (facts["label"], facts["is_child"]) == ("did-not-attend", True)


def test_a_young_person_of_17_is_labelled_did_not_attend_and_is_still_a_child(ruleset: Ruleset) -> None:
    facts = person_facts(ruleset, date(2008, 5, 2), date(2026, 5, 1), None)
    assert (facts["age_years"], facts["label"], facts["is_child"]) == (17, "did-not-attend", True)


def test_a_young_person_of_17_with_care_needs_is_still_labelled_did_not_attend(ruleset: Ruleset) -> None:
    facts = person_facts(ruleset, date(2008, 5, 2), date(2026, 5, 1), context(care=True))
    assert (facts["label"], facts["is_child"]) == ("did-not-attend", True)


def test_an_adult_with_care_and_support_needs_is_labelled_adult_not_brought(ruleset: Ruleset) -> None:
    facts = person_facts(ruleset, date(1990, 1, 1), date(2026, 3, 2), context(care=True))
    assert (facts["label"], facts["is_child"], facts["care_and_support_needs"]) == (
        "adult-not-brought",
        False,
        True,
    )


def test_an_adult_without_care_needs_is_labelled_did_not_attend(ruleset: Ruleset) -> None:
    facts = person_facts(ruleset, date(1990, 1, 1), date(2026, 3, 2), context())
    assert (facts["label"], facts["is_child"]) == ("did-not-attend", False)


def test_an_adult_without_any_context_is_labelled_did_not_attend(ruleset: Ruleset) -> None:
    facts = person_facts(ruleset, date(1990, 1, 1), date(2026, 3, 2), None)
    assert (facts["label"], facts["care_and_support_needs"]) == ("did-not-attend", False)


def test_someone_turning_18_today_is_an_adult(ruleset: Ruleset) -> None:
    facts = person_facts(ruleset, date(2008, 3, 2), date(2026, 3, 2), context(care=True))
    assert (facts["is_child"], facts["label"]) == (False, "adult-not-brought")


def test_complex_health_needs_come_from_the_context(ruleset: Ruleset) -> None:
    assert person_facts(ruleset, CHILD, T.date(), context(complex_needs=True))["complex_health_needs"] is True
    assert person_facts(ruleset, CHILD, T.date(), None)["complex_health_needs"] is False


# ---- safeguarding statuses ----

PLAN = StatusKind.CHILD_PROTECTION_PLAN


def _plan_on(ruleset: Ruleset, person: PersonContext, on: date) -> tuple[bool, bool]:
    facts = person_facts(ruleset, CHILD, on, person)
    return facts["safeguarding_plan"], facts["lead_professional_status"]


def test_a_child_protection_plan_is_active_on_its_start_date(ruleset: Ruleset) -> None:
    assert _plan_on(ruleset, context(status(PLAN, date(2026, 1, 1))), date(2026, 1, 1)) == (True, False)


def test_a_child_protection_plan_is_not_active_the_day_before_it_starts(ruleset: Ruleset) -> None:
    assert _plan_on(ruleset, context(status(PLAN, date(2026, 1, 1))), date(2025, 12, 31)) == (False, False)


def test_an_open_ended_plan_is_active_long_after_it_started(ruleset: Ruleset) -> None:
    assert _plan_on(ruleset, context(status(PLAN, date(2020, 1, 1))), date(2026, 3, 2))[0] is True


def test_a_child_protection_plan_is_active_between_start_and_end(ruleset: Ruleset) -> None:
    person = context(status(PLAN, date(2025, 1, 1), date(2025, 6, 30)))
    assert _plan_on(ruleset, person, date(2025, 6, 30))[0] is True


def test_a_child_protection_plan_still_counts_365_days_after_it_ended(ruleset: Ruleset) -> None:
    person = context(status(PLAN, date(2025, 1, 1), date(2025, 6, 30)))
    assert _plan_on(ruleset, person, date(2026, 6, 30))[0] is True


def test_a_child_protection_plan_no_longer_counts_366_days_after_it_ended(ruleset: Ruleset) -> None:
    person = context(status(PLAN, date(2025, 1, 1), date(2025, 6, 30)))
    assert _plan_on(ruleset, person, date(2026, 7, 1))[0] is False


def test_a_looked_after_status_still_counts_365_days_after_it_ended(ruleset: Ruleset) -> None:
    person = context(status(StatusKind.LOOKED_AFTER, date(2025, 1, 1), date(2025, 6, 30)))
    assert _plan_on(ruleset, person, date(2026, 6, 30)) == (True, False)
    assert _plan_on(ruleset, person, date(2026, 7, 1)) == (False, False)


def test_a_child_in_need_status_is_a_lead_professional_status_not_a_plan(ruleset: Ruleset) -> None:
    person = context(status(StatusKind.CHILD_IN_NEED, date(2025, 1, 1)))
    assert _plan_on(ruleset, person, date(2026, 3, 2)) == (False, True)


def test_a_child_in_need_status_is_active_on_its_end_date(ruleset: Ruleset) -> None:
    person = context(status(StatusKind.CHILD_IN_NEED, date(2025, 1, 1), date(2025, 6, 30)))
    assert _plan_on(ruleset, person, date(2025, 6, 30)) == (False, True)


def test_a_child_in_need_status_does_not_count_after_it_ended(ruleset: Ruleset) -> None:
    person = context(status(StatusKind.CHILD_IN_NEED, date(2025, 1, 1), date(2025, 6, 30)))
    assert _plan_on(ruleset, person, date(2025, 7, 1)) == (False, False)


def test_an_early_help_status_is_a_lead_professional_status(ruleset: Ruleset) -> None:
    person = context(status(StatusKind.EARLY_HELP, date(2025, 1, 1), date(2025, 6, 30)))
    assert _plan_on(ruleset, person, date(2025, 3, 1)) == (False, True)
    assert _plan_on(ruleset, person, date(2025, 7, 1)) == (False, False)


def test_no_context_means_no_safeguarding_status(ruleset: Ruleset) -> None:
    assert _plan_on(ruleset, None, date(2026, 3, 2)) == (False, False)  # type: ignore[arg-type]


def test_a_status_is_judged_on_the_london_date_of_the_appointment(ruleset: Ruleset) -> None:
    # 23:30Z on 30 June 2026 is 1 July in London: 366 days after the plan ended on 30 June 2025.
    person = context(status(PLAN, date(2025, 1, 1), date(2025, 6, 30)))
    late = appt(datetime(2026, 6, 30, 23, 30, tzinfo=UTC))
    early = appt(datetime(2026, 6, 30, 22, 30, tzinfo=UTC))
    assert facts_for(ruleset, late, person=person)["safeguarding_plan"] is False
    assert facts_for(ruleset, early, person=person)["safeguarding_plan"] is True


# ---- counted windows ----


def test_the_event_itself_counts_as_a_miss_in_its_service(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset)
    assert facts["missed_in_service_365d"] == 1
    assert facts["missed_all_services_90d"] == 1
    assert facts["missed_all_services_365d"] == 1


def test_a_second_miss_in_service_counts_two(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset, history=[appt(T - timedelta(days=30))])
    assert facts["missed_in_service_365d"] == 2


def test_a_late_not_seen_counts_as_a_miss(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset, history=[appt(T - timedelta(days=30), Attendance.LATE_NOT_SEEN)])
    assert facts["missed_in_service_365d"] == 2


@pytest.mark.parametrize(
    "attendance",
    [
        Attendance.ATTENDED,
        Attendance.ATTENDED_LATE,
        Attendance.CANCELLED_BY_PATIENT,
        Attendance.CANCELLED_BY_PROVIDER,
        Attendance.BOOKED,
    ],
)
def test_appointments_that_were_not_missed_are_not_counted_as_misses(ruleset: Ruleset, attendance: Attendance) -> None:
    facts = facts_for(ruleset, history=[appt(T - timedelta(days=30), attendance)])
    assert facts["missed_in_service_365d"] == 1
    assert facts["missed_all_services_365d"] == 1


def test_a_miss_in_another_service_counts_for_all_services_but_not_in_service(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset, history=[appt(T - timedelta(days=30), service=OTHER)])
    assert facts["missed_in_service_365d"] == 1
    assert facts["missed_all_services_90d"] == 2
    assert facts["missed_all_services_365d"] == 2


def test_a_miss_exactly_365_days_of_24_hours_before_counts(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset, history=[appt(T - timedelta(hours=365 * 24))])
    assert facts["missed_in_service_365d"] == 2
    assert facts["missed_all_services_365d"] == 2


def test_a_miss_one_second_more_than_365_days_before_does_not_count(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset, history=[appt(T - timedelta(hours=365 * 24, seconds=1))])
    assert facts["missed_in_service_365d"] == 1
    assert facts["missed_all_services_365d"] == 1


def test_a_miss_exactly_90_days_before_counts_in_the_90_day_window(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset, history=[appt(T - timedelta(hours=90 * 24), service=OTHER)])
    assert facts["missed_all_services_90d"] == 2


def test_a_miss_one_second_more_than_90_days_before_is_outside_the_90_day_window(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset, history=[appt(T - timedelta(hours=90 * 24, seconds=1), service=OTHER)])
    assert facts["missed_all_services_90d"] == 1
    assert facts["missed_all_services_365d"] == 2


def test_the_window_is_counted_in_elapsed_hours_across_a_clock_change(ruleset: Ruleset) -> None:
    # T in summer, the earlier miss in winter: exactly 90×24 h before, whatever London clocks said.
    at = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    facts = facts_for(ruleset, appt(at), history=[appt(at - timedelta(hours=90 * 24), service=OTHER)])
    assert facts["missed_all_services_90d"] == 2


def test_a_miss_later_than_this_appointment_is_not_counted(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset, history=[appt(T + timedelta(seconds=1))])
    assert facts["missed_in_service_365d"] == 1


def test_a_miss_at_the_same_instant_counts(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset, history=[appt(T, service=OTHER)])
    assert facts["missed_all_services_90d"] == 2


def test_an_earlier_outcome_of_the_same_appointment_is_replaced_not_counted_twice(ruleset: Ruleset) -> None:
    earlier = appt(T, Attendance.DID_NOT_ATTEND, appointment_id="same")
    now = appt(T, Attendance.LATE_NOT_SEEN, appointment_id="same", recorded_at=T + timedelta(hours=5))
    assert facts_for(ruleset, now, history=[earlier])["missed_in_service_365d"] == 1


def test_patient_cancellations_are_counted_across_all_services(ruleset: Ruleset) -> None:
    event = appt(T, Attendance.CANCELLED_BY_PATIENT)
    history = [
        appt(T - timedelta(days=10), Attendance.CANCELLED_BY_PATIENT, service=OTHER),
        appt(T - timedelta(days=20), Attendance.CANCELLED_BY_PATIENT),
    ]
    assert facts_for(ruleset, event, history=history)["patient_cancellations_183d"] == 3


def test_provider_cancellations_are_not_patient_cancellations(ruleset: Ruleset) -> None:
    event = appt(T, Attendance.CANCELLED_BY_PATIENT)
    history = [appt(T - timedelta(days=10), Attendance.CANCELLED_BY_PROVIDER)]
    assert facts_for(ruleset, event, history=history)["patient_cancellations_183d"] == 1


def test_a_missed_appointment_is_not_a_patient_cancellation(ruleset: Ruleset) -> None:
    assert facts_for(ruleset)["patient_cancellations_183d"] == 0


def test_a_patient_cancellation_exactly_183_days_before_counts(ruleset: Ruleset) -> None:
    event = appt(T, Attendance.CANCELLED_BY_PATIENT)
    history = [appt(T - timedelta(hours=183 * 24), Attendance.CANCELLED_BY_PATIENT)]
    assert facts_for(ruleset, event, history=history)["patient_cancellations_183d"] == 2


def test_a_patient_cancellation_one_second_outside_183_days_does_not_count(ruleset: Ruleset) -> None:
    event = appt(T, Attendance.CANCELLED_BY_PATIENT)
    history = [appt(T - timedelta(hours=183 * 24, seconds=1), Attendance.CANCELLED_BY_PATIENT)]
    assert facts_for(ruleset, event, history=history)["patient_cancellations_183d"] == 1


# ---- never seen in service ----


def test_a_child_with_no_history_has_never_been_seen_in_the_service(ruleset: Ruleset) -> None:
    assert facts_for(ruleset)["never_seen_in_service"] is True


@pytest.mark.parametrize("attendance", [Attendance.ATTENDED, Attendance.ATTENDED_LATE])
def test_an_earlier_attended_appointment_in_the_service_means_seen(ruleset: Ruleset, attendance: Attendance) -> None:
    facts = facts_for(ruleset, history=[appt(T - timedelta(days=400), attendance)])
    assert facts["never_seen_in_service"] is False


def test_an_attended_appointment_in_another_service_does_not_count_as_seen(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset, history=[appt(T - timedelta(days=30), Attendance.ATTENDED, service=OTHER)])
    assert facts["never_seen_in_service"] is True


def test_earlier_misses_in_the_service_leave_the_child_never_seen(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset, history=[appt(T - timedelta(days=30)), appt(T - timedelta(days=60))])
    assert facts["never_seen_in_service"] is True


def test_an_attended_appointment_after_this_one_does_not_count_as_seen_before_it(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset, history=[appt(T + timedelta(days=1), Attendance.ATTENDED)])
    assert facts["never_seen_in_service"] is True


# ---- unreviewed miss in service (WNB-12) ----

MISS_RECORDED = T - timedelta(days=30) + timedelta(hours=2)


def _discharge_facts(ruleset: Ruleset, reviews: list[tuple[str, datetime]]) -> dict[str, Any]:
    miss = appt(T - timedelta(days=30), recorded_at=MISS_RECORDED)
    discharge = appt(T, Attendance.ATTENDED, outcome=Outcome.DISCHARGED)
    return facts_for(ruleset, discharge, history=[miss], completed_reviews=reviews)


def test_a_miss_in_service_with_no_review_is_unreviewed(ruleset: Ruleset) -> None:
    assert _discharge_facts(ruleset, [])["unreviewed_miss_in_service"] is True


def test_a_review_completed_before_the_miss_was_recorded_does_not_count(ruleset: Ruleset) -> None:
    reviews = [(SERVICE, MISS_RECORDED - timedelta(seconds=1))]
    assert _discharge_facts(ruleset, reviews)["unreviewed_miss_in_service"] is True


def test_a_review_completed_exactly_when_the_miss_was_recorded_counts(ruleset: Ruleset) -> None:
    assert _discharge_facts(ruleset, [(SERVICE, MISS_RECORDED)])["unreviewed_miss_in_service"] is False


def test_a_review_completed_after_the_miss_was_recorded_counts(ruleset: Ruleset) -> None:
    reviews = [(SERVICE, MISS_RECORDED + timedelta(days=1))]
    assert _discharge_facts(ruleset, reviews)["unreviewed_miss_in_service"] is False


def test_a_review_completed_in_another_service_does_not_count(ruleset: Ruleset) -> None:
    reviews = [(OTHER, MISS_RECORDED + timedelta(days=1))]
    assert _discharge_facts(ruleset, reviews)["unreviewed_miss_in_service"] is True


def test_a_review_between_two_misses_does_not_cover_the_latest_miss(ruleset: Ruleset) -> None:
    first = appt(T - timedelta(days=60), recorded_at=T - timedelta(days=60))
    second = appt(T - timedelta(days=10), recorded_at=T - timedelta(days=10))
    discharge = appt(T, Attendance.ATTENDED, outcome=Outcome.DISCHARGED)
    reviews = [(SERVICE, T - timedelta(days=30))]
    facts = facts_for(ruleset, discharge, history=[first, second], completed_reviews=reviews)
    assert facts["unreviewed_miss_in_service"] is True


def test_a_discharge_with_no_miss_in_the_service_has_no_unreviewed_miss(ruleset: Ruleset) -> None:
    discharge = appt(T, Attendance.ATTENDED, outcome=Outcome.DISCHARGED)
    history = [appt(T - timedelta(days=30), service=OTHER), appt(T - timedelta(days=60), Attendance.ATTENDED)]
    assert facts_for(ruleset, discharge, history=history)["unreviewed_miss_in_service"] is False


def test_a_miss_more_than_365_days_before_the_discharge_is_not_unreviewed(ruleset: Ruleset) -> None:
    discharge = appt(T, Attendance.ATTENDED, outcome=Outcome.DISCHARGED)
    old = appt(T - timedelta(hours=365 * 24, seconds=1))
    assert facts_for(ruleset, discharge, history=[old])["unreviewed_miss_in_service"] is False


def test_the_discharging_appointment_itself_counts_when_it_was_missed(ruleset: Ruleset) -> None:
    discharge = appt(T, Attendance.DID_NOT_ATTEND, outcome=Outcome.DISCHARGED)
    facts = facts_for(ruleset, discharge)
    assert (facts["unreviewed_miss_in_service"], facts["trigger_discharge"]) == (True, True)


# ---- triggers and base facts ----


def test_a_missed_appointment_triggers_only_the_missed_appointment_rules(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset)
    names = (
        "trigger_missed_appointment",
        "trigger_patient_cancellation",
        "trigger_discharge",
        "trigger_follow_up_deadline",
    )
    assert [facts[name] for name in names] == [True, False, False, False]


def test_a_patient_cancellation_triggers_only_the_cancellation_rules(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset, appt(attendance=Attendance.CANCELLED_BY_PATIENT))
    assert (facts["trigger_missed_appointment"], facts["trigger_patient_cancellation"]) == (False, True)


def test_a_discharged_outcome_triggers_the_discharge_rules_whatever_the_attendance(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset, appt(attendance=Attendance.ATTENDED, outcome=Outcome.DISCHARGED))
    assert (facts["trigger_missed_appointment"], facts["trigger_discharge"]) == (False, True)


@pytest.mark.parametrize(
    ("attendance", "outcome", "expected"),
    [
        (Attendance.ATTENDED, None, []),
        (Attendance.ATTENDED_LATE, Outcome.ANOTHER_APPOINTMENT, []),
        (Attendance.CANCELLED_BY_PROVIDER, None, []),
        (Attendance.BOOKED, None, []),
        (Attendance.DID_NOT_ATTEND, None, ["trigger_missed_appointment"]),
        (Attendance.LATE_NOT_SEEN, None, ["trigger_missed_appointment"]),
        (Attendance.CANCELLED_BY_PATIENT, None, ["trigger_patient_cancellation"]),
        (Attendance.ATTENDED, Outcome.DISCHARGED, ["trigger_discharge"]),
        (Attendance.DID_NOT_ATTEND, Outcome.DISCHARGED, ["trigger_missed_appointment", "trigger_discharge"]),
    ],
)
def test_event_triggers_are_the_triggers_an_outcome_sets_off(
    attendance: Attendance, outcome: Outcome | None, expected: list[str]
) -> None:
    triggers = event_triggers(appt(attendance=attendance, outcome=outcome))
    assert sorted(name for name, held in triggers.items() if held) == sorted(expected)
    assert "trigger_follow_up_deadline" in triggers


def test_event_triggers_agree_with_the_event_fact_document(ruleset: Ruleset) -> None:
    event = appt(attendance=Attendance.LATE_NOT_SEEN, outcome=Outcome.DISCHARGED)
    facts = facts_for(ruleset, event)
    assert event_triggers(event) == {name: facts[name] for name in event_triggers(event)}


def test_an_absent_priority_and_outcome_are_the_word_none(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset)
    assert (facts["priority"], facts["outcome"]) == ("none", "none")


def test_priority_attendance_outcome_and_service_are_their_canonical_names(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset, appt(priority=Priority.TWO_WEEK_WAIT, outcome=Outcome.ANOTHER_APPOINTMENT))
    assert (facts["priority"], facts["outcome"], facts["attendance"], facts["service"]) == (
        "two-week-wait",
        "another-appointment",
        "did-not-attend",
        SERVICE,
    )


def test_an_event_evaluation_never_claims_a_follow_up_or_discharge_in_service(ruleset: Ruleset) -> None:
    facts = facts_for(ruleset)
    assert (facts["later_appointment_in_service"], facts["discharged_in_service"]) == (False, False)


# ---- follow-up facts (WNB-14) ----


def _follow_up(ruleset: Ruleset, missed: Appointment, history: list[Appointment], born: date = CHILD) -> dict[str, Any]:
    return follow_up_facts(ruleset, missed, [missed, *history], born, None)


@pytest.mark.parametrize(
    "attendance",
    [
        Attendance.BOOKED,
        Attendance.ATTENDED,
        Attendance.ATTENDED_LATE,
        Attendance.DID_NOT_ATTEND,
        Attendance.LATE_NOT_SEEN,
    ],
)
def test_a_later_booked_attended_or_missed_appointment_in_service_is_a_follow_up(
    ruleset: Ruleset, attendance: Attendance
) -> None:
    missed = appt(T)
    facts = _follow_up(ruleset, missed, [appt(T + timedelta(days=14), attendance)])
    assert facts["later_appointment_in_service"] is True


def test_a_later_booked_appointment_counts_even_when_it_is_far_in_the_future(ruleset: Ruleset) -> None:
    missed = appt(T)
    facts = _follow_up(ruleset, missed, [appt(T + timedelta(days=400), Attendance.BOOKED)])
    assert facts["later_appointment_in_service"] is True


@pytest.mark.parametrize("attendance", [Attendance.CANCELLED_BY_PATIENT, Attendance.CANCELLED_BY_PROVIDER])
def test_a_later_cancelled_appointment_is_not_a_follow_up(ruleset: Ruleset, attendance: Attendance) -> None:
    missed = appt(T)
    facts = _follow_up(ruleset, missed, [appt(T + timedelta(days=14), attendance)])
    assert facts["later_appointment_in_service"] is False


def test_an_earlier_attended_appointment_is_not_a_follow_up(ruleset: Ruleset) -> None:
    missed = appt(T)
    facts = _follow_up(ruleset, missed, [appt(T - timedelta(days=14), Attendance.ATTENDED)])
    assert facts["later_appointment_in_service"] is False


def test_a_later_appointment_in_another_service_is_not_a_follow_up(ruleset: Ruleset) -> None:
    missed = appt(T)
    facts = _follow_up(ruleset, missed, [appt(T + timedelta(days=14), Attendance.ATTENDED, service=OTHER)])
    assert facts["later_appointment_in_service"] is False


def test_the_missed_appointment_itself_is_not_its_own_follow_up(ruleset: Ruleset) -> None:
    facts = _follow_up(ruleset, appt(T), [])
    assert (facts["later_appointment_in_service"], facts["discharged_in_service"]) == (False, False)


def test_a_later_discharge_in_service_counts_whatever_its_attendance(ruleset: Ruleset) -> None:
    missed = appt(T)
    later = appt(T + timedelta(days=14), Attendance.CANCELLED_BY_PROVIDER, outcome=Outcome.DISCHARGED)
    assert _follow_up(ruleset, missed, [later])["discharged_in_service"] is True


def test_the_missed_appointment_discharged_itself_counts_as_a_discharge(ruleset: Ruleset) -> None:
    missed = appt(T, outcome=Outcome.DISCHARGED)
    assert _follow_up(ruleset, missed, [])["discharged_in_service"] is True


def test_a_discharge_before_the_missed_appointment_does_not_count(ruleset: Ruleset) -> None:
    missed = appt(T)
    earlier = appt(T - timedelta(days=14), Attendance.ATTENDED, outcome=Outcome.DISCHARGED)
    assert _follow_up(ruleset, missed, [earlier])["discharged_in_service"] is False


def test_a_discharge_in_another_service_does_not_count(ruleset: Ruleset) -> None:
    missed = appt(T)
    other = appt(T + timedelta(days=14), Attendance.ATTENDED, service=OTHER, outcome=Outcome.DISCHARGED)
    assert _follow_up(ruleset, missed, [other])["discharged_in_service"] is False


def test_follow_up_facts_trigger_only_the_follow_up_deadline_rules(ruleset: Ruleset) -> None:
    facts = _follow_up(ruleset, appt(T), [])
    assert (
        facts["trigger_follow_up_deadline"],
        facts["trigger_missed_appointment"],
        facts["trigger_patient_cancellation"],
        facts["trigger_discharge"],
    ) == (True, False, False, False)


def test_follow_up_facts_judge_age_on_the_missed_appointment_date(ruleset: Ruleset) -> None:
    # 17 at the miss, 18 by the deadline weeks later: still a child for WNB-14.
    born = date(2008, 3, 10)
    facts = _follow_up(ruleset, appt(T), [], born=born)
    assert (facts["age_years"], facts["is_child"]) == (17, True)


# ---- the document as a whole ----


def _assert_typed_and_complete(ruleset: Ruleset, facts: dict[str, Any]) -> None:
    types = ruleset.fact_types
    assert set(facts) == set(types)
    for name, value in facts.items():
        assert value is not None, name
        assert type(value) is types[name], (name, value)


def test_every_event_fact_is_present_non_null_and_of_its_declared_type(ruleset: Ruleset) -> None:
    person = context(status(PLAN, date(2025, 1, 1)), complex_needs=True)
    history = [appt(T - timedelta(days=5), Attendance.ATTENDED), appt(T - timedelta(days=40), service=OTHER)]
    _assert_typed_and_complete(ruleset, facts_for(ruleset, history=history, person=person))


def test_every_event_fact_is_typed_without_any_context_or_history(ruleset: Ruleset) -> None:
    event = appt(T, Attendance.BOOKED)
    _assert_typed_and_complete(ruleset, facts_for(ruleset, event, person=None))


def test_every_follow_up_fact_is_present_non_null_and_of_its_declared_type(ruleset: Ruleset) -> None:
    _assert_typed_and_complete(ruleset, _follow_up(ruleset, appt(T, priority=Priority.URGENT), []))


def test_the_first_appointment_flag_is_passed_through_as_a_boolean(ruleset: Ruleset) -> None:
    facts = event_facts(ruleset, appt(), [], CHILD, None, (), True)
    assert facts["first_appointment"] is True


# ---- an unknown age (DOMAIN.md §6) ----


def test_with_no_date_of_birth_the_age_facts_are_absent_never_zero(ruleset: Ruleset) -> None:
    facts = event_facts(ruleset, appt(), [], None, None)
    assert facts["age_known"] is False
    assert not {"age_years", "age_months", "is_child", "label"} & set(facts)


def test_with_no_date_of_birth_the_statuses_and_counts_are_still_derived(ruleset: Ruleset) -> None:
    plan = context(status(StatusKind.CHILD_PROTECTION_PLAN, date(2025, 1, 1)), complex_needs=True)
    earlier = appt(T - timedelta(days=30))
    facts = event_facts(ruleset, appt(), [earlier], None, plan)
    assert (facts["safeguarding_plan"], facts["complex_health_needs"], facts["missed_in_service_365d"]) == (
        True,
        True,
        2,
    )


def test_a_known_age_is_marked_known(ruleset: Ruleset) -> None:
    assert person_facts(ruleset, CHILD, date(2026, 3, 2), None)["age_known"] is True
