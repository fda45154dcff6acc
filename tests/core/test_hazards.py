"""The hazard log (rules/default/hazards.yaml, wnb.core.hazards): DCB0129 risk, parsing, and the check that holds
the log, the rules, the scenario files and wnb's own tests to one another (issue 15, part 1)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from itertools import pairwise

import pytest

from tests.conftest import DEFAULT_RULES, ROOT
from wnb.core.errors import RulesetError
from wnb.core.hazard_check import Findings, check_hazard_log, suite_tests, threshold_settings
from wnb.core.hazards import (
    RISK_MATRIX,
    Basis,
    ControlStatus,
    HazardLog,
    Likelihood,
    Severity,
    describe,
    evidence_modules,
    load_hazard_log,
    risk_rating,
)
from wnb.core.ruleset import HAZARDS_FILE, load_files
from wnb.rule_files import read_files, read_suite

TODAY = date(2026, 12, 3)
DEFAULT_FILES = read_files(DEFAULT_RULES)


def edited(files: Mapping[str, bytes], name: str, old: str, new: str) -> dict[str, bytes]:
    text = files[name].decode("utf-8")
    assert old in text, f"{old!r} not in {name}"
    return {**files, name: text.replace(old, new, 1).encode("utf-8")}


def parsed(files: Mapping[str, bytes]) -> HazardLog:
    log = load_hazard_log(files, "stored")
    assert log is not None
    return log


def checked(
    files: Mapping[str, bytes], suite: Mapping[str, bytes] | None | str = "read", today: date = TODAY
) -> Findings:
    ruleset = load_files(files, "stored")
    log = load_hazard_log(files, "stored")
    sources = read_suite(evidence_modules(log), ROOT) if suite == "read" else suite
    assert not isinstance(sources, str)
    return check_hazard_log(ruleset, files, log, sources, today)


def parse_error(files: Mapping[str, bytes]) -> str:
    with pytest.raises(RulesetError) as caught:
        load_hazard_log(files, "stored")
    return str(caught.value)


def only_error(findings: Findings) -> str:
    assert len(findings.errors) == 1, findings.errors
    return findings.errors[0]


# ---- the DCB0129 risk matrix ----


@pytest.mark.parametrize(
    ("severity", "likelihood", "rating"),
    [
        (Severity.MINOR, Likelihood.VERY_LOW, 1),
        (Severity.CATASTROPHIC, Likelihood.VERY_HIGH, 5),
        (Severity.MAJOR, Likelihood.MEDIUM, 3),
        (Severity.MAJOR, Likelihood.LOW, 3),
        (Severity.MAJOR, Likelihood.VERY_LOW, 2),
        (Severity.CONSIDERABLE, Likelihood.LOW, 2),
        (Severity.CATASTROPHIC, Likelihood.VERY_LOW, 3),
        (Severity.MINOR, Likelihood.VERY_HIGH, 3),
        (Severity.SIGNIFICANT, Likelihood.HIGH, 3),
    ],
)
def test_the_risk_rating_is_dcb0129s_matrix(severity: Severity, likelihood: Likelihood, rating: int) -> None:
    assert risk_rating(severity, likelihood) == rating


def test_the_risk_never_falls_as_severity_or_likelihood_rises() -> None:
    for likelihood in Likelihood:
        assert list(RISK_MATRIX[likelihood]) == sorted(RISK_MATRIX[likelihood])
    for lower, higher in pairwise(Likelihood):
        assert all(a <= b for a, b in zip(RISK_MATRIX[lower], RISK_MATRIX[higher], strict=True))


# ---- the default hazard log ----


def test_the_default_log_parses_into_its_hazards_in_order() -> None:
    log = parsed(DEFAULT_FILES)
    assert [hazard.id for hazard in log.hazards] == [f"H-{n:02d}" for n in range(1, len(log.hazards) + 1)]
    assert all(hazard.controls for hazard in log.hazards)


def test_the_default_log_has_the_hazards_the_issue_asks_for() -> None:
    titles = [hazard.title.lower() for hazard in parsed(DEFAULT_FILES).hazards]
    for words in [
        "missed appointment is lost or dropped silently",
        "alert is raised for the wrong child",
        "task nobody picks up",
        "correction withdraws a real miss",
        "letter breaches a 16–17-year-old's confidence",
        "ruleset is changed without review",
        "outage during which no event is evaluated",
        "feed goes silent",
    ]:
        assert any(words in title for title in titles), words


def test_the_default_ruleset_and_its_hazard_log_pass_the_check() -> None:
    findings = checked(DEFAULT_FILES)
    assert findings.errors == ()
    assert findings.passed


def test_every_default_rule_names_the_hazards_it_controls() -> None:
    ruleset = load_files(DEFAULT_FILES, "stored")
    log = parsed(DEFAULT_FILES)
    for rule in ruleset.rules:
        assert rule.hazards, rule.id
        for hazard_id in rule.hazards:
            assert any(control.rule == rule.id for control in log.hazard(hazard_id).controls)


def test_the_default_log_lists_every_threshold_and_says_which_are_untraced_design_choices() -> None:
    log = parsed(DEFAULT_FILES)
    ruleset = load_files(DEFAULT_FILES, "stored")
    assert {threshold.setting for threshold in log.thresholds} == set(threshold_settings(ruleset))
    untraced = [threshold.setting for threshold in log.thresholds if threshold.is_untraced_design_choice]
    assert "parameters.repeat_misses" in untraced and "follow_up.deadline_working_days" in untraced
    # Only the age of childhood comes from the law; every other default number is the default chart's choice.
    assert [t.setting for t in log.thresholds if t.basis is not Basis.DESIGN_CHOICE] == ["parameters.child_under_years"]
    warning = next(w for w in checked(DEFAULT_FILES).warnings if "not yet traced to the trust's own chart" in w)
    assert all(setting in warning for setting in untraced)


def test_the_default_log_is_described_in_one_line() -> None:
    line = describe(parsed(DEFAULT_FILES))
    assert line.startswith("hazard log: 18 hazards, ")
    assert "highest residual risk 3" in line
    assert "14 design choices not yet traced" in line


# ---- parsing ----


def test_a_ruleset_without_a_hazard_log_has_none() -> None:
    files = {name: content for name, content in DEFAULT_FILES.items() if name != HAZARDS_FILE}
    assert load_hazard_log(files, "stored") is None


def test_a_hazard_log_that_is_not_yaml_is_an_error_naming_the_file() -> None:
    message = parse_error({**DEFAULT_FILES, HAZARDS_FILE: b"hazards: [unclosed\n"})
    assert "stored/hazards.yaml: not valid YAML" in message


def test_an_unknown_severity_is_an_error_naming_the_file_the_hazard_and_the_field() -> None:
    files = edited(
        DEFAULT_FILES,
        HAZARDS_FILE,
        "severity: considerable\n    likelihood: low",
        "severity: grave\n    likelihood: low",
    )
    message = parse_error(files)
    assert message.startswith("stored/hazards.yaml: hazard H-02: hazards.1.severity:")


def test_an_unknown_likelihood_in_a_control_is_an_error_naming_the_control_field() -> None:
    files = edited(
        DEFAULT_FILES,
        HAZARDS_FILE,
        "residual: {severity: major, likelihood: low}",
        "residual: {severity: major, likelihood: rare}",
    )
    message = parse_error(files)
    assert "hazard H-01: hazards.0.controls.0.residual.likelihood" in message


def test_a_control_that_is_both_a_rule_and_a_system_is_refused() -> None:
    files = edited(DEFAULT_FILES, HAZARDS_FILE, "      - rule: WNB-15\n", "      - rule: WNB-15\n        system: dob\n")
    assert "a control is either `rule: ID` or `system: NAME`" in parse_error(files)


def test_a_rule_controls_evidence_is_scenarios_not_tests() -> None:
    files = edited(
        DEFAULT_FILES,
        HAZARDS_FILE,
        "      - rule: WNB-15\n",
        "      - rule: WNB-15\n        tests: [tests/core/test_facts.py::test_a_known_age_is_marked_known]\n",
    )
    assert "rule: WNB-15: a rule's evidence is its scenario files" in parse_error(files)


def test_a_residual_risk_above_the_initial_risk_is_refused() -> None:
    files = edited(
        DEFAULT_FILES,
        HAZARDS_FILE,
        "residual: {severity: major, likelihood: low}",
        "residual: {severity: catastrophic, likelihood: high}",
    )
    assert "system: never-drop-a-row: residual risk 5 is above the initial risk 3" in parse_error(files)


def test_a_hazard_listed_twice_is_refused() -> None:
    assert "hazard H-01 is listed twice" in parse_error(edited(DEFAULT_FILES, HAZARDS_FILE, "- id: H-02", "- id: H-01"))


def test_a_test_that_is_not_a_pytest_node_id_of_the_suite_is_refused() -> None:
    files = edited(
        DEFAULT_FILES,
        HAZARDS_FILE,
        "tests/core/test_nhs.py::test_a_wrong_check_digit_fails_the_modulus_11_check",
        "../secrets.py::test_x",
    )
    assert "hazard H-02: hazards.1.controls.0.tests.0" in parse_error(files)


def test_a_rule_naming_a_hazard_that_is_not_an_h_number_fails_to_load() -> None:
    files = edited(DEFAULT_FILES, "WNB-03.yaml", "hazards: [H-13]", "hazards: [infant]")
    with pytest.raises(RulesetError, match="stored/WNB-03.yaml: rule WNB-03: hazards.0"):
        load_files(files, "stored")


# ---- what the check refuses ----


def test_a_rule_naming_an_unknown_hazard_fails_naming_the_rule_and_the_hazard() -> None:
    files = edited(DEFAULT_FILES, "WNB-03.yaml", "hazards: [H-13]", "hazards: [H-13, H-99]")
    assert only_error(checked(files)) == "rule WNB-03 names an unknown hazard H-99: hazards.yaml has no hazard H-99"


def test_a_ruleset_without_a_hazard_log_passes_the_check_with_a_warning() -> None:
    files = {name: content for name, content in DEFAULT_FILES.items() if name != HAZARDS_FILE}
    files = {name: content.replace(b"\nhazards: [", b"\n# hazards: [") for name, content in files.items()}
    findings = checked(files)
    assert findings.passed
    assert findings.warnings == (
        "no hazards.yaml: the ruleset has no hazard log, so no rule is tied to a hazard it controls",
    )


def test_without_a_hazard_log_a_rule_naming_a_hazard_fails() -> None:
    files = {name: content for name, content in DEFAULT_FILES.items() if name != HAZARDS_FILE}
    findings = checked(files)
    assert "rule WNB-01 names an unknown hazard H-09: there is no hazards.yaml" in findings.errors


def test_with_a_hazard_log_a_rule_naming_no_hazard_fails() -> None:
    files = edited(DEFAULT_FILES, "WNB-11.yaml", "hazards: [H-15]", "hazards: []")
    findings = checked(files)
    assert "rule WNB-11 names no hazard it controls (give it hazards: [H-..] from hazards.yaml)" in findings.errors


UNCONTROLLED = """\
  - id: H-19
    title: An uncontrolled hazard
    description: d
    cause: c
    effect: e
    severity: major
    likelihood: low

