"""A rule's reasons as sentences people read: "The child (NHS 999 000 0018) was not brought to ENT on Mon 16 Nov
2026; 2 missed ENT appointments in the last 365 days; the rule asks for 2 or more".

An evaluation's audit record keeps each condition as the interpreter wrote it (`describe_condition`, e.g.
`missed_in_service_365d ≥ 2 ($repeat_misses)`) with the fact's value; that text stays as it is, since audit
records are compared and replayed. This words it: the condition is found again in the ruleset by that text, and
said with the fact's meaning; a condition the ruleset no longer has is shown as it was written. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from wnb.core.calendar import LONDON
from wnb.core.interpreter import describe_condition
from wnb.core.nhs import spaced_nhs_number
from wnb.core.ruleset import AnyOf, Condition, CountSpec, Ruleset
from wnb.core.wording import plain_code

# A true (or false) boolean fact in words.
_TRUE = {
    "age_known": "the date of birth is known",
    "safeguarding_plan": "a child-protection plan or looked-after status counts for this appointment",
    "lead_professional_status": "a child-in-need or early-help status counts for this appointment",
    "complex_health_needs": "the child has complex health needs",
    "care_and_support_needs": "the person has care and support needs",
    "never_seen_in_service": "the service has never seen the child",
    "unreviewed_miss_in_service": "a missed appointment in the service has not been reviewed by a clinician since",
    "later_appointment_in_service": "the service has a later appointment (booked, attended or missed)",
    "discharged_in_service": "the service has discharged the child",
    "first_appointment": "it was the child's first appointment in the service",
}
_FALSE = {
    "age_known": "nobody knows the date of birth",
    "safeguarding_plan": "no child-protection plan or looked-after status counts for this appointment",
    "lead_professional_status": "no child-in-need or early-help status counts for this appointment",
    "complex_health_needs": "the child has no complex health needs recorded",
    "care_and_support_needs": "the person has no care and support needs recorded",
    "never_seen_in_service": "the service has seen the child before",
    "unreviewed_miss_in_service": "every missed appointment in the service has been reviewed",
    "later_appointment_in_service": "the service has no later appointment booked, attended or missed",
    "discharged_in_service": "the service has not discharged the child",
    "first_appointment": "it was not the child's first appointment in the service",
}
# How the rule's limit reads, by the interpreter's operator symbol.
_ASKS = {"≥": "{} or more", "≤": "{} or fewer", ">": "more than {}", "<": "fewer than {}", "=": "{}", "≠": "not {}"}
_SMALL_WORDS = {"of", "and", "the", "for", "to", "in", "on", "at", "a", "an"}


def service_words(service: str) -> str:
    """A service's code as words, short names as capitals: 'ent' → 'ENT', 'community-paediatrics' → 'community
    paediatrics'."""
    words = plain_code(service).split()
    return " ".join(word.upper() if len(word) <= 3 and word not in _SMALL_WORDS else word for word in words)


def day(at: str | datetime) -> str:
    """The London date of an instant, e.g. 'Mon 16 Nov 2026'."""
    moment = datetime.fromisoformat(at.replace("Z", "+00:00")) if isinstance(at, str) else at
    return moment.astimezone(LONDON).strftime("%a %d %b %Y")


def who(facts: Mapping[str, Any], nhs_number: str) -> str:
    """'The child (NHS 999 000 0018)', 'The young person (…)' for a 16- or 17-year-old, else 'The person (…)'."""
    if facts.get("is_child") is True:
        person = "The young person" if facts.get("label") == "did-not-attend" else "The child"
    else:
        person = "The person"
    return f"{person} (NHS {spaced_nhs_number(nhs_number)})"


def what_happened(event: Mapping[str, Any], facts: Mapping[str, Any], nhs_number: str) -> str:
    """The appointment's outcome as the start of a sentence: 'The child (NHS …) was not brought to ENT on …'."""
    service = service_words(str(event.get("service") or "the service"))
    on = day(event["appointment_at"]) if event.get("appointment_at") else "an unknown day"
    attendance = event.get("attendance")
    if attendance == "did-not-attend":
        verb = "did not attend" if facts.get("label") == "did-not-attend" else "was not brought to"
        happened = f"{verb} {service} on {on}"
    elif attendance == "late-not-seen":
        happened = f"arrived too late to be seen at {service} on {on}"
    elif attendance == "cancelled-by-patient":
        happened = f"had an appointment at {service} on {on} cancelled by or for the family"
    elif attendance == "cancelled-by-provider":
        happened = f"had an appointment at {service} on {on} cancelled by the service"
    elif attendance in ("attended", "attended-late"):
        happened = f"attended {service} on {on}"
    else:
        happened = f"had an appointment at {service} on {on} ({plain_code(str(attendance))})"
    if event.get("outcome") == "discharged":
        happened += ", and was discharged"
    return f"{who(facts, nhs_number)} {happened}"


