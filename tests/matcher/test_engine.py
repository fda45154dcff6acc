"""The durable-rules adapter agrees with the pure-Python interpreter (DURABLE_RULES.md, "The safe shape").

durable-rules 2.0.28 leaves two pointers of a new session uninitialised and frees them when the session is
deleted; it crashes the process when no action ever ran in that session slot, i.e. when the first document a
fresh process evaluates matches no rule. `test_a_fresh_process_whose_first_document_matches_no_rule_survives`
checks that in a subprocess. So that a regression cannot take the whole test run down with it, every
in-process test here first evaluates a document that fires a rule on each ruleset it uses (`warm`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import DEFAULT_RULES
from wnb.core.domain import Appointment, PersonContext, SafeguardingStatus, StatusKind
from wnb.core.errors import EngineError
from wnb.core.facts import AGE_FACTS, event_facts, follow_up_facts
from wnb.core.interpreter import explain, fired_by_interpreter
from wnb.core.nhs import Attendance, Outcome, Priority
from wnb.core.ruleset import Ruleset
from wnb.matcher.durable import evaluate, register, ruleset_name
from wnb.rule_files import load_ruleset

LABELS = ["was-not-brought", "did-not-attend", "adult-not-brought"]
PRIORITIES = ["none", *(p.value for p in Priority)]
OUTCOMES = ["none", *(o.value for o in Outcome)]
ATTENDANCES = [a.value for a in Attendance]
SERVICES = ["community-paediatrics", "paediatric-diabetes", "audiology", "camhs"]

# Fact-specific strategies; any other fact is drawn by its declared type. Counts range over 0..20, around
# the thresholds 2 and 3; ages over 0..240 months and 0..120 years.
SPECIAL: dict[str, st.SearchStrategy[Any]] = {
    "age_months": st.integers(0, 240),
    "age_years": st.integers(0, 120),
    "label": st.sampled_from(LABELS),
    "priority": st.sampled_from(PRIORITIES),
    "outcome": st.sampled_from(OUTCOMES),
    "attendance": st.sampled_from(ATTENDANCES),
    "service": st.sampled_from(SERVICES),
}
SPECIAL["age_known"] = st.sampled_from([True, True, True, False])  # mostly known, so every rule gets its turn
BY_TYPE: dict[type, st.SearchStrategy[Any]] = {int: st.integers(0, 20), str: st.sampled_from(SERVICES)}


def interpreted(ruleset: Ruleset, facts: dict[str, Any]) -> list[str]:
    return [item.rule_id for item in explain(ruleset, facts) if item.fired]


def documents(ruleset: Ruleset) -> st.SearchStrategy[dict[str, Any]]:
    """Every fact of the ruleset, typed, never null. The booleans come from one bit mask (one draw instead
    of seventeen keeps 3,000 examples fast); each other fact is its own draw."""
    names = sorted(ruleset.fact_types)
    flags = [name for name in names if ruleset.fact_types[name] is bool and name != "age_known"]
    others = [name for name in names if name not in flags]

    def build(drawn: tuple[Any, ...]) -> dict[str, Any]:
        mask, *values = drawn
        facts = {name: bool(mask >> bit & 1) for bit, name in enumerate(flags)}
        facts.update(zip(others, values, strict=True))
        if not facts["age_known"]:  # an unknown age: the age facts are absent, as event_facts leaves them
            for name in AGE_FACTS:
                del facts[name]
        return facts

    parts = [st.integers(0, 2 ** len(flags) - 1)]
    parts += [SPECIAL[name] if name in SPECIAL else BY_TYPE[ruleset.fact_types[name]] for name in others]
    return st.tuples(*parts).map(build)


DEFAULT = load_ruleset(DEFAULT_RULES)


def a_document(ruleset: Ruleset = DEFAULT, **changes: Any) -> dict[str, Any]:
    defaults: dict[type, Any] = {bool: False, int: 0, str: "none"}
    facts = {name: defaults[kind] for name, kind in ruleset.fact_types.items()}
    facts.update(
        label="was-not-brought",
        attendance="did-not-attend",
        service="community-paediatrics",
        age_known=True,
        age_years=7,
        age_months=84,
    )
    facts.update(changes)
    return facts


def a_child_missing(ruleset: Ruleset = DEFAULT) -> dict[str, Any]:
    """A child's missed appointment with nothing else known: WNB-09 only."""
    return a_document(ruleset, trigger_missed_appointment=True, is_child=True)