"""
THRESHOLDS = "# Every number of ruleset.yaml"


def test_a_hazard_with_no_control_fails_naming_the_hazard() -> None:
    files = edited(DEFAULT_FILES, HAZARDS_FILE, THRESHOLDS, UNCONTROLLED + THRESHOLDS)
    assert only_error(checked(files)) == "hazard H-19 (An uncontrolled hazard) has no control"


WNB_11_CONTROL = """\
        scenarios: [wnb-11-adults-with-and-without-care-needs.yaml]
        initial: {severity: major, likelihood: low}
        residual: {severity: major, likelihood: very-low}
        status: implemented
"""


def test_a_hazard_with_only_planned_controls_fails() -> None:
    planned = WNB_11_CONTROL.replace("status: implemented", "status: planned")
    files = edited(DEFAULT_FILES, HAZARDS_FILE, WNB_11_CONTROL, planned)
    assert parsed(files).hazard("H-15").controls[0].status is ControlStatus.PLANNED
    assert only_error(checked(files)) == (
        "hazard H-15 (An adult with care and support needs who is not brought is not followed up) "
        "has no implemented control, only planned ones"
    )


def test_a_control_naming_a_rule_the_ruleset_does_not_have_fails() -> None:
    files = edited(DEFAULT_FILES, HAZARDS_FILE, "      - rule: WNB-11\n", "      - rule: WNB-99\n")
    assert "hazard H-15: control rule: WNB-99: the ruleset has no rule WNB-99" in checked(files).errors


def test_a_rule_control_whose_rule_does_not_name_the_hazard_fails() -> None:
    files = edited(DEFAULT_FILES, "WNB-13.yaml", "hazards: [H-09, H-11]", "hazards: [H-11]")
    assert (
        only_error(checked(files)) == "hazard H-09: control rule: WNB-13: rule WNB-13 does not name H-09 in its hazards"
    )


def test_a_rule_naming_a_hazard_whose_controls_do_not_list_it_fails() -> None:
    files = edited(DEFAULT_FILES, "WNB-11.yaml", "hazards: [H-15]", "hazards: [H-15, H-02]")
    assert only_error(checked(files)) == "rule WNB-11 names hazard H-02, whose controls do not list rule: WNB-11"


def test_a_rule_control_with_no_scenario_files_fails() -> None:
    files = edited(
        DEFAULT_FILES, HAZARDS_FILE, "        scenarios: [wnb-11-adults-with-and-without-care-needs.yaml]\n", ""
    )
    assert (
        only_error(checked(files))
        == "hazard H-15: control rule: WNB-11: no scenario files show that it works (scenarios: [...])"
    )


def test_a_rule_control_naming_a_scenario_the_ruleset_does_not_have_fails() -> None:
    files = {
        name: content
        for name, content in DEFAULT_FILES.items()
        if not name.endswith("wnb-11-adults-with-and-without-care-needs.yaml")
    }
    assert only_error(checked(files)) == (
        "hazard H-15: control rule: WNB-11: "
        "scenario wnb-11-adults-with-and-without-care-needs.yaml is not in scenarios/"
    )


def test_a_scenario_that_does_not_mention_the_rule_is_no_evidence_for_it() -> None:
    # young-person-16-early-may.yaml names WNB-09-young-person, another rule, and never WNB-09 itself.
    files = edited(
        DEFAULT_FILES,
        HAZARDS_FILE,
        "scenarios: [wnb-09-sixteenth-birthday.yaml, wnb-01-safeguarding-plan.yaml]",
        "scenarios: [young-person-16-early-may.yaml]",
    )
    assert only_error(checked(files)) == (
        "hazard H-01: control rule: WNB-09: scenario young-person-16-early-may.yaml does not mention WNB-09"
    )


def test_a_system_control_naming_a_test_module_that_does_not_exist_fails() -> None:
    files = edited(
        DEFAULT_FILES,
        HAZARDS_FILE,
        "tests/notify/test_webhook.py::test_the_webhook_body",
        "tests/notify/test_hooks.py::test_the_webhook_body",
    )
    assert only_error(checked(files)) == (
        "hazard H-18: control system: ids-only-notifications: test "
        "tests/notify/test_hooks.py::test_the_webhook_body_carries_ids_and_codes_only: "
        "no such module in wnb's test suite"
    )


def test_a_system_control_naming_a_test_function_that_does_not_exist_fails() -> None:
    files = edited(
        DEFAULT_FILES,
        HAZARDS_FILE,
        "test_the_webhook_body_carries_ids_and_codes_only",
        "test_the_webhook_body_carries_names",
    )
    assert only_error(checked(files)) == (
        "hazard H-18: control system: ids-only-notifications: test "
        "tests/notify/test_webhook.py::test_the_webhook_body_carries_names: "
        "the module defines no test test_the_webhook_body_carries_names"
    )


def test_an_implemented_system_control_with_no_tests_fails_and_a_planned_one_may_have_none() -> None:
    files = edited(
        DEFAULT_FILES,
        HAZARDS_FILE,
        "        tests:\n          - tests/notify/test_webhook.py::test_the_webhook_body_carries_ids_and_codes_only\n"
        "          - tests/notify/test_channels.py::test_an_email_carries_the_text_and_a_webhook_only_ids_and_codes\n",
        "",
    )
    assert only_error(checked(files)) == (
        "hazard H-18: control system: ids-only-notifications: no tests of wnb's suite show that it works (tests: [...])"
    )
    registry = parsed(DEFAULT_FILES).hazard("H-06").controls[-1]
    assert (registry.status, registry.tests) == (ControlStatus.PLANNED, ())  # and the default log passes


def test_without_wnbs_suite_the_tests_are_not_looked_for_and_a_warning_says_so() -> None:
    files = edited(
        DEFAULT_FILES,
        HAZARDS_FILE,
        "test_the_webhook_body_carries_ids_and_codes_only",
        "test_the_webhook_body_carries_names",
    )
    findings = checked(files, suite=None)
    assert findings.passed
    assert (
        "the system controls' tests were not looked for: wnb's own test suite is not installed here"
        in findings.warnings
    )


def test_a_test_module_that_is_not_python_is_named() -> None:
    suite = {path: b"def test_(:\n" for path in evidence_modules(parsed(DEFAULT_FILES))}
    findings = checked(DEFAULT_FILES, suite=suite)
    assert any(error.endswith("the module is not valid Python (line 1)") for error in findings.errors)


def test_the_suites_tests_are_read_as_pytest_names_them_without_importing_them() -> None:
    source = b"""
