"""The facts a rule may test (their names and types) and the fact document of one evaluation, derived from
stored history (DOMAIN.md §3). Pure. A new fact is added here alone: its name and type in BUILTIN_FACTS, its
value in `event_facts` and `follow_up_facts` (the two kinds of evaluation), and a scenario file that tests it.

Every fact is typed and never null (the matcher ignores nulls). Windows end at the appointment's time
and look back N×24 hours, both ends included. A person of unknown age has `age_known` false and no age
facts at all (`AGE_FACTS` are absent, never 0), so no condition on age can hold for them (DOMAIN.md §6).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from wnb.core.calendar import london_date
from wnb.core.domain import Appointment, PersonContext, StatusKind
from wnb.core.nhs import Attendance, Outcome

if TYPE_CHECKING:  # the ruleset imports this vocabulary; the facts need only its type
    from wnb.core.ruleset import Ruleset

# What a rule's `trigger:` means, and the boolean fact of the fact document it tests.
TRIGGERS = {
    "missed-appointment": "trigger_missed_appointment",
    "patient-cancellation": "trigger_patient_cancellation",
    "discharge": "trigger_discharge",
    "follow-up-deadline": "trigger_follow_up_deadline",
}

# Every fact a rule may test, with its type (DOMAIN.md §3). Count facts are declared in ruleset.yaml.
BUILTIN_FACTS: dict[str, type] = {
    **{fact: bool for fact in TRIGGERS.values()},
    "attendance": str,
    "priority": str,  # "none" when the feed gave none
    "outcome": str,  # "none" when the feed gave none
    "service": str,
    "first_appointment": bool,
    "age_known": bool,  # false when neither the event nor the context gives a date of birth
    "age_years": int,
    "age_months": int,
    "is_child": bool,
    "label": str,  # was-not-brought | did-not-attend | adult-not-brought
    "never_seen_in_service": bool,
    "safeguarding_plan": bool,
    "lead_professional_status": bool,
    "complex_health_needs": bool,
    "care_and_support_needs": bool,
    "unreviewed_miss_in_service": bool,
    "later_appointment_in_service": bool,
    "discharged_in_service": bool,
}
# The facts that need a date of birth. With an unknown age they are absent from the document (never 0 or
# false), so that no condition on them holds, in the matcher (a missing field never matches) as in the
# interpreter; a rule reaches a person of unknown age only through `age_known: false` (DOMAIN.md §6).
AGE_FACTS = ("age_years", "age_months", "is_child", "label")


_PLAN_KINDS = (StatusKind.CHILD_PROTECTION_PLAN, StatusKind.LOOKED_AFTER)
_LEAD_PROFESSIONAL_KINDS = (StatusKind.CHILD_IN_NEED, StatusKind.EARLY_HELP)


def age_years(born: date, on: date) -> int:
    """Whole years; someone born on 29 February comes of age on 1 March in years without one."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def age_months(born: date, on: date) -> int:
    return (on.year - born.year) * 12 + on.month - born.month - (on.day < born.day)


def _status_active(context: PersonContext | None, kinds: tuple[StatusKind, ...], on: date, grace: int) -> bool:
    if context is None:
        return False
    for status in context.statuses:
        if status.kind not in kinds:
            continue
        end = status.end
        if end is not None and status.kind in _PLAN_KINDS:
            end += timedelta(days=grace)
        if status.start <= on and (end is None or on <= end):
            return True
    return False


def _is_patient_cancellation(appointment: Appointment) -> bool:
    return appointment.attendance is Attendance.CANCELLED_BY_PATIENT


def _in_window(appointment: Appointment, end: datetime, days: int) -> bool:
    return end - timedelta(days=days) <= appointment.appointment_at <= end


def with_appointment(history: Iterable[Appointment], appointment: Appointment) -> list[Appointment]:
    """The history with `appointment` in it as it now stands (replacing an earlier outcome of it)."""
    return [item for item in history if item.key != appointment.key] + [appointment]


def person_facts(ruleset: Ruleset, born: date | None, on: date, context: PersonContext | None) -> dict[str, Any]:
    """Age, label and safeguarding statuses of a person on the date of an appointment.

    With no date of birth the age facts are left out (`age_known` false): an unknown age is no age, not 0.
    """
    care_needs = bool(context and context.care_and_support_needs)
    grace = ruleset.param("plan_counts_days_after_end")
    facts: dict[str, Any] = {"age_known": born is not None}
    if born is not None:
        facts.update(_age_facts(ruleset, born, on, care_needs))
    facts.update(
        safeguarding_plan=_status_active(context, _PLAN_KINDS, on, grace),
        lead_professional_status=_status_active(context, _LEAD_PROFESSIONAL_KINDS, on, grace),
        complex_health_needs=bool(context and context.complex_health_needs),
        care_and_support_needs=care_needs,
    )
    return facts


