"""The check that holds a ruleset's hazard log, its rules, its scenario files and wnb's own tests to one another
(`wnb rules check`, and the registry when a version is proposed).

Pure, as wnb/core/hazards.py, whose log it checks: the ruleset's files and the sources of the test modules the log
names are handed over by the caller. Nothing here runs a scenario or a test.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from wnb.core.hazards import Control, ControlStatus, Hazard, HazardLog, evidence_modules
from wnb.core.ruleset import HAZARDS_FILE, SCENARIOS_FOLDER, Ruleset


@lru_cache(maxsize=256)  # a module's source is read once per check, and the same modules come back every check
def suite_tests(source: bytes) -> frozenset[str]:
    """The tests a module of the suite defines, as pytest names them below the module: `test_x`, `TestY::test_x`
    (read with ast, never imported). A SyntaxError when the module is not valid Python."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.Assign):  # e.g. a test made by a factory: test_x = schema.parametrize()(…)
            names.update(t.id for t in node.targets if isinstance(t, ast.Name) and t.id.startswith("test"))
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names.update(
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test")
            )
    return frozenset(names)


def threshold_settings(ruleset: Ruleset) -> dict[str, Any]:
    """Every number of ruleset.yaml that the hazard log must account for, by its dotted name, with its value: the
    parameters, the count windows, the discharge review window, the follow-up deadline and the escalation delay."""
    settings = ruleset.settings
    return {
        **{f"parameters.{name}": value for name, value in settings.parameters.items()},
        **{f"counts.{name}.window_days": spec.window_days for name, spec in settings.counts.items()},
        "discharge_review.window_days": settings.discharge_review.window_days,
        "follow_up.deadline_working_days": settings.follow_up.deadline_working_days,
        "escalation.delay_working_days": settings.escalation.delay_working_days,
    }


@dataclass(frozen=True)
class Findings:
    """What `wnb rules check` says of a hazard log: errors refuse the ruleset, warnings are shown."""

    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.errors


def check_hazard_log(
    ruleset: Ruleset,
    files: Mapping[str, bytes],
    log: HazardLog | None,
    suite: Mapping[str, bytes] | None,
    today: date,
) -> Findings:
    """Hold the hazard log, the rules, the scenario files and wnb's own tests to one another.

    `files` is the ruleset's mapping (its scenario files among them); `suite` holds the sources of the test modules
    of `evidence_modules(log)` that exist, by path, or is None when wnb's suite is not installed here (the system
    controls' evidence then goes unchecked, with a warning); `today` is the date review dates are compared with.
    """
    check = _Check(ruleset, files, log, suite, today)
    check.rules_name_known_hazards()
    if log is None:
        # No log is a warning, not a failure: a trust's own ruleset may keep its hazard log in the trust's own
        # safety file (DCB0160), and every ruleset written before hazard logs existed must still check and load.
        # A rule that names a hazard with no log to hold it has failed above all the same.
        check.warn(f"no {HAZARDS_FILE}: the ruleset has no hazard log, so no rule is tied to a hazard it controls")
    else:
        check.hazards_are_controlled(log)
        check.thresholds_are_accounted_for(log)
    return Findings(tuple(check.errors), tuple(check.warnings))


