"""The system controls' evidence run and recorded at propose (issue 15): a control `system: NAME` names tests of
wnb's own suite; proposing runs them in a pytest subprocess and stores each outcome, the counts and the time in the
evidence and the safety case report, and says plainly when the tests are not available in the installation.

Fast on purpose: a tiny checkout of three tests in a temporary folder, and one real proposal whose hazard log names
a single pure test of the suite (never the whole suite).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import DEFAULT_RULES
from wnb.core.domain import Role
from wnb.core.hazards import HazardLog, load_hazard_log, unproven_hazards
from wnb.core.policy import Kind, Principal
from wnb.core.releases import ReleaseRefused
from wnb.core.ruleset import HAZARDS_FILE, Ruleset
from wnb.rule_files import read_files
from wnb.service import Service, proposals, system_evidence
from wnb.service.proposals import Candidate, backtest_and_store
from wnb.service.safety_reports import make_report
from wnb.service.system_evidence import NOT_AVAILABLE, NOT_RUN, RAN

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
FAST = "tests/core/test_hazards.py::test_the_risk_never_falls_as_severity_or_likelihood_rises"
FAKE_TESTS = """
import pytest

def test_passes():
    pass

def test_fails():
    assert False

@pytest.mark.parametrize("n", [1, 2])
def test_each(n):
    pass

def test_skipped():
    pytest.skip("not here")
"""


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A source checkout of three tests: pyproject.toml, tests/test_fake.py."""
    root = tmp_path_factory.mktemp("checkout")
    (root / "pyproject.toml").write_text("[project]\nname = 'fake'\nversion = '0'\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_fake.py").write_text(FAKE_TESTS)
    return root


def files_naming(*nodes: str) -> dict[str, bytes]:
    """The default ruleset's files with every system control's tests replaced by `nodes`."""
    files = read_files(DEFAULT_RULES)
    log = yaml.safe_load(files[HAZARDS_FILE])
    for hazard in log["hazards"]:
        for control in hazard.get("controls", []):
            if "system" in control:
                control["tests"] = list(nodes)
    files[HAZARDS_FILE] = yaml.safe_dump(log, sort_keys=False).encode()
    return files


def log_naming(*nodes: str) -> HazardLog:
    log = load_hazard_log(files_naming(*nodes), "test")
    assert log is not None
    return log


def test_the_named_tests_are_run_and_each_outcome_counted(checkout: Path) -> None:
    nodes = ["tests/test_fake.py::test_passes", "tests/test_fake.py::test_fails", "tests/test_fake.py::test_each"]
    nodes += ["tests/test_fake.py::test_skipped"]
    found = system_evidence.run_tests(nodes, checkout)
    outcomes = {test["node"]: test["outcome"] for test in found["tests"]}
    assert outcomes == dict(zip(nodes, ["passed", "failed", "passed", "skipped"], strict=True))
    assert (found["state"], found["passed"], found["failed"], found["skipped"]) == (RAN, 2, 1, 1)
    assert found["summary"].startswith("2 of 4 named tests passed in ")
    assert found["summary"].endswith(", 1 failed, 1 skipped")


def test_without_tests_beside_the_package_they_are_recorded_as_not_available(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")  # an installed package: no tests/
    found = system_evidence.system_evidence(log_naming(FAST), True, NOW, root=tmp_path)
    assert found["state"] == NOT_AVAILABLE == "not available in this installation"
    assert "1 named tests not available in this installation" in found["summary"]
    assert (found["tests"], found["at"]) == ([], NOW.isoformat())


def test_turned_off_they_are_recorded_as_not_run_and_why() -> None:
    found = system_evidence.system_evidence(log_naming(FAST), False, NOW)
    assert (found["state"], found["summary"]) == (NOT_RUN, "1 named tests not run (WNB_PROPOSE_TESTS=false)")


def test_a_hazard_whose_only_controls_are_failing_system_tests_is_unproven() -> None:
    log = log_naming(FAST)
    assert unproven_hazards(log, {}) == []
    problems = unproven_hazards(log, {FAST: "failed"})
    only_system = [h.id for h in log.hazards if all(c.system for c in h.controls if c.status.value == "implemented")]
    assert only_system and [p.split(" ")[1] for p in problems] == only_system
    assert f"{FAST} failed" in problems[0]


def candidate_of(files: dict[str, bytes], ruleset: Ruleset) -> Candidate:
    """A candidate as prepare() makes it, without running the sixty scenarios again (test_rules_registry does)."""
    check: dict[str, Any] = {"passed": True, "rules": [rule.id for rule in ruleset.rules], "warnings": []}
    scenarios = [{"file": "scenarios/x.yaml", "name": "x", "passed": True, "problems": []}]
    return Candidate(files, "candidate", ruleset, check, scenarios)


LEAD = Principal(Kind.USER, "lead.one", Role.SAFEGUARDING_LEAD)


def test_propose_runs_the_named_test_and_stores_it_in_the_evidence_and_the_report(
    service: Service, ruleset: Ruleset
) -> None:
    proposal = backtest_and_store(
        service.db, candidate_of(files_naming(FAST), ruleset), LEAD, None, None, None, NOW, run_tests=True
    )
    system = proposal.evidence["system_controls"]
    assert (system["state"], system["passed"], system["failed"]) == (RAN, 1, 0)
    assert system["tests"] == [{"node": FAST, "outcome": "passed"}]
    report = make_report(service.db, proposal.release.version, "lead.one", NOW).html
    assert 'id="system-test-table"' in report and FAST in report
    assert "run: 1 of 1 named tests passed" in report


def test_propose_is_refused_when_a_failing_test_leaves_a_hazard_without_a_working_control(
    service: Service, ruleset: Ruleset, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = {"state": RAN, "summary": "0 of 1 named tests passed in 0.1 s, 1 failed"}
    failing["tests"] = [{"node": "tests/test_fake.py::test_fails", "outcome": "failed"}]  # as the run above says
    monkeypatch.setattr(proposals, "system_evidence", lambda *args: failing)
    files = files_naming("tests/test_fake.py::test_fails")
    with pytest.raises(ReleaseRefused, match="0 of 1 named tests passed.*, so it is not proposed") as refused:
        backtest_and_store(service.db, candidate_of(files, ruleset), LEAD, None, None, None, NOW, run_tests=True)
    assert "tests/test_fake.py::test_fails failed" in str(refused.value)
