"""Loading, validating, versioning and compiling rule files (DOMAIN.md §4; DURABLE_RULES.md)."""

from __future__ import annotations

import json
import re
import shutil
from datetime import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEFAULT_RULES
from wnb.core.domain import Level, Role
from wnb.core.errors import RulesetError
from wnb.core.facts import AGE_FACTS
from wnb.core.interpreter import explain, explain_rule, fired_by_interpreter
from wnb.core.ruleset import (
    ALWAYS_RULE,
    FACTS_ID,
    Ruleset,
    compile_rules,
    content_version,
    load_files,
    untitled_codes,
)
from wnb.rule_files import directory_version, load_ruleset, read_files

# In file order: WNB-09-young-person.yaml sorts before WNB-09.yaml.
RULE_IDS = [*(f"WNB-{n:02d}" for n in range(1, 9)), "WNB-09-young-person", *(f"WNB-{n:02d}" for n in range(9, 16))]


def copy_rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def load_error(directory: Path) -> str:
    with pytest.raises(RulesetError) as caught:
        load_ruleset(directory)
    return str(caught.value)


# ---- the default ruleset ----


def test_the_default_ruleset_loads(ruleset: Ruleset) -> None:
    assert ruleset.settings.name
    assert Path(ruleset.directory) == DEFAULT_RULES


def test_the_default_ruleset_has_wnb_01_to_wnb_15_in_order(ruleset: Ruleset) -> None:
    assert [rule.id for rule in ruleset.rules] == RULE_IDS


def test_the_version_is_a_64_hex_sha256(ruleset: Ruleset) -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", ruleset.version)
    assert ruleset.short_version == ruleset.version[:12]


# The version of rules/default as every audit evaluation record names it. Reading a ruleset from a mapping of
# file names to bytes (issue 14) did not change it; a change to the rule files changes it, deliberately, and so
# (issue 15) does a change to its hazard log or its scenario files, and (issue 16) the `titles:` map.
DEFAULT_VERSION = "f30a16a4c19aba9babc50b9febbdf6b62ead79574d561d01a60b02c2476e9f3a"


def test_the_default_rulesets_version_is_pinned(ruleset: Ruleset) -> None:
    assert ruleset.version == DEFAULT_VERSION


def test_the_version_is_the_content_version_of_the_directorys_files(ruleset: Ruleset) -> None:
    assert ruleset.version == content_version(read_files(DEFAULT_RULES)) == directory_version(DEFAULT_RULES)


def test_a_ruleset_loads_from_a_mapping_of_file_names_to_bytes_alone(ruleset: Ruleset) -> None:
    loaded = load_files(read_files(DEFAULT_RULES), "stored:default")
    assert loaded.version == ruleset.version
    assert loaded.rules == ruleset.rules and loaded.settings == ruleset.settings
    assert loaded.directory == "stored:default"


def test_a_file_that_is_not_yaml_is_not_part_of_the_version() -> None:
    files = read_files(DEFAULT_RULES)
    assert content_version({**files, "notes.txt": b"anything", "scenarios/README.md": b"x"}) == content_version(files)


# Hashed by the code before hazard logs and scenarios were part of a version (issue 14's content_version).
PLAIN_RULESET = {"ruleset.yaml": b"name: a trust ruleset\n", "T-01.yaml": b"id: T-01\n", "T-02.yaml": b"id: T-02\n"}
PLAIN_VERSION = "23f64adad2fe7b7f6d08323cbc13c858d0891431f544bfcec65fe3f8f1223c0c"


def test_a_ruleset_without_hazard_log_or_scenarios_keeps_the_version_it_had_before_they_were_hashed() -> None:
    assert content_version(PLAIN_RULESET) == PLAIN_VERSION