class _Check:
    def __init__(
        self,
        ruleset: Ruleset,
        files: Mapping[str, bytes],
        log: HazardLog | None,
        suite: Mapping[str, bytes] | None,
        today: date,
    ) -> None:
        self.ruleset = ruleset
        self.files = files
        self.log = log
        self.suite = suite
        self.today = today
        self.hazards = {hazard.id: hazard for hazard in log.hazards} if log else {}
        self.rules = {rule.id: rule for rule in ruleset.rules}
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self._tests: dict[str, frozenset[str] | str] = {}

    def fail(self, message: str) -> None:
        self.errors.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def rules_name_known_hazards(self) -> None:
        for rule in self.ruleset.rules:
            if self.log is not None and not rule.hazards:
                self.fail(f"rule {rule.id} names no hazard it controls (give it hazards: [H-..] from {HAZARDS_FILE})")
            for hazard_id in rule.hazards:
                hazard = self.hazards.get(hazard_id)
                if hazard is None:
                    where = f"{HAZARDS_FILE} has no hazard {hazard_id}" if self.log else f"there is no {HAZARDS_FILE}"
                    self.fail(f"rule {rule.id} names an unknown hazard {hazard_id}: {where}")
                elif not any(control.rule == rule.id for control in hazard.controls):
                    self.fail(f"rule {rule.id} names hazard {hazard_id}, whose controls do not list rule: {rule.id}")

    def hazards_are_controlled(self, log: HazardLog) -> None:
        for hazard in log.hazards:
            if not hazard.controls:
                self.fail(f"hazard {hazard.id} ({hazard.title}) has no control")
            elif all(control.status is not ControlStatus.IMPLEMENTED for control in hazard.controls):
                self.fail(f"hazard {hazard.id} ({hazard.title}) has no implemented control, only planned ones")
            for control in hazard.controls:
                where = f"hazard {hazard.id}: control {control.name}"
                if control.rule is not None:
                    self._rule_evidence(hazard, control, where)
                else:
                    self._system_evidence(control, where)
                if control.review < self.today:
                    self.warn(f"{where}: its review date {control.review.isoformat()} has passed")
        if self.suite is None and evidence_modules(log):
            self.warn("the system controls' tests were not looked for: wnb's own test suite is not installed here")

    def _rule_evidence(self, hazard: Hazard, control: Control, where: str) -> None:
        rule = self.rules.get(control.rule or "")
        if rule is None:
            self.fail(f"{where}: the ruleset has no rule {control.rule}")
            return
        if hazard.id not in rule.hazards:
            self.fail(f"{where}: rule {rule.id} does not name {hazard.id} in its hazards")
        if not control.scenarios:
            self.fail(f"{where}: no scenario files show that it works (scenarios: [...])")
        mention = re.compile(rf"(?<![\w-]){re.escape(rule.id)}(?![\w-])")
        for scenario in control.scenarios:
            content = self.files.get(SCENARIOS_FOLDER + scenario)
            if content is None:
                self.fail(f"{where}: scenario {scenario} is not in {SCENARIOS_FOLDER}")
            elif not mention.search(content.decode("utf-8", "replace")):
                self.fail(f"{where}: scenario {scenario} does not mention {rule.id}")

    def _system_evidence(self, control: Control, where: str) -> None:
        if control.status is ControlStatus.IMPLEMENTED and not control.tests:
            self.fail(f"{where}: no tests of wnb's suite show that it works (tests: [...])")
        if self.suite is None:
            return
        for node in control.tests:
            problem = self._missing(node, self.suite)
            if problem:
                self.fail(f"{where}: test {node}: {problem}")

    def _missing(self, node: str, suite: Mapping[str, bytes]) -> str | None:
        path, _, name = node.partition("::")
        name = name.partition("[")[0]
        if path not in self._tests:
            source = suite.get(path)
            if source is None:
                self._tests[path] = "no such module in wnb's test suite"
            else:
                try:
                    self._tests[path] = suite_tests(source)
                except SyntaxError as error:
                    self._tests[path] = f"the module is not valid Python (line {error.lineno})"
        found = self._tests[path]
        if isinstance(found, str):
            return found
        return None if name in found else f"the module defines no test {name}"

    def thresholds_are_accounted_for(self, log: HazardLog) -> None:
        listed = {threshold.setting: threshold for threshold in log.thresholds}
        for setting, value in threshold_settings(self.ruleset).items():
            if setting not in listed:
                self.fail(
                    f"{HAZARDS_FILE}: thresholds: ruleset.yaml's {setting} ({value}) is not listed: say where it "
                    "comes from, or that it is a design choice"
                )
        actual = _flatten(self.ruleset.settings.model_dump(mode="json"))
        for threshold in log.thresholds:
            where = f"{HAZARDS_FILE}: thresholds: {threshold.setting}"
            if threshold.setting not in actual:
                self.fail(f"{where}: ruleset.yaml has no such setting")
            elif not _same(actual[threshold.setting], threshold.value):
                self.fail(
                    f"{where}: the log says {threshold.value!r}, ruleset.yaml has {actual[threshold.setting]!r}: "
                    "review the threshold's entry with the change"
                )
            for hazard_id in threshold.hazards:
                if hazard_id not in self.hazards:
                    self.fail(f"{where}: names an unknown hazard {hazard_id}")
        untraced = [threshold.setting for threshold in log.thresholds if threshold.is_untraced_design_choice]
        if untraced:
            self.warn(
                f"{len(untraced)} thresholds are design choices not yet traced to the trust's own chart: "
                + ", ".join(untraced)
            )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _same(actual: Any, logged: Any) -> bool:
    return type(actual) is type(logged) and actual == logged