def warm(ruleset: Ruleset) -> Ruleset:
    """Evaluate one document that fires a rule, so the ruleset's state slot is initialised (module doc)."""
    assert evaluate(ruleset, a_child_missing(ruleset)) == ["WNB-09"]
    return ruleset


@pytest.fixture(autouse=True, scope="module")
def _warm_default() -> None:
    warm(DEFAULT)


# ---- the bug this module works around: a fresh process, no rule matching ----


def test_a_fresh_process_whose_first_document_matches_no_rule_survives(tmp_path: Path) -> None:
    # DOMAIN.md §4: an adult without care and support needs who misses an appointment gets no flag and no
    # task, and the evaluation is still audited; it must not kill the process.
    code = textwrap.dedent(
        f"""
        from datetime import UTC, date, datetime
        from wnb.core.domain import Appointment
        from wnb.matcher.durable import evaluate
        from wnb.core.facts import event_facts
        from wnb.core.nhs import Attendance
        from wnb.rule_files import load_ruleset
        ruleset = load_ruleset({str(DEFAULT_RULES)!r})
        at = datetime(2026, 3, 2, 10, tzinfo=UTC)
        missed = Appointment(source="pas", appointment_id="a1", service="community-paediatrics",
                             appointment_at=at, attendance=Attendance.DID_NOT_ATTEND, recorded_at=at)
        print(evaluate(ruleset, event_facts(ruleset, missed, [], date(1980, 1, 1), None)))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr[-2000:]


# ---- differential: the C engine agrees with the interpreter ----


@settings(max_examples=3000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(facts=documents(DEFAULT))
def test_the_matcher_fires_exactly_the_rules_the_interpreter_fires(facts: dict[str, Any]) -> None:
    # The interpreter's fast predicates (run on every evaluation) and its explanation must agree too.
    assert evaluate(DEFAULT, facts) == interpreted(DEFAULT, facts) == fired_by_interpreter(DEFAULT, facts)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    facts=documents(DEFAULT).map(
        # Only the missed-appointment trigger, for a child: where most rules combine.
        lambda doc: {
            **doc,
            "trigger_missed_appointment": True,
            "trigger_patient_cancellation": False,
            "trigger_discharge": False,
            "trigger_follow_up_deadline": False,
            "age_known": True,
            "is_child": True,
            "age_years": doc.get("age_years", 7),
            "age_months": doc.get("age_months", 84),
            "label": "did-not-attend" if doc.get("label") == "did-not-attend" else "was-not-brought",
        }
    )
)
def test_the_matcher_agrees_with_the_interpreter_on_a_childs_missed_appointment(
    facts: dict[str, Any],
) -> None:
    fired = evaluate(DEFAULT, facts)
    assert fired == interpreted(DEFAULT, facts)
    # WNB-09 writes to the parent of a child under 16, to the young person of 16 or 17 (never both).
    assert ("WNB-09" in fired) != ("WNB-09-young-person" in fired)
    assert "WNB-15" not in fired


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    facts=documents(DEFAULT).map(
        # A missed appointment of unknown age: the age facts are absent, whatever else the document holds.
        lambda doc: {
            **{name: value for name, value in doc.items() if name not in AGE_FACTS},
            "trigger_missed_appointment": True,
            "age_known": False,
        }
    )
)
def test_the_matcher_agrees_with_the_interpreter_on_an_unknown_age(facts: dict[str, Any]) -> None:
    fired = evaluate(DEFAULT, facts)
    assert fired == interpreted(DEFAULT, facts) == fired_by_interpreter(DEFAULT, facts)
    # No age condition holds on an absent fact: only WNB-15, and WNB-01 through `age_known: false`.
    assert "WNB-15" in fired
    assert set(fired) <= {"WNB-01", "WNB-15"}
    assert ("WNB-01" in fired) == facts["safeguarding_plan"]


def test_the_generated_documents_are_complete_typed_and_make_every_rule_fire() -> None:
    seen: set[str] = set()

    @settings(max_examples=1000, deadline=None, database=None, derandomize=True)
    @given(facts=documents(DEFAULT))
    def collect(facts: dict[str, Any]) -> None:
        types = DEFAULT.fact_types
        known = {name: kind for name, kind in types.items() if facts["age_known"] or name not in AGE_FACTS}
        assert {name: type(value) for name, value in facts.items()} == known
        seen.update(interpreted(DEFAULT, facts))

    collect()
    assert seen == {rule.id for rule in DEFAULT.rules}


# ---- facts from real history through the matcher ----

T = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _appt(at: datetime, attendance: Attendance, **more: Any) -> Appointment:
    return Appointment(
        source="pas",
        appointment_id=f"a{at.isoformat()}",
        service="community-paediatrics",
        appointment_at=at,
        attendance=attendance,
        recorded_at=at + timedelta(hours=1),
        **more,
    )


def test_a_child_on_a_plan_missing_a_first_appointment_fires_wnb_01_08_09(ruleset: Ruleset) -> None:
    person = PersonContext(
        nhs_number="9990000018",
        date_of_birth=date(2019, 5, 1),
        statuses=(SafeguardingStatus(kind=StatusKind.CHILD_PROTECTION_PLAN, start=date(2025, 1, 1)),),
    )
    facts = event_facts(ruleset, _appt(T, Attendance.DID_NOT_ATTEND), [], date(2019, 5, 1), person)
    assert evaluate(ruleset, facts) == ["WNB-01", "WNB-08", "WNB-09"]


def test_a_second_miss_of_an_urgent_child_fires_possible_medical_neglect(ruleset: Ruleset) -> None:
    history = [
        _appt(T - timedelta(days=40), Attendance.ATTENDED),
        _appt(T - timedelta(days=20), Attendance.LATE_NOT_SEEN),
    ]
    event = _appt(T, Attendance.DID_NOT_ATTEND, priority=Priority.URGENT)
    facts = event_facts(ruleset, event, history, date(2019, 5, 1), None)
    assert evaluate(ruleset, facts) == ["WNB-04", "WNB-05", "WNB-06", "WNB-09"]


def test_an_adult_without_care_needs_missing_an_appointment_fires_nothing(ruleset: Ruleset) -> None:
    facts = event_facts(ruleset, _appt(T, Attendance.DID_NOT_ATTEND), [], date(1980, 1, 1), None)
    assert evaluate(ruleset, facts) == []


def test_the_matcher_fires_only_wnb_15_on_the_miss_of_a_person_of_unknown_age(ruleset: Ruleset) -> None:
    # Read as 0, an unknown age would be an infant: WNB-03, WNB-08 and WNB-09. Absent, it is no age at all.
    facts = event_facts(ruleset, _appt(T, Attendance.DID_NOT_ATTEND), [], None, None)
    assert not set(AGE_FACTS) & set(facts)
    assert evaluate(ruleset, facts) == fired_by_interpreter(ruleset, facts) == ["WNB-15"]


def test_the_matcher_fires_wnb_01_and_wnb_15_for_an_unknown_age_with_a_plan(ruleset: Ruleset) -> None:
    person = PersonContext(
        nhs_number="9990000018",
        statuses=(SafeguardingStatus(kind=StatusKind.LOOKED_AFTER, start=date(2025, 1, 1)),),
    )
    facts = event_facts(ruleset, _appt(T, Attendance.DID_NOT_ATTEND), [], None, person)
    assert evaluate(ruleset, facts) == fired_by_interpreter(ruleset, facts) == ["WNB-01", "WNB-15"]


def test_a_child_lost_to_follow_up_fires_wnb_14(ruleset: Ruleset) -> None:
    missed = _appt(T, Attendance.DID_NOT_ATTEND)
    facts = follow_up_facts(ruleset, missed, [missed], date(2019, 5, 1), None)
    assert evaluate(ruleset, facts) == ["WNB-14"]


def test_an_attended_appointment_fires_nothing(ruleset: Ruleset) -> None:
    facts = event_facts(ruleset, _appt(T, Attendance.ATTENDED), [], date(2019, 5, 1), None)
    assert evaluate(ruleset, facts) == []


# ---- the safe shape ----


def test_evaluation_is_deterministic(ruleset: Ruleset) -> None:
    facts = a_document(
        ruleset,
        trigger_missed_appointment=True,
        is_child=True,
        age_months=6,
        safeguarding_plan=True,
        missed_all_services_365d=3,
        never_seen_in_service=True,
    )
    first = evaluate(ruleset, facts)
    assert first == ["WNB-01", "WNB-03", "WNB-07", "WNB-08", "WNB-09"]
    assert evaluate(ruleset, dict(facts)) == first


def test_evaluation_does_not_change_the_fact_document(ruleset: Ruleset) -> None:
    facts = a_document(ruleset, trigger_missed_appointment=True, is_child=True)
    before = dict(facts)
    evaluate(ruleset, facts)
    assert facts == before


def test_more_than_1024_evaluations_in_a_row_work(ruleset: Ruleset) -> None:
    firing = a_document(ruleset, trigger_missed_appointment=True, is_child=True, missed_in_service_365d=2)
    quiet = a_document(ruleset)
    for n in range(1100):
        if n % 2:
            assert evaluate(ruleset, quiet) == []
        else:
            assert evaluate(ruleset, firing) == ["WNB-06", "WNB-09"]


def test_a_document_no_rule_matches_gives_no_rules(ruleset: Ruleset) -> None:
    assert evaluate(ruleset, a_document(ruleset)) == []


@pytest.mark.parametrize("fact", ["age_years", "is_child", "label", "missed_in_service_365d"])
def test_a_null_fact_raises_an_engine_error_naming_it(ruleset: Ruleset, fact: str) -> None:
    facts = a_document(ruleset, trigger_missed_appointment=True, is_child=True)
    facts[fact] = None
    with pytest.raises(EngineError, match=f"fact {fact} is null"):
        evaluate(ruleset, facts)


def test_the_engine_still_works_after_a_refused_document(ruleset: Ruleset) -> None:
    with pytest.raises(EngineError):
        evaluate(ruleset, a_document(ruleset, is_child=None))
    assert evaluate(ruleset, a_child_missing(ruleset)) == ["WNB-09"]


def test_the_ruleset_name_carries_the_version(ruleset: Ruleset) -> None:
    assert ruleset_name(ruleset) == f"wnb_{ruleset.version[:32]}"


def test_registering_the_same_ruleset_twice_is_harmless(ruleset: Ruleset) -> None:
    assert register(ruleset) == register(ruleset)
    assert evaluate(ruleset, a_child_missing(ruleset)) == ["WNB-09"]


# ---- a second ruleset in the same process ----


def _stricter(tmp_path: Path) -> Ruleset:
    directory = tmp_path / "stricter"
    shutil.copytree(DEFAULT_RULES, directory)
    settings_path = directory / "ruleset.yaml"
    text = settings_path.read_text(encoding="utf-8")
    assert "repeat_misses: 2" in text
    settings_path.write_text(text.replace("repeat_misses: 2", "repeat_misses: 3", 1), encoding="utf-8")
    return warm(load_ruleset(directory))


@pytest.fixture(scope="module")
def stricter(tmp_path_factory: pytest.TempPathFactory) -> Ruleset:
    return _stricter(tmp_path_factory.mktemp("rules"))


def test_a_second_ruleset_is_registered_under_its_own_name(ruleset: Ruleset, stricter: Ruleset) -> None:
    assert stricter.version != ruleset.version
    assert ruleset_name(stricter) != ruleset_name(ruleset)
    assert register(stricter) == ruleset_name(stricter)


def test_a_second_ruleset_with_a_changed_threshold_evaluates_alongside_the_default(
    ruleset: Ruleset, stricter: Ruleset
) -> None:
    two_misses = a_document(ruleset, trigger_missed_appointment=True, is_child=True, missed_in_service_365d=2)
    three_misses = {**two_misses, "missed_in_service_365d": 3}
    assert evaluate(ruleset, two_misses) == ["WNB-06", "WNB-09"]
    assert evaluate(stricter, two_misses) == ["WNB-09"]
    assert evaluate(stricter, three_misses) == ["WNB-06", "WNB-09"]
    assert evaluate(ruleset, two_misses) == ["WNB-06", "WNB-09"]


def test_a_second_copy_of_a_ruleset_in_another_directory_is_the_same_ruleset(stricter: Ruleset, tmp_path: Path) -> None:
    again = _stricter(tmp_path)
    assert ruleset_name(again) == ruleset_name(stricter)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(facts=documents(DEFAULT))
def test_a_second_ruleset_agrees_with_its_own_interpreter(stricter: Ruleset, facts: dict[str, Any]) -> None:
    assert evaluate(stricter, facts) == interpreted(stricter, facts)
    assert evaluate(DEFAULT, facts) == interpreted(DEFAULT, facts)