def test_the_hazard_log_and_the_scenarios_are_read_with_the_ruleset_but_are_not_rule_files(ruleset: Ruleset) -> None:
    files = read_files(DEFAULT_RULES)
    assert "scenarios/wnb-01-safeguarding-plan.yaml" in files
    assert [rule.id for rule in load_files(files, "stored").rules] == RULE_IDS


def test_the_version_changes_when_the_hazard_log_changes() -> None:
    files = {**PLAIN_RULESET, "hazards.yaml": b"hazards: []\n"}
    assert content_version(files) != PLAIN_VERSION
    assert content_version({**files, "hazards.yaml": b"hazards: []\n# reviewed\n"}) != content_version(files)


def test_a_rule_file_that_is_not_utf8_is_named() -> None:
    files = {**read_files(DEFAULT_RULES), "WNB-01.yaml": b"id: \xff\xfe"}
    with pytest.raises(RulesetError, match="stored/WNB-01.yaml: not valid YAML"):
        load_files(files, "stored")


def test_an_unchanged_copy_elsewhere_has_the_same_version(ruleset: Ruleset, tmp_path: Path) -> None:
    assert load_ruleset(copy_rules(tmp_path)).version == ruleset.version


def test_the_version_changes_when_a_rule_file_changes(ruleset: Ruleset, tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "WNB-06.yaml", "title: A child has repeatedly", "title: A child has often")
    assert load_ruleset(directory).version != ruleset.version