import does_not_exist
def test_a(): pass
async def test_b(): pass
def helper(): pass
test_c = factory()
class TestD:
    def test_e(self): pass
    def helper(self): pass
class Other:
    def test_f(self): pass
"""
    assert suite_tests(source) == {"test_a", "test_b", "test_c", "TestD::test_e"}


def test_a_parametrised_test_is_found_by_its_function() -> None:
    files = edited(
        DEFAULT_FILES,
        HAZARDS_FILE,
        "tests/core/test_ruleset.py::test_the_default_rulesets_version_is_pinned",
        "tests/service/test_scenarios.py::test_scenario[wnb-01-safeguarding-plan]",
    )
    assert checked(files).passed


def test_a_threshold_missing_from_the_log_fails() -> None:
    files = edited(DEFAULT_FILES, "ruleset.yaml", "  mash_misses: 3 ", "  mash_misses: 3\n  sibling_misses: 2 ")
    assert only_error(checked(files)) == (
        "hazards.yaml: thresholds: ruleset.yaml's parameters.sibling_misses (2) is not listed: "
        "say where it comes from, or that it is a design choice"
    )


def test_a_threshold_whose_value_changed_fails_until_the_log_is_reviewed() -> None:
    files = edited(DEFAULT_FILES, "ruleset.yaml", "repeat_misses: 2", "repeat_misses: 3")
    assert only_error(checked(files)) == (
        "hazards.yaml: thresholds: parameters.repeat_misses: the log says 2, ruleset.yaml has 3: "
        "review the threshold's entry with the change"
    )
    reviewed = edited(
        files,
        HAZARDS_FILE,
        "setting: parameters.repeat_misses\n    value: 2",
        "setting: parameters.repeat_misses\n    value: 3",
    )
    assert checked(reviewed).passed


def test_a_threshold_naming_a_setting_ruleset_yaml_does_not_have_fails() -> None:
    files = edited(
        DEFAULT_FILES, HAZARDS_FILE, "setting: escalation.delay_working_days", "setting: escalation.delay_days"
    )
    findings = checked(files)
    assert "hazards.yaml: thresholds: escalation.delay_days: ruleset.yaml has no such setting" in findings.errors
    assert any("escalation.delay_working_days (1) is not listed" in error for error in findings.errors)


def test_a_threshold_traced_to_the_trusts_chart_is_no_longer_warned_about() -> None:
    files = edited(
        DEFAULT_FILES,
        HAZARDS_FILE,
        "setting: parameters.repeat_misses\n",
        "setting: parameters.repeat_misses\n    trust_chart: Trust WNB policy v4, section 3.2\n",
    )
    warning = next(w for w in checked(files).warnings if "not yet traced" in w)
    assert warning.startswith("13 thresholds are design choices")
    assert "parameters.repeat_misses" not in warning


def test_a_review_date_that_has_passed_is_a_warning_not_an_error() -> None:
    findings = checked(DEFAULT_FILES, today=date(2027, 4, 1))
    assert findings.passed
    assert "hazard H-06: control system: ruleset-registry: its review date 2027-03-31 has passed" in findings.warnings
