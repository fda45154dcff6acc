"""Proposing a ruleset version (issue 15): check it, run its own scenarios, backtest it against the active
version, and store it with that evidence in the registry; and what two stored versions differ in.

A proposal is refused, and nothing stored, unless the ruleset checks (its rules, the matcher, its hazard log) and
every scenario file of it passes: the scenarios run from the very bytes that are stored, so the evidence is of
the version signed off. The backtest replays the period's stored history under it (wnb.service.simulate) and
counts, per rule and per role, what it would have raised beside what was raised under the active version.
"""

from __future__ import annotations

import difflib
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine

from wnb.core.calendar import london_date
from wnb.core.hazard_check import check_hazard_log
from wnb.core.hazards import describe, evidence_modules, load_hazard_log, unproven_hazards
from wnb.core.policy import Principal
from wnb.core.releases import Release, ReleaseRefused
from wnb.core.ruleset import SETTINGS_FILE, Ruleset, content_version, load_files, rule_file_names
from wnb.rule_files import read_suite
from wnb.service.active_ruleset import active_ruleset, directory_files
from wnb.service.scenarios import run_scenario
from wnb.service.simulate import period_of, simulate
from wnb.service.system_evidence import FAILED_TO_RUN, RAN, system_evidence
from wnb.store import rulesets


@dataclass(frozen=True)
class Proposal:
    """A version stored as proposed, and the evidence stored with it."""

    release: Release
    evidence: dict[str, Any]


def default_period(now: datetime) -> tuple[date, date]:
    """The last 12 months of stored history up to today (UK days, both whole)."""
    today = london_date(now)
    return today - timedelta(days=364), today


def _check(ruleset: Ruleset, files: dict[str, bytes], where: str, now: datetime) -> dict[str, Any]:
    from wnb.matcher import durable

    durable.register(ruleset)  # the matcher compiles it, as `wnb rules check` makes sure
    log = load_hazard_log(files, where)
    findings = check_hazard_log(ruleset, files, log, read_suite(evidence_modules(log)), london_date(now))
    if not findings.passed:
        raise ReleaseRefused(
            f"{where}: the ruleset check failed, so it is not proposed:\n" + "\n".join(findings.errors)
        )
    return {
        "passed": True,
        "rules": [rule.id for rule in ruleset.rules],
        "hazard_log": describe(log) if log else None,
        "warnings": list(findings.warnings),
    }