def test_the_version_changes_when_only_a_comment_changes(ruleset: Ruleset, tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    with (directory / "WNB-14.yaml").open("a", encoding="utf-8") as file:
        file.write("# reviewed by the named nurse\n")
    assert load_ruleset(directory).version != ruleset.version


def test_the_version_changes_when_a_parameter_changes(ruleset: Ruleset, tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "ruleset.yaml", "repeat_misses: 2", "repeat_misses: 3")
    changed = load_ruleset(directory)
    assert changed.version != ruleset.version
    assert changed.param("repeat_misses") == 3


def test_the_version_changes_when_a_rule_file_is_renamed(ruleset: Ruleset, tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    (directory / "WNB-14.yaml").rename(directory / "WNB-14-lost-to-follow-up.yaml")
    assert load_ruleset(directory).version != ruleset.version


def test_the_version_changes_when_a_scenario_file_is_added(ruleset: Ruleset, tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    (directory / "scenarios" / "extra.yaml").write_text("name: extra\nsteps: []\n", encoding="utf-8")
    assert load_ruleset(directory).version != ruleset.version


def test_the_version_changes_when_a_scenarios_expectation_is_edited(ruleset: Ruleset, tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "scenarios" / "wnb-06-repeat-in-service.yaml", "status: active", "status: inactive")
    assert load_ruleset(directory).version != ruleset.version


def test_the_default_parameters_are_the_numbers_of_the_decision_chart(ruleset: Ruleset) -> None:
    assert ruleset.settings.parameters == {
        "child_under_years": 18,
        "did_not_attend_label_from_years": 16,
        "infant_under_months": 12,
        "repeat_misses": 2,
        "mash_misses": 3,
        "cancellation_pattern": 3,
        "plan_counts_days_after_end": 365,
        "acknowledge_within_working_days": 3,
    }


def test_the_default_counts_have_the_windows_of_the_decision_chart(ruleset: Ruleset) -> None:
    counts = {name: (spec.count, spec.services, spec.window_days) for name, spec in ruleset.settings.counts.items()}
    assert counts == {
        "missed_in_service_365d": ("missed", "this", 365),
        "missed_all_services_90d": ("missed", "all", 90),
        "missed_all_services_365d": ("missed", "all", 365),
        "patient_cancellations_183d": ("patient-cancellation", "all", 183),
    }


def test_the_default_working_day_ends_at_1700(ruleset: Ruleset) -> None:
    assert ruleset.settings.calendar.working_day_ends == time(17)


def test_the_default_follow_up_deadline_and_discharge_review_match_the_chart(ruleset: Ruleset) -> None:
    assert ruleset.settings.follow_up.deadline_working_days == 20
    assert ruleset.settings.discharge_review.window_days == 365
    assert ruleset.settings.discharge_review.review_task == "clinician-review"


def test_the_default_escalation_chains_match_the_chart(ruleset: Ruleset) -> None:
    assert ruleset.settings.escalation.delay_working_days == 1
    booking, clinician = Role.BOOKING_TEAM, Role.CLINICIAN
    assert ruleset.escalation_chain(booking) == (booking, clinician, Role.NAMED_NURSE)
    assert ruleset.escalation_chain(clinician) == (clinician, Role.NAMED_NURSE, Role.SAFEGUARDING_LEAD)
    assert ruleset.escalation_chain(Role.SAFEGUARDING_NURSE) == (
        Role.SAFEGUARDING_NURSE,
        Role.NAMED_NURSE,
        Role.SAFEGUARDING_LEAD,
    )
    assert ruleset.escalation_chain(Role.NAMED_NURSE) == (Role.NAMED_NURSE, Role.SAFEGUARDING_LEAD)
    assert ruleset.escalation_chain(Role.SAFEGUARDING_LEAD) == (Role.SAFEGUARDING_LEAD,)


BK, CL, SN, NN = "booking-team", "clinician", "safeguarding-nurse", "named-nurse"
SWD, WD1, WD2, WD5, H24 = "same-working-day", "1-working-day", "2-working-days", "5-working-days", "24-hours"
CHART: dict[str, tuple[str, tuple[str, str] | None, list[tuple[str, str, str]]]] = {
    "WNB-01": (
        "missed-appointment",
        ("safeguarding-plan-wnb", "red"),
        [
            ("notify-social-worker", SN, SWD),
            ("safeguarding-review", NN, SWD),
            ("reoffer-appointment", BK, WD1),
            ("inform-gp", BK, WD1),
            ("inform-health-visitor-or-school-nurse", BK, WD1),
        ],
    ),
    "WNB-02": (
        "missed-appointment",
        ("lead-professional-wnb", "amber"),
        [
            ("inform-lead-professional", SN, WD1),
            ("reoffer-appointment", BK, WD1),
            ("inform-gp", BK, WD1),
            ("inform-health-visitor-or-school-nurse", BK, WD1),
        ],
    ),
    "WNB-03": (
        "missed-appointment",
        ("infant-wnb", "amber"),
        [("contact-family", CL, SWD), ("inform-health-visitor-or-school-nurse", BK, WD1)],
    ),
    "WNB-04": ("missed-appointment", ("high-clinical-need-wnb", "amber"), [("clinician-review", CL, WD1)]),
    "WNB-05": ("missed-appointment", ("possible-medical-neglect", "red"), [("safeguarding-review", NN, WD1)]),
    "WNB-06": (
        "missed-appointment",
        ("repeat-wnb", "amber"),
        [
            ("clinician-review", CL, WD2),
            ("safeguarding-discussion", SN, WD2),
            ("contact-family", CL, WD1),
            ("inform-gp", BK, WD1),
            ("inform-health-visitor-or-school-nurse", BK, WD1),
        ],
    ),
    "WNB-07": (
        "missed-appointment",
        ("consider-mash-referral", "red"),
        [("consider-mash-referral", SN, H24)],
    ),
    "WNB-08": ("missed-appointment", None, [("clinician-review", CL, WD1)]),
    "WNB-09": (
        "missed-appointment",
        None,
        [("reoffer-appointment", BK, WD2), ("letter-to-parent", BK, WD2), ("inform-gp", BK, WD2)],
    ),
    "WNB-10": ("patient-cancellation", ("cancellation-pattern", "amber"), [("clinician-review", CL, WD5)]),
    "WNB-11": ("missed-appointment", ("adult-not-brought", "amber"), [("adult-wellbeing-review", CL, WD2)]),
    "WNB-12": ("discharge", ("discharge-without-review", "amber"), [("discharge-review", CL, WD1)]),
    "WNB-13": ("discharge", ("discharge-with-safeguarding-plan", "red"), [("safeguarding-review", NN, SWD)]),
    "WNB-09-young-person": (
        "missed-appointment",
        None,
        [("reoffer-appointment", BK, WD2), ("letter-to-young-person", BK, WD2), ("inform-gp", BK, WD2)],
    ),
    "WNB-14": ("follow-up-deadline", ("lost-to-follow-up", "amber"), [("follow-up-check", BK, WD1)]),
    "WNB-15": ("missed-appointment", None, [("confirm-date-of-birth", BK, WD1)]),
}


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_each_default_rule_has_the_trigger_flag_and_tasks_of_the_decision_chart(ruleset: Ruleset, rule_id: str) -> None:
    rule = ruleset.rule(rule_id)
    trigger, flag, tasks = CHART[rule_id]
    assert rule.trigger == trigger
    assert (None if rule.flag is None else (rule.flag.code, rule.flag.level.value)) == flag
    assert sorted((task.code, task.owner.value, str(task.due_rule)) for task in rule.tasks) == sorted(tasks)


# ---- validation errors name the file, the rule id and the field ----


def test_an_unknown_fact_is_an_error_naming_file_rule_and_fact(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "WNB-03.yaml", "fact: age_months", "fact: age_weeks")
    message = load_error(directory)
    assert "WNB-03.yaml" in message
    assert "rule WNB-03" in message
    assert "age_weeks" in message
    assert "unknown fact" in message


def test_an_unknown_parameter_is_an_error_naming_file_rule_fact_and_parameter(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "WNB-03.yaml", "$infant_under_months", "$nope")
    message = load_error(directory)
    assert "WNB-03.yaml" in message
    assert "rule WNB-03" in message
    assert "age_months" in message
    assert "unknown parameter $nope" in message


def test_a_value_of_the_wrong_type_is_an_error_naming_file_rule_and_fact(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "WNB-03.yaml", "less_than: $infant_under_months", "less_than: twelve")
    message = load_error(directory)
    assert "WNB-03.yaml" in message
    assert "rule WNB-03" in message
    assert "age_months" in message
    assert "'twelve' is str, the fact is int" in message


def test_a_number_given_for_a_boolean_fact_is_an_error(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "WNB-01.yaml", "{fact: safeguarding_plan, is: true}", "{fact: safeguarding_plan, is: 1}")
    message = load_error(directory)
    assert "rule WNB-01" in message
    assert "safeguarding_plan" in message
    assert "1 is int, the fact is bool" in message


def test_a_parameter_of_the_wrong_type_is_an_error_at_the_rule_that_uses_it(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "ruleset.yaml", "mash_misses: 3", 'mash_misses: "3"')
    message = load_error(directory)
    assert "WNB-07.yaml" in message
    assert "rule WNB-07" in message
    assert "missed_all_services_365d" in message


def test_a_numeric_test_of_a_text_fact_is_an_error(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "WNB-11.yaml", "{fact: label, is: adult-not-brought}", "{fact: label, at_least: 3}")
    message = load_error(directory)
    assert "rule WNB-11" in message
    assert "at_least needs a number fact, label is str" in message


def test_a_missing_trigger_is_an_error_naming_file_rule_and_field(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "WNB-05.yaml", "trigger: missed-appointment\n", "")
    message = load_error(directory)
    assert "WNB-05.yaml" in message
    assert "rule WNB-05" in message
    assert "trigger" in message
    assert "Field required" in message


def test_an_unknown_trigger_is_an_error_naming_the_field(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "WNB-05.yaml", "trigger: missed-appointment", "trigger: missed")
    message = load_error(directory)
    assert "rule WNB-05" in message
    assert "trigger" in message


def test_an_unknown_owner_role_is_an_error_naming_file_rule_and_field(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "WNB-07.yaml", "owner: safeguarding-nurse", "owner: social-worker")
    message = load_error(directory)
    assert "WNB-07.yaml" in message
    assert "rule WNB-07" in message
    assert "tasks.0.owner" in message


def test_a_bad_due_rule_is_an_error_naming_file_rule_and_field(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "WNB-07.yaml", "due: 24-hours", "due: tomorrow")
    message = load_error(directory)
    assert "WNB-07.yaml" in message
    assert "rule WNB-07" in message
    assert "tasks.0.due" in message
    assert "unknown due rule 'tomorrow'" in message


def test_a_duplicate_rule_id_is_an_error_naming_both_files(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    shutil.copy(directory / "WNB-09.yaml", directory / "WNB-99.yaml")
    message = load_error(directory)
    assert "WNB-99.yaml: rule WNB-09" in message
    assert "id already used in" in message
    assert "WNB-09.yaml" in message.split("id already used in")[1]


def test_invalid_yaml_is_an_error_naming_the_file(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    (directory / "WNB-04.yaml").write_text("id: WNB-04\nwhen: [unclosed\n", encoding="utf-8")
    message = load_error(directory)
    assert "WNB-04.yaml" in message
    assert "not valid YAML" in message


def test_invalid_yaml_in_ruleset_yaml_is_an_error_naming_the_file(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    (directory / "ruleset.yaml").write_text("name: [broken\n", encoding="utf-8")
    message = load_error(directory)
    assert "ruleset.yaml" in message
    assert "not valid YAML" in message


def test_a_directory_without_ruleset_yaml_is_an_error(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    (directory / "ruleset.yaml").unlink()
    message = load_error(directory)
    assert str(directory) in message
    assert "no ruleset.yaml" in message


def test_a_directory_without_rule_files_is_an_error(tmp_path: Path) -> None:
    directory = tmp_path / "empty"
    directory.mkdir()
    shutil.copy(DEFAULT_RULES / "ruleset.yaml", directory / "ruleset.yaml")
    assert "no rule files" in load_error(directory)


def test_a_rule_with_neither_flag_nor_tasks_is_an_error_naming_file_and_rule(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    path = directory / "WNB-08.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("tasks:")], encoding="utf-8")
    message = load_error(directory)
    assert "WNB-08.yaml" in message
    assert "rule WNB-08" in message
    assert "a rule must raise a flag, ask for tasks, or both" in message


def test_an_unknown_key_in_a_rule_is_an_error_naming_the_key(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "WNB-04.yaml", "trigger: missed-appointment", "trigger: missed-appointment\npriority: 1")
    message = load_error(directory)
    assert "rule WNB-04" in message
    assert "priority" in message


def test_a_condition_with_two_operators_is_an_error(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(
        directory / "WNB-08.yaml",
        "{fact: never_seen_in_service, is: true}",
        "{fact: never_seen_in_service, is: true, is_not: false}",
    )
    message = load_error(directory)
    assert "rule WNB-08" in message
    assert "give exactly one of" in message


def test_an_error_in_ruleset_yaml_names_the_file_and_the_setting(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "ruleset.yaml", "deadline_working_days: 20", "deadline_working_days: 0")
    message = load_error(directory)
    assert "ruleset.yaml" in message
    assert "follow_up.deadline_working_days" in message


def test_a_review_task_no_rule_asks_for_is_an_error(tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    edit(directory / "ruleset.yaml", "review_task: clinician-review", "review_task: clinical-review")
    message = load_error(directory)
    assert "ruleset.yaml" in message
    assert "discharge_review.review_task" in message


def test_more_than_500_rules_testing_one_fact_the_same_way_are_refused(tmp_path: Path) -> None:
    directory = tmp_path / "many"
    directory.mkdir()
    shutil.copy(DEFAULT_RULES / "ruleset.yaml", directory / "ruleset.yaml")
    shutil.copy(DEFAULT_RULES / "WNB-04.yaml", directory / "WNB-04.yaml")  # asks for clinician-review
    for n in range(501):
        (directory / f"X-{n:03d}.yaml").write_text(
            f"id: X-{n:03d}\ntitle: t\ntrigger: missed-appointment\n"
            f"when: [{{fact: age_years, at_least: {n}}}]\n"
            "tasks: [{code: clinician-review, owner: clinician, due: 1-working-day}]\n",
            encoding="utf-8",
        )
    message = load_error(directory)
    assert "rules test age_years with at_least" in message
    assert "at most 500" in message


# ---- compiling to durable-rules ----


def test_compiling_gives_one_rule_per_rule_id_in_order_then_the_catch_all(ruleset: Ruleset) -> None:
    assert list(compile_rules(ruleset)) == [*RULE_IDS, ALWAYS_RULE]


def test_the_catch_all_rule_matches_every_fact_document_at_the_lowest_priority(ruleset: Ruleset) -> None:
    compiled = compile_rules(ruleset)
    catch_all = compiled[ALWAYS_RULE]
    assert catch_all["all"] == [{"m": {"id": FACTS_ID}}]
    assert catch_all["pri"] > max(rule["pri"] for name, rule in compiled.items() if name != ALWAYS_RULE)


@pytest.mark.parametrize("rule_id", [*RULE_IDS, ALWAYS_RULE])
def test_each_compiled_rule_is_a_single_pattern_named_m(ruleset: Ruleset, rule_id: str) -> None:
    compiled = compile_rules(ruleset)[rule_id]
    assert len(compiled["all"]) == 1
    assert list(compiled["all"][0]) == ["m"]


def test_compiled_rules_run_the_action_named_by_their_id_with_file_order_priority(ruleset: Ruleset) -> None:
    compiled = compile_rules(ruleset)
    assert [(name, rule["run"], rule["pri"]) for name, rule in compiled.items() if name in RULE_IDS] == [
        (rule_id, rule_id, n) for n, rule_id in enumerate(RULE_IDS, start=1)
    ]


def test_each_compiled_rule_tests_its_trigger_first(ruleset: Ruleset) -> None:
    compiled = compile_rules(ruleset)
    firsts = {rule_id: compiled[rule_id]["all"][0]["m"]["$and"][0] for rule_id in RULE_IDS}
    assert firsts["WNB-01"] == {"trigger_missed_appointment": True}
    assert firsts["WNB-10"] == {"trigger_patient_cancellation": True}
    assert firsts["WNB-12"] == {"trigger_discharge": True}
    assert firsts["WNB-14"] == {"trigger_follow_up_deadline": True}


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [*value.keys(), *(s for item in value.values() for s in _strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) else []


def test_compiled_rules_have_their_parameters_resolved(ruleset: Ruleset) -> None:
    compiled = compile_rules(ruleset)
    leftovers = [s for s in _strings(compiled) if s.startswith("$") and s[1:] in ruleset.settings.parameters]
    assert leftovers == []
    assert {"$gte": {"missed_in_service_365d": 2}} in compiled["WNB-05"]["all"][0]["m"]["$and"]


def test_one_of_compiles_to_an_or_of_equalities(ruleset: Ruleset) -> None:
    text = json.dumps(compile_rules(ruleset)["WNB-04"])
    assert '{"$or": [{"priority": "urgent"}, {"priority": "two-week-wait"}]}' in text


def test_compiling_twice_gives_equal_independent_definitions(ruleset: Ruleset) -> None:
    first, second = compile_rules(ruleset), compile_rules(ruleset)
    assert first == second
    first["WNB-01"]["all"].clear()
    assert compile_rules(ruleset)["WNB-01"]["all"]


# ---- the interpreter ----


def _facts(ruleset: Ruleset, **changes: Any) -> dict[str, Any]:
    defaults: dict[type, Any] = {bool: False, int: 0, str: "none"}
    facts = {name: defaults[kind] for name, kind in ruleset.fact_types.items()}
    facts.update(label="was-not-brought", attendance="did-not-attend", service="community-paediatrics", age_known=True)
    facts.update(changes)
    return facts


def test_the_interpreter_explains_every_rule_in_order(ruleset: Ruleset) -> None:
    assert [item.rule_id for item in explain(ruleset, _facts(ruleset))] == RULE_IDS


def test_the_interpreter_lists_the_trigger_first_then_each_condition_with_its_value(ruleset: Ruleset) -> None:
    facts = _facts(ruleset, trigger_missed_appointment=True, is_child=True, missed_in_service_365d=1)
    explanation = explain_rule(ruleset, ruleset.rule("WNB-06"), facts)
    assert explanation.fired is False
    assert [(c.test, c.actual, c.held) for c in explanation.conditions] == [
        ("trigger is missed-appointment", True, True),
        ("is_child = true", True, True),
        ("missed_in_service_365d ≥ 2 ($repeat_misses)", 1, False),
        ("missed_all_services_90d ≥ 2 ($repeat_misses)", 0, False),
    ]


def test_the_interpreter_fires_a_rule_when_its_trigger_and_conditions_hold(ruleset: Ruleset) -> None:
    facts = _facts(ruleset, trigger_missed_appointment=True, is_child=True, missed_all_services_90d=2)
    assert explain_rule(ruleset, ruleset.rule("WNB-06"), facts).fired is True


def test_the_interpreter_does_not_fire_a_rule_whose_trigger_is_false(ruleset: Ruleset) -> None:
    facts = _facts(ruleset, trigger_patient_cancellation=True, is_child=True, missed_all_services_90d=2)
    assert explain_rule(ruleset, ruleset.rule("WNB-06"), facts).fired is False


def test_the_interpreter_does_not_treat_1_as_true(ruleset: Ruleset) -> None:
    facts = _facts(ruleset, trigger_missed_appointment=True, is_child=1)
    assert explain_rule(ruleset, ruleset.rule("WNB-09"), facts).fired is False


def test_the_interpreter_fires_a_one_of_test_on_any_listed_value(ruleset: Ruleset) -> None:
    urgent = _facts(ruleset, trigger_missed_appointment=True, is_child=True, priority="two-week-wait")
    routine = _facts(ruleset, trigger_missed_appointment=True, is_child=True, priority="routine")
    assert explain_rule(ruleset, ruleset.rule("WNB-04"), urgent).fired is True
    assert explain_rule(ruleset, ruleset.rule("WNB-04"), routine).fired is False


def test_a_level_and_role_in_a_rule_are_enums(ruleset: Ruleset) -> None:
    rule = ruleset.rule("WNB-01")
    assert rule.flag is not None and rule.flag.level is Level.RED
    assert rule.tasks[0].owner is Role.SAFEGUARDING_NURSE


# ---- an unknown age (DOMAIN.md §6): the age facts are absent, and no condition on an absent fact holds ----


def _unknown_age(ruleset: Ruleset, **changes: Any) -> dict[str, Any]:
    facts = {name: value for name, value in _facts(ruleset, **changes).items() if name not in AGE_FACTS}
    return {**facts, "age_known": False}


def test_no_condition_holds_on_an_absent_fact_not_even_is_not(ruleset: Ruleset, tmp_path: Path) -> None:
    directory = copy_rules(tmp_path)
    (directory / "WNB-90.yaml").write_text(
        "id: WNB-90\ntitle: not a child\ntrigger: missed-appointment\n"
        "when:\n  - {fact: is_child, is_not: true}\ntasks:\n  - {code: x-check, owner: clinician, due: 24-hours}\n"
    )
    loaded = load_ruleset(directory)
    facts = _unknown_age(loaded, trigger_missed_appointment=True)
    explanation = explain_rule(loaded, loaded.rule("WNB-90"), facts)
    assert explanation.fired is False
    assert [(c.test, c.actual, c.held) for c in explanation.conditions][1] == ("is_child ≠ true", None, False)
    assert "WNB-90" not in fired_by_interpreter(loaded, facts)


def test_wnb_03_cannot_fire_on_an_unknown_age(ruleset: Ruleset) -> None:
    facts = _unknown_age(ruleset, trigger_missed_appointment=True)
    explanation = explain_rule(ruleset, ruleset.rule("WNB-03"), facts)
    assert explanation.fired is False
    assert [(c.actual, c.held) for c in explanation.conditions[1:]] == [(None, False), (None, False)]
    assert fired_by_interpreter(ruleset, facts) == ["WNB-15"]


def test_wnb_01_reaches_an_unknown_age_with_a_plan_through_age_known_false(ruleset: Ruleset) -> None:
    facts = _unknown_age(ruleset, trigger_missed_appointment=True, safeguarding_plan=True)
    assert fired_by_interpreter(ruleset, facts) == ["WNB-01", "WNB-15"]
    assert {"age_known": False} in compile_rules(ruleset)["WNB-01"]["all"][0]["m"]["$and"][1]["$or"]


def test_wnb_09_writes_to_the_parent_under_16_and_to_the_young_person_at_16_and_17(ruleset: Ruleset) -> None:
    child = _facts(ruleset, trigger_missed_appointment=True, is_child=True, label="was-not-brought")
    young = _facts(ruleset, trigger_missed_appointment=True, is_child=True, label="did-not-attend")
    assert "WNB-09" in fired_by_interpreter(ruleset, child)
    assert "WNB-09-young-person" not in fired_by_interpreter(ruleset, child)
    assert "WNB-09-young-person" in fired_by_interpreter(ruleset, young)
    assert "WNB-09" not in fired_by_interpreter(ruleset, young)


# ---- titles: the words of each flag and task code (issue 16) ----


def _without_titles(files: dict[str, bytes]) -> dict[str, bytes]:
    text = files["ruleset.yaml"].decode("utf-8")
    return {**files, "ruleset.yaml": text[: text.index("\n# The words people read")].encode("utf-8") + b"\n"}


def test_every_flag_and_task_code_of_the_default_ruleset_has_a_title(ruleset: Ruleset) -> None:
    assert untitled_codes(ruleset) == []
    assert ruleset.title("safeguarding-plan-wnb") == "Not brought: child known to children's social care"
    assert ruleset.title("notify-social-worker") == "Tell the child's social worker"


def test_the_looked_after_childs_flags_do_not_say_plan(ruleset: Ruleset) -> None:
    for rule_id in ("WNB-01", "WNB-13"):
        flag = ruleset.rule(rule_id).flag
        assert flag is not None
        assert "plan" not in ruleset.title(flag.code).lower()


def test_a_code_the_titles_map_leaves_out_is_named_with_its_rule() -> None:
    files = read_files(DEFAULT_RULES)
    text = files["ruleset.yaml"].decode("utf-8")
    trimmed = re.sub(r"^  (repeat-wnb|contact-family): .*\n", "", text, flags=re.MULTILINE)
    ruleset = load_files({**files, "ruleset.yaml": trimmed.encode("utf-8")}, "stored")

    assert untitled_codes(ruleset) == ["rule WNB-03: task contact-family", "rule WNB-06: flag repeat-wnb"]


def test_a_ruleset_without_a_titles_map_loads_and_reads_its_codes_as_words() -> None:
    ruleset = load_files(_without_titles(read_files(DEFAULT_RULES)), "stored")

    assert ruleset.settings.titles == {}
    assert untitled_codes(ruleset) == []
    assert ruleset.title("notify-social-worker") == "Notify social worker"
    assert ruleset.title("notification-failed") == "Pass on a notification that could not be delivered"
