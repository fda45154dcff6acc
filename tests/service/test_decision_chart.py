"""docs/decision-chart.md is the chart of rules/default as wnb.service.decision_chart renders it: every rule
there, and nothing stale."""

from __future__ import annotations

import yaml

from tests.conftest import DEFAULT_RULES, ROOT
from wnb.core.ruleset import Ruleset
from wnb.service import decision_chart

CHART = ROOT / decision_chart.CHART


def test_every_rule_file_of_the_default_ruleset_has_its_section_in_the_chart() -> None:
    chart = CHART.read_text(encoding="utf-8")
    ids = [yaml.safe_load(path.read_text(encoding="utf-8"))["id"] for path in sorted(DEFAULT_RULES.glob("WNB-*.yaml"))]
    assert len(ids) >= 16
    for rule_id in ids:
        assert f"\n## {rule_id}\n" in chart, rule_id
        assert f"| [{rule_id}](#{rule_id.lower()}) |" in chart, rule_id


def test_the_chart_is_what_the_generator_renders_from_the_rule_files(ruleset: Ruleset) -> None:
    expected = decision_chart.render(ruleset)
    assert CHART.read_text(encoding="utf-8") == expected, "run `python -m wnb.service.decision_chart`"


def test_a_rule_shows_its_title_trigger_conditions_flag_tasks_and_parameters(ruleset: Ruleset) -> None:
    chart = decision_chart.render(ruleset)
    section = chart[chart.index("\n## WNB-06\n") : chart.index("\n## WNB-07\n")]
    assert f"**{ruleset.rule('WNB-06').title}**" in section
    assert "On a missed appointment" in section
    assert "- any of:\n  - `missed_in_service_365d ≥ 2 ($repeat_misses)`" in section
    assert "Flag: `repeat-wnb` (amber)." in section
    assert "| `safeguarding-discussion` | safeguarding-nurse | 2-working-days |" in section
    assert "Parameters: `repeat_misses` = 2." in section
