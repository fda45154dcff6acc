"""A rule's reasons as sentences (wnb/core/sentences.py): what happened, then each condition that held, in words."""

from __future__ import annotations

from typing import Any

from wnb.core.interpreter import explain_rule
from wnb.core.ruleset import Ruleset
from wnb.core.sentences import rule_reasons, rule_sentence, service_words, what_happened

ENT_MISS = {"service": "ent", "appointment_at": "2026-11-16T10:00:00+00:00", "attendance": "did-not-attend"}
CHILD_FACTS: dict[str, Any] = {"is_child": True, "label": "was-not-brought"}


def reasons_of(ruleset: Ruleset, rule_id: str, facts: dict[str, Any], service: str = "ent") -> list[str]:
    explained = explain_rule(ruleset, ruleset.rule(rule_id), facts).as_dict()
    return rule_reasons(ruleset, rule_id, explained["conditions"], service)


def child_facts(ruleset: Ruleset, **given: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {name: False for name, kind in ruleset.fact_types.items() if kind is bool}
    facts |= {name: 0 for name, kind in ruleset.fact_types.items() if kind is int}
    facts |= {"attendance": "did-not-attend", "priority": "none", "outcome": "none", "service": "ent"}
    facts |= {"age_known": True, "is_child": True, "label": "was-not-brought", "age_years": 7, "age_months": 90}
    facts |= {"trigger_missed_appointment": True, **given}
    return facts


def test_a_childs_miss_reads_was_not_brought_to_the_service_on_its_day() -> None:
    sentence = what_happened(ENT_MISS, CHILD_FACTS, "9990000018")

    assert sentence == "The child (NHS 999 000 0018) was not brought to ENT on Mon 16 Nov 2026"


def test_a_young_persons_miss_reads_did_not_attend() -> None:
    facts = {"is_child": True, "label": "did-not-attend"}

    assert what_happened(ENT_MISS, facts, "9990000018").startswith(
        "The young person (NHS 999 000 0018) did not attend ENT"
    )


def test_a_person_of_unknown_age_is_the_person() -> None:
    assert what_happened(ENT_MISS, {"age_known": False}, "9990000018").startswith("The person (NHS 999 000 0018)")


def test_a_count_reads_as_the_number_missed_and_what_the_rule_asks(ruleset: Ruleset) -> None:
    facts = child_facts(ruleset, missed_in_service_365d=2, missed_all_services_90d=1)

    reasons = reasons_of(ruleset, "WNB-06", facts)

    assert reasons == ["2 missed ENT appointments in the last 365 days; the rule asks for 2 or more"]
    assert rule_sentence(what_happened(ENT_MISS, facts, "9990000018"), reasons) == (
        "The child (NHS 999 000 0018) was not brought to ENT on Mon 16 Nov 2026; 2 missed ENT appointments in the "
        "last 365 days; the rule asks for 2 or more."
    )


def test_a_looked_after_childs_status_reads_without_codes(ruleset: Ruleset) -> None:
    reasons = reasons_of(ruleset, "WNB-01", child_facts(ruleset, safeguarding_plan=True))

    assert reasons == ["a child-protection plan or looked-after status counts for this appointment"]


def test_an_infants_age_reads_in_months(ruleset: Ruleset) -> None:
    reasons = reasons_of(ruleset, "WNB-03", child_facts(ruleset, age_months=3))

    assert reasons == ["the child is 3 months old; the rule asks for under 12 months"]


def test_conditions_that_did_not_hold_are_not_given_as_reasons(ruleset: Ruleset) -> None:
    reasons = reasons_of(ruleset, "WNB-04", child_facts(ruleset, priority="urgent"))

    assert reasons == ["the priority was urgent; the rule asks for one of urgent, two week wait"]


def test_a_condition_the_ruleset_no_longer_has_is_shown_as_written(ruleset: Ruleset) -> None:
    stored = [{"test": "missed_in_service_365d ≥ 4 ($repeat_misses)", "actual": 4, "held": True}]

    assert rule_reasons(ruleset, "WNB-06", stored, "ent") == ["missed_in_service_365d ≥ 4 ($repeat_misses) (was 4)"]


def test_a_services_short_name_reads_in_capitals() -> None:
    assert service_words("ent") == "ENT"
    assert service_words("community-paediatrics") == "community paediatrics"
