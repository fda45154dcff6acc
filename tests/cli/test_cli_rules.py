"""`wnb rules check` and `wnb rules test`: a ruleset checked (its hazard log and titles among it) and its
scenarios run."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.cli.running import RULES, assert_one_line_error, run_in


def test_rules_check_of_the_default_ruleset_exits_0_and_prints_its_version(tmp_path: Path) -> None:
    result = run_in(tmp_path, "rules", "check", str(RULES), columns=300)

    assert result.code == 0, result.err
    assert re.search(r"valid, version [0-9a-f]{8,}, 16 rules", result.out)
    for number in range(1, 16):
        assert f"WNB-{number:02d}" in result.out
    assert "WNB-09-young-person" in result.out
    assert "WNB-07 on missed-appointment" in result.out and "controls H-10" in result.out
    assert re.search(r"^hazard log: 18 hazards, \d+ controls", result.out, re.MULTILINE)
    assert "wnb: error" not in result.err
    assert "thresholds are design choices not yet traced to the trust's own chart" in result.err


def _default_with(tmp_path: Path, name: str, change: Callable[[str], str]) -> Path:
    """A copy of the default ruleset under `tmp_path` whose file `name` reads as `change` makes it."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    edited = rules / name
    edited.write_text(change(edited.read_text(encoding="utf-8")), encoding="utf-8")
    return rules


def test_rules_check_refuses_a_rule_naming_an_unknown_hazard(tmp_path: Path) -> None:
    unknown = "hazards: [H-10, H-42]"
    rules = _default_with(tmp_path, "WNB-07.yaml", lambda text: text.replace("hazards: [H-10]", unknown))

    result = run_in(tmp_path, "rules", "check", str(rules))

    assert result.code == 1
    assert_one_line_error(result, "rule WNB-07 names an unknown hazard H-42", "hazards.yaml has no hazard H-42")
    assert "valid" not in result.out


def test_rules_check_of_a_ruleset_without_a_hazard_log_passes_with_a_warning(tmp_path: Path) -> None:
    # A trust's own ruleset from before hazard logs: its rules name no hazard and it has no hazards.yaml.
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "hazards.yaml").unlink()
    for rule_file in rules.glob("WNB-*.yaml"):
        text = rule_file.read_text(encoding="utf-8")
        rule_file.write_text(re.sub(r"^hazards: .*\n", "", text, flags=re.MULTILINE), encoding="utf-8")

    result = run_in(tmp_path, "rules", "check", str(rules), columns=300)

    assert result.code == 0, result.err
    assert "valid, version" in result.out
    assert "wnb: warning: no hazards.yaml: the ruleset has no hazard log" in result.err


def test_rules_check_shows_each_flag_with_its_title(tmp_path: Path) -> None:
    result = run_in(tmp_path, "rules", "check", str(RULES), columns=300)

    assert result.code == 0, result.err
    assert "flag safeguarding-plan-wnb “Not brought: child known to children's social care” (red)" in result.out


def test_rules_check_refuses_a_task_code_without_a_title(tmp_path: Path) -> None:
    rules = _default_with(tmp_path, "ruleset.yaml", lambda text: re.sub(r"^  inform-gp: .*\n", "", text, flags=re.M))

    result = run_in(tmp_path, "rules", "check", str(rules))

    assert result.code == 1
    assert_one_line_error(result, "ruleset.yaml", "titles", "no title for rule WNB-01: task inform-gp")
    assert "valid" not in result.out


def test_rules_check_of_a_ruleset_without_titles_passes_its_codes_reading_as_words(tmp_path: Path) -> None:
    # A trust's ruleset from before titles: no `titles:` map at all.
    rules = _default_with(tmp_path, "ruleset.yaml", lambda text: text[: text.index("\n# The words people read")] + "\n")

    result = run_in(tmp_path, "rules", "check", str(rules), columns=300)

    assert result.code == 0, result.err
    assert "flag safeguarding-plan-wnb “Safeguarding plan wnb” (red)" in result.out


def test_rules_check_of_a_broken_rule_file_exits_1_naming_the_file_and_the_rule(tmp_path: Path) -> None:
    broken = _default_with(tmp_path, "WNB-04.yaml", lambda text: text.replace("fact: priority", "fact: priorty"))

    result = run_in(tmp_path, "rules", "check", str(broken))

    assert result.code == 1
    assert_one_line_error(result, "WNB-04.yaml", "rule WNB-04", "priorty", "unknown fact")


PASSING_SCENARIO = """\
name: a child not brought for the first time in a service
event_defaults: {source: pas, service: community-paediatrics}
steps:
  - context: {nhs_number: "9990000069", date_of_birth: "2018-04-04"}
  - event:
      event_id: e1
      nhs_number: "9990000069"
      appointment_id: a1
      appointment_at: "2026-03-02T10:00:00+00:00"
      attendance: did-not-attend
      recorded_at: "2026-03-02T11:00:00+00:00"
expect:
  flags: []
  tasks:
    - {code: clinician-review, owner_role: clinician, due_at: "2026-03-03T17:00:00+00:00"}
    - {code: reoffer-appointment, owner_role: booking-team, due_at: "2026-03-04T17:00:00+00:00"}
    - {code: letter-to-parent, owner_role: booking-team, due_at: "2026-03-04T17:00:00+00:00"}
    - {code: inform-gp, owner_role: booking-team, due_at: "2026-03-04T17:00:00+00:00"}
  rejects: 0
"""


def _ruleset_with_scenarios(tmp_path: Path, scenarios: dict[str, str]) -> Path:
    copy_dir = tmp_path / "rules"
    shutil.copytree(RULES, copy_dir, ignore=shutil.ignore_patterns("scenarios"))
    (copy_dir / "scenarios").mkdir()
    for name, text in scenarios.items():
        (copy_dir / "scenarios" / name).write_text(text, encoding="utf-8")
    return copy_dir


def test_rules_test_passes_and_exits_0_when_every_scenario_holds(tmp_path: Path) -> None:
    rules = _ruleset_with_scenarios(tmp_path, {"first-miss.yaml": PASSING_SCENARIO})

    result = run_in(tmp_path, "rules", "test", str(rules), columns=300)

    assert result.code == 0, result.out + result.err
    assert "PASS first-miss.yaml: a child not brought for the first time in a service" in result.out
    assert "1 passed, 0 failed" in result.out


def test_rules_test_exits_1_with_a_fail_line_when_a_scenario_does_not_hold(tmp_path: Path) -> None:
    failing = PASSING_SCENARIO.replace("name: a child", "name: wrongly expecting a flag for a child").replace(
        "flags: []", "flags: [{code: repeat-wnb, status: active}]"
    )
    rules = _ruleset_with_scenarios(tmp_path, {"a-first-miss.yaml": PASSING_SCENARIO, "b-wrong.yaml": failing})

    result = run_in(tmp_path, "rules", "test", str(rules), columns=300)

    assert result.code == 1
    assert "PASS a-first-miss.yaml" in result.out
    assert "FAIL b-wrong.yaml: wrongly expecting a flag" in result.out
    assert "expected flag not found" in result.out and "repeat-wnb" in result.out
    assert "1 passed, 1 failed" in result.out