def _age_facts(ruleset: Ruleset, born: date, on: date, care_needs: bool) -> dict[str, Any]:
    years = age_years(born, on)
    is_child = years < ruleset.param("child_under_years")
    if is_child and years < ruleset.param("did_not_attend_label_from_years"):
        label = "was-not-brought"
    elif not is_child and care_needs:
        label = "adult-not-brought"
    else:
        label = "did-not-attend"
    return {"age_years": years, "age_months": age_months(born, on), "is_child": is_child, "label": label}


def _trigger_facts(**held: bool) -> dict[str, bool]:
    return {fact: bool(held.get(fact, False)) for fact in TRIGGERS.values()}


def event_triggers(appointment: Appointment) -> dict[str, bool]:
    """Which rule triggers an appointment outcome sets off; every rule needs one of them."""
    return outcome_triggers(appointment.attendance, appointment.outcome)


@lru_cache(maxsize=256)
def sets_off_a_rule(attendance: Attendance, outcome: Outcome | None) -> bool:
    """Whether an outcome sets off any rule trigger (so its event is evaluated against the person's history)."""
    return any(outcome_triggers(attendance, outcome).values())


def outcome_triggers(attendance: Attendance, outcome: Outcome | None) -> dict[str, bool]:
    """event_triggers from the attendance and outcome alone (known before the event is stored)."""
    return _trigger_facts(
        trigger_missed_appointment=attendance.is_missed,
        trigger_patient_cancellation=attendance is Attendance.CANCELLED_BY_PATIENT,
        trigger_discharge=outcome is Outcome.DISCHARGED,
    )


def _base_facts(appointment: Appointment) -> dict[str, Any]:
    return {
        "attendance": appointment.attendance.value,
        "priority": appointment.priority.value if appointment.priority else "none",
        "outcome": appointment.outcome.value if appointment.outcome else "none",
        "service": appointment.service,
    }


def event_facts(
    ruleset: Ruleset,
    appointment: Appointment,
    history: Iterable[Appointment],
    born: date | None,
    context: PersonContext | None,
    completed_reviews: Iterable[tuple[str, datetime]] = (),
    first_appointment: bool = False,
) -> dict[str, Any]:
    """The fact document for evaluating one event's appointment against the person's history.

    `history` holds the person's appointments as they stand (any source, withdrawn ones left out);
    `completed_reviews` the (service, completed_at) of their completed review tasks (WNB-12); `born` is None
    when neither the event nor the context gives a date of birth (then the age facts are left out).
    """
    appointments = with_appointment(history, appointment)
    at, service = appointment.appointment_at, appointment.service
    same_service = [item for item in appointments if item.service == service]
    facts = _base_facts(appointment)
    facts.update(event_triggers(appointment))
    facts["first_appointment"] = first_appointment
    facts.update(person_facts(ruleset, born, london_date(at), context))
    for name, spec in ruleset.settings.counts.items():
        pool = same_service if spec.services == "this" else appointments
        counted = (lambda a: a.attendance.is_missed) if spec.count == "missed" else _is_patient_cancellation
        facts[name] = sum(1 for item in pool if counted(item) and _in_window(item, at, spec.window_days))
    facts["never_seen_in_service"] = not any(
        item.attendance.is_attended and item.appointment_at < at for item in same_service
    )
    facts["unreviewed_miss_in_service"] = _has_unreviewed_miss(ruleset, same_service, at, completed_reviews)
    facts["later_appointment_in_service"] = False
    facts["discharged_in_service"] = False
    return facts


def _has_unreviewed_miss(
    ruleset: Ruleset,
    same_service: list[Appointment],
    at: datetime,
    completed_reviews: Iterable[tuple[str, datetime]],
) -> bool:
    review = ruleset.settings.discharge_review
    misses = [a for a in same_service if a.attendance.is_missed and _in_window(a, at, review.window_days)]
    if not misses:
        return False
    latest = max(misses, key=lambda a: (a.appointment_at, a.recorded_at))
    service = same_service[0].service
    return not any(s == service and done >= latest.recorded_at for s, done in completed_reviews)


def follow_up_facts(
    ruleset: Ruleset,
    missed: Appointment,
    history: Iterable[Appointment],
    born: date,
    context: PersonContext | None,
) -> dict[str, Any]:
    """The fact document for judging a missed appointment at its follow-up deadline (WNB-14)."""
    same_service = [item for item in history if item.service == missed.service and item.key != missed.key]
    facts = _base_facts(missed)
    facts.update(_trigger_facts(trigger_follow_up_deadline=True))
    facts["first_appointment"] = False
    facts.update(person_facts(ruleset, born, london_date(missed.appointment_at), context))
    for name in ruleset.settings.counts:
        facts[name] = 0
    facts["never_seen_in_service"] = False
    facts["unreviewed_miss_in_service"] = False
    facts["later_appointment_in_service"] = any(
        item.appointment_at > missed.appointment_at
        and (item.attendance is Attendance.BOOKED or item.attendance.is_attended or item.attendance.is_missed)
        for item in same_service
    )
    facts["discharged_in_service"] = missed.outcome is Outcome.DISCHARGED or any(
        item.appointment_at >= missed.appointment_at and item.outcome is Outcome.DISCHARGED for item in same_service
    )
    return facts