def _scenarios(ruleset: Ruleset, files: dict[str, bytes], where: str) -> list[dict[str, Any]]:
    """Every scenario file of `files` run under `ruleset`, from the bytes that are stored."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="wnb-proposal-") as folder:
        for name in sorted(name for name in files if name.startswith("scenarios/")):
            path = Path(folder) / name
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(files[name])
            result = run_scenario(ruleset, path)
            results.append({"file": name, "name": result.name, "passed": result.passed, "problems": result.problems})
    failing = [result for result in results if not result["passed"]]
    if failing:
        lines = [f"{result['file']}: {result['name']}: " + "; ".join(result["problems"]) for result in failing]
        raise ReleaseRefused(
            f"{where}: {len(failing)} of {len(results)} scenarios fail under this ruleset, so it is not proposed; "
            "edit the rules or the scenarios' expectations:\n" + "\n".join(lines)
        )
    if not results:
        raise ReleaseRefused(f"{where}: no scenario files (scenarios/*.yaml): a proposal needs its own evidence")
    return results


@dataclass(frozen=True)
class Candidate:
    """A candidate ruleset that checked and whose own scenarios passed: what the backtest needs next."""

    files: dict[str, bytes]
    where: str
    ruleset: Ruleset
    check: dict[str, Any]
    scenarios: list[dict[str, Any]]

    @property
    def version(self) -> str:
        return content_version(self.files)


def prepare(files: dict[str, bytes], where: str, now: datetime) -> Candidate:
    """Load and check the candidate `files` and run its own scenarios; a RulesetError or ReleaseRefused says what
    is wrong (nothing is stored)."""
    rulesets.as_text(files)  # a file that is not UTF-8 is refused before anything runs
    ruleset = load_files(files, where)
    check = _check(ruleset, files, where, now)
    return Candidate(files, where, ruleset, check, _scenarios(ruleset, files, where))


def backtest_and_store(
    db: Engine,
    candidate: Candidate,
    by: Principal,
    note: str | None,
    period: tuple[date, date] | None,
    compared_against: str | None,
    now: datetime,
    run_tests: bool = False,
    not_run_because: str = "WNB_PROPOSE_TESTS=false",
) -> Proposal:
    """Run the system controls' named tests (when `run_tests` and wnb's suite is here), backtest `candidate` over
    `period` (default the last 12 months) and store it as proposed by `by` with its evidence, compared against
    `compared_against` (the active version when the proposal began). Refused, nothing stored, when a failing test
    leaves a hazard with no control whose evidence passes."""
    log = load_hazard_log(candidate.files, candidate.where)
    system = system_evidence(log, run_tests, now, not_run_because)
    if log is not None and system["state"] in (RAN, FAILED_TO_RUN):
        failed = {test["node"]: test["outcome"] for test in system["tests"] if test["outcome"] != "passed"}
        if problems := unproven_hazards(log, failed):
            raise ReleaseRefused(
                f"{candidate.where}: {system['summary']}, so it is not proposed (fix wnb or the hazard log):\n"
                + "\n".join(problems)
            )
    first, last = period or default_period(now)
    start, end = period_of(first, last)
    backtest = simulate(db, candidate.ruleset, start, end)
    evidence = {
        "check": candidate.check,
        "scenarios": candidate.scenarios,
        "backtest": {**backtest.as_dict(), "compared_against": compared_against},
        "system_controls": system,
    }
    release = rulesets.propose(db, candidate.files, by, note, evidence, compared_against, now)
    return Proposal(release, evidence)


def propose(
    db: Engine,
    folder: Path,
    by: Principal,
    note: str | None,
    period: tuple[date, date] | None,
    rules_dir: Path,
    now: datetime,
    run_tests: bool = False,
) -> Proposal:
    """Check, test and backtest the ruleset in `folder`, then store it as proposed by `by` with its evidence.

    `rules_dir` (WNB_RULES_DIR) is registered first when the registry is empty, so there is a version to compare
    against; `period` defaults to the last 12 months; `run_tests` (WNB_PROPOSE_TESTS) runs the system controls'
    named tests.
    """
    candidate = prepare(directory_files(folder), str(folder), now)
    active = active_ruleset(db, rules_dir, now)
    return backtest_and_store(db, candidate, by, note, period, active.version, now, run_tests)


def _parameters(files: dict[str, bytes]) -> dict[str, Any]:
    settings = yaml.safe_load(files.get(SETTINGS_FILE, b"")) or {}
    return _flatten(settings) if isinstance(settings, dict) else {}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


@dataclass(frozen=True)
class Difference:
    """What two versions differ in: each parameter of ruleset.yaml that differs (name, first, second), and a
    unified diff of every other file that differs (rules, hazard log, scenarios)."""

    first: str
    second: str
    parameters: list[tuple[str, Any, Any]]
    files: list[str]  # unified diffs, one a file

    @property
    def same(self) -> bool:
        return not self.parameters and not self.files


def diff(db: Engine, first: str, second: str) -> Difference:
    """The difference between the stored versions `first` and `second` (hashes or unique prefixes)."""
    one, two = rulesets.find(db, first), rulesets.find(db, second)
    left, right = rulesets.files_of(db, one.version), rulesets.files_of(db, two.version)
    assert content_version(left) == one.version and content_version(right) == two.version
    old, new = _parameters(left), _parameters(right)
    missing = "(not set)"
    parameters = [
        (name, old.get(name, missing), new.get(name, missing))
        for name in sorted(old.keys() | new.keys())
        if old.get(name, missing) != new.get(name, missing)
    ]
    names = [SETTINGS_FILE, *rule_file_names({**left, **right})]
    names += sorted(name for name in left.keys() | right.keys() if name not in names)
    texts = []
    for name in names:
        a, b = left.get(name, b"").decode(), right.get(name, b"").decode()
        if a != b:
            lines = difflib.unified_diff(
                a.splitlines(keepends=True),
                b.splitlines(keepends=True),
                f"{one.short}/{name}" if name in left else "/dev/null",
                f"{two.short}/{name}" if name in right else "/dev/null",
            )
            texts.append("".join(lines))
    return Difference(one.version, two.version, parameters, texts)
