"""Every scenario file of the default ruleset: events and context in, exactly the expected flags and tasks out."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import DEFAULT_RULES
from wnb.core.ruleset import Ruleset
from wnb.service.scenarios import run_scenario, scenario_files

SCENARIOS = scenario_files(DEFAULT_RULES)
STORES = ("sqlite", "postgres")


def test_the_default_ruleset_ships_scenarios_for_every_rule(ruleset: Ruleset) -> None:
    text = "\n".join(path.read_text() for path in SCENARIOS)
    missing = [rule.id for rule in ruleset.rules if rule.id not in text]
    assert not missing, f"no scenario mentions {missing}"


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_scenario(ruleset: Ruleset, path: Path, db_url: str) -> None:
    result = run_scenario(ruleset, path, db_url)
    assert result.passed, f"{path.name}: {result.name}\n" + "\n".join(result.problems)