def _count_words(spec: CountSpec, actual: Any, service: str) -> str:
    what = "missed" if spec.count == "missed" else "cancelled by or for the family"
    number = "an unknown number of" if actual is None else str(actual)
    plural = "" if actual == 1 else "s"
    if spec.services == "this":
        where = f"{service_words(service)} appointment{plural}"
        return (
            f"{number} missed {where} in the last {spec.window_days} days"
            if spec.count == "missed"
            else f"{number} {where} {what} in the last {spec.window_days} days"
        )
    return f"{number} appointment{plural} {what}, across services, in the last {spec.window_days} days"


def _conditions_by_text(ruleset: Ruleset, rule_id: str) -> dict[str, Condition]:
    rule = next((rule for rule in ruleset.rules if rule.id == rule_id), None)
    found: dict[str, Condition] = {}
    nodes: list[Any] = list(rule.when) if rule is not None else []
    while nodes:
        node = nodes.pop()
        if isinstance(node, Condition):
            found[describe_condition(node, ruleset)] = node
        else:
            nodes.extend(node.any if isinstance(node, AnyOf) else node.all)
    return found


def condition_words(condition: Condition, actual: Any, ruleset: Ruleset, service: str) -> str:
    """One condition with the value it was tested on, in words: '2 missed ENT appointments in the last 365 days;
    the rule asks for 2 or more', 'the child is under 18'."""
    text = describe_condition(condition, ruleset)
    symbol = text.split(" ", 2)[1]
    raw = ruleset.resolve(condition.raw_value(condition.operator))
    limit = ", ".join(plain_code(str(item)) for item in raw) if isinstance(raw, tuple) else plain_code(str(raw))
    asks = f"the rule asks for {'one of ' + limit if condition.operator == 'one_of' else _ASKS[symbol].format(limit)}"
    fact = condition.fact
    counts = ruleset.settings.counts
    if fact in counts:
        return f"{_count_words(counts[fact], actual, service)}; {asks}"
    if isinstance(raw, bool) and fact in _TRUE:
        if actual is None:
            return f"whether {_TRUE[fact]} is not known"
        return _TRUE[fact] if actual is True else _FALSE[fact]
    if fact == "is_child":
        under = ruleset.settings.parameters.get("child_under_years", 18)
        if actual is None:
            return "the age is not known"
        return f"the person is a child (under {under})" if actual else f"the person is not a child (under {under})"
    shown = (
        "not known" if actual is None else plain_code(str(actual).lower() if isinstance(actual, bool) else str(actual))
    )
    if fact == "label" and condition.operator == "is" and actual == raw:
        return f"the miss is labelled “{shown}”"
    if fact in ("age_months", "age_years"):
        unit = "months" if fact == "age_months" else "years"
        age_asks = asks.replace("fewer than", "under").replace("more than", "over")
        return f"the child is {shown} {unit} old; {age_asks} {unit}"
    return f"the {plain_code(fact.replace('_', '-'))} was {shown}; {asks}"


def rule_sentence(happened: str, reasons: list[str]) -> str:
    """What happened and why the rule applied, as one sentence: 'The child … was not brought to ENT on …; 2 missed
    ENT appointments in the last 365 days; the rule asks for 2 or more; and …'."""
    return "; ".join([happened, *reasons[:1], *(f"and {reason}" for reason in reasons[1:])]) + "."


def rule_title(ruleset: Ruleset, rule_id: str) -> str:
    """A rule's title, or a word that the ruleset in force no longer has it."""
    return next((rule.title for rule in ruleset.rules if rule.id == rule_id), "a rule the ruleset no longer has")


def rule_reasons(ruleset: Ruleset, rule_id: str, results: list[Mapping[str, Any]], service: str) -> list[str]:
    """The conditions of rule `rule_id` that held, each in words (the trigger aside: the sentence says what
    happened); a condition the ruleset no longer has, as it was written."""
    known = _conditions_by_text(ruleset, rule_id)
    reasons = []
    for result in results:
        if not result["held"] or str(result["test"]).startswith("trigger is "):
            continue
        if str(result["test"]) == "is_child = true":  # the sentence already says "The child"
            continue
        condition = known.get(str(result["test"]))
        if condition is None:
            reasons.append(f"{result['test']} (was {result['actual']})")
        else:
            reasons.append(condition_words(condition, result["actual"], ruleset, service))
    return reasons
