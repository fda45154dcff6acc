"""The hazard log of a ruleset (`hazards.yaml`): DCB0129 hazards, their risk, the controls that reduce it and the
evidence that each control works, and the check that holds the log, the rules, the scenario files and wnb's own
tests to one another.

Pure: it reads the ruleset's mapping of file names to bytes and the sources of the test modules the log names,
handed over by the caller (wnb/rule_files.py reads them from disk). Nothing here runs a scenario or a test: that
is `wnb rules test`'s, and the registry's when a version is proposed (wnb.service.system_evidence runs the named
tests; `unproven_hazards` says which hazards their failures leave without a working control).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, model_validator

from wnb.core.errors import RulesetError
from wnb.core.ruleset import HAZARDS_FILE, SCENARIOS_FOLDER, HazardId, Ruleset, error_location, read_yaml


class Severity(StrEnum):
    """How bad the harm would be (DCB0129), least first."""

    MINOR = "minor"
    SIGNIFICANT = "significant"
    CONSIDERABLE = "considerable"
    MAJOR = "major"
    CATASTROPHIC = "catastrophic"


class Likelihood(StrEnum):
    """How likely the harm is (DCB0129), least first."""

    VERY_LOW = "very-low"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    VERY_HIGH = "very-high"


# DCB0129's risk matrix: for each likelihood, the risk rating of each severity, minor first.
RISK_MATRIX: dict[Likelihood, tuple[int, int, int, int, int]] = {
    Likelihood.VERY_HIGH: (3, 4, 4, 5, 5),
    Likelihood.HIGH: (2, 3, 3, 4, 5),
    Likelihood.MEDIUM: (2, 2, 3, 3, 4),
    Likelihood.LOW: (1, 2, 2, 3, 4),
    Likelihood.VERY_LOW: (1, 1, 2, 2, 3),
}
RISK_RATINGS = {
    1: "acceptable, no further action required",
    2: "acceptable where the cost of further reduction outweighs the benefit gained",
    3: "undesirable: acceptable only when further reduction is impractical",
    4: "mandatory elimination or control to reduce the risk to an acceptable level",
    5: "unacceptable",
}


def risk_rating(severity: Severity, likelihood: Likelihood) -> int:
    """The DCB0129 risk rating, 1 (acceptable) to 5 (unacceptable), of a severity and a likelihood."""
    return RISK_MATRIX[likelihood][list(Severity).index(severity)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Risk(_Strict):
    severity: Severity
    likelihood: Likelihood

    @property
    def rating(self) -> int:
        return risk_rating(self.severity, self.likelihood)


class ControlStatus(StrEnum):
    IMPLEMENTED = "implemented"  # in this release: its evidence must hold
    PLANNED = "planned"  # not built yet: it reduces no risk until it is


# A test of wnb's own suite, as pytest names it: tests/…/test_x.py::test_y, ::TestY::test_y, or with a [param] id.
SuiteTest = Annotated[
    str,
    Field(
        pattern=r"^tests/([A-Za-z0-9_]+/)*test_[A-Za-z0-9_]+\.py"
        r"::[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)?(\[[^\]]*\])?$"
    ),
]
ScenarioName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.yaml$")]
Kebab = Annotated[str, Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")]


class Control(_Strict):
    """One control of a hazard: a rule of the ruleset (`rule: WNB-01`, shown to work by scenario files) or a part of
    wnb itself (`system: NAME`, shown to work by named tests of wnb's own suite)."""

    rule: str | None = None
    system: Kebab | None = None
    description: str = Field(min_length=1)
    scenarios: tuple[ScenarioName, ...] = ()
    tests: tuple[SuiteTest, ...] = ()
    initial: Risk
    residual: Risk
    status: ControlStatus
    owner: str = Field(min_length=1)
    review: date

    @model_validator(mode="after")
    def _one_kind_with_its_evidence(self) -> Control:
        if (self.rule is None) == (self.system is None):
            raise ValueError("a control is either `rule: ID` or `system: NAME`")
        if self.rule is not None and self.tests:
            raise ValueError(f"rule: {self.rule}: a rule's evidence is its scenario files (scenarios:), not tests")
        if self.system is not None and self.scenarios:
            raise ValueError(f"system: {self.system}: its evidence is tests of wnb's suite (tests:), not scenarios")
        if self.residual.rating > self.initial.rating:
            raise ValueError(
                f"{self.name}: residual risk {self.residual.rating} is above the initial risk {self.initial.rating}"
            )
        return self

    @property
    def name(self) -> str:
        return f"rule: {self.rule}" if self.rule is not None else f"system: {self.system}"


class Hazard(_Strict):
    """A way the service could lead to harm (DCB0129): what, why, what follows, how bad and how likely uncontrolled."""

    id: HazardId
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    cause: str = Field(min_length=1)
    effect: str = Field(min_length=1)
    severity: Severity
    likelihood: Likelihood
    controls: tuple[Control, ...] = ()

    @property
    def initial(self) -> Risk:
        return Risk(severity=self.severity, likelihood=self.likelihood)

    @property
    def residual_rating(self) -> int:
        """The lowest residual risk its implemented controls claim; its initial risk while none is implemented."""
        implemented = [c.residual.rating for c in self.controls if c.status is ControlStatus.IMPLEMENTED]
        return min(implemented, default=self.initial.rating)


class Basis(StrEnum):
    """Where a default threshold comes from."""

    STATUTE = "statute"
    NATIONAL_GUIDANCE = "national-guidance"
    DESIGN_CHOICE = "design-choice"  # chosen for the default chart; the trust's own chart must confirm or change it


class Threshold(_Strict):
    """A number of ruleset.yaml (`parameters.repeat_misses`, `counts.missed_all_services_90d.window_days`), its value
    here, and where it comes from."""

    setting: str = Field(pattern=r"^[a-z_]+(\.[a-z0-9_-]+)+$")
    value: StrictBool | StrictInt | StrictStr
    basis: Basis
    note: str = Field(min_length=1)
    trust_chart: str | None = None  # where the trust's own decision chart gives this value, once traced
    hazards: tuple[HazardId, ...] = ()

    @property
    def is_untraced_design_choice(self) -> bool:
        return self.basis is Basis.DESIGN_CHOICE and not self.trust_chart


class HazardLog(_Strict):
    """The content of hazards.yaml."""

    name: str = Field(min_length=1)
    hazards: tuple[Hazard, ...] = Field(min_length=1)
    thresholds: tuple[Threshold, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> HazardLog:
        for kind, keys in (
            ("hazard", [h.id for h in self.hazards]),
            ("threshold", [t.setting for t in self.thresholds]),
        ):
            seen: set[str] = set()
            for key in keys:
                if key in seen:
                    raise ValueError(f"{kind} {key} is listed twice")
                seen.add(key)
        return self

    def hazard(self, hazard_id: str) -> Hazard:
        return next(hazard for hazard in self.hazards if hazard.id == hazard_id)


def load_hazard_log(files: Mapping[str, bytes], where: str) -> HazardLog | None:
    """The hazard log of a ruleset given as its files, or None when it has none; a log that does not validate is a
    RulesetError naming the file, the hazard and the field."""
    if HAZARDS_FILE not in files:
        return None
    name = f"{where}/{HAZARDS_FILE}"
    raw = read_yaml(name, files[HAZARDS_FILE])
    try:
        return HazardLog.model_validate(raw)
    except ValidationError as error:
        raise RulesetError(f"{name}: {_hazard_named(raw, error)}{error_location(error)}") from None


def _hazard_named(raw: Any, error: ValidationError) -> str:
    """`hazard H-03: ` when the first error lies inside a hazard that has an id."""
    loc = error.errors()[0]["loc"]
    if len(loc) >= 2 and loc[0] == "hazards" and isinstance(loc[1], int) and isinstance(raw, dict):
        hazards = raw.get("hazards")
        if isinstance(hazards, list) and loc[1] < len(hazards) and isinstance(hazards[loc[1]], dict):
            hazard_id = hazards[loc[1]].get("id")
            if hazard_id:
                return f"hazard {hazard_id}: "
    return ""


def evidence_modules(log: HazardLog | None) -> list[str]:
    """The modules of wnb's suite whose tests the log's system controls name (tests/…/test_x.py), by path."""
    if log is None:
        return []
    return sorted({node.partition("::")[0] for h in log.hazards for c in h.controls for node in c.tests})


def suite_test_nodes(log: HazardLog | None) -> list[str]:
    """Every test of wnb's suite that the log's system controls name, as pytest node ids, each once, sorted."""
    if log is None:
        return []
    return sorted({node for h in log.hazards for c in h.controls for node in c.tests})


def unproven_hazards(log: HazardLog, failed: Mapping[str, str]) -> list[str]:
    """Each hazard left with no implemented control whose evidence passes, once the named tests in `failed` (node id
    to its outcome) did not pass when run; a rule control's scenarios have passed before this is asked."""
    problems = []
    for hazard in log.hazards:
        implemented = [c for c in hazard.controls if c.status is ControlStatus.IMPLEMENTED]
        if implemented and all(c.system is not None and any(t in failed for t in c.tests) for c in implemented):
            named = "; ".join(
                f"{c.name}: " + ", ".join(f"{t} {failed[t]}" for t in c.tests if t in failed) for c in implemented
            )
            problems.append(f"hazard {hazard.id} ({hazard.title}) has no control whose evidence passes: {named}")
    return problems


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


def describe(log: HazardLog) -> str:
    """One line on the log: its hazards, their controls, and the highest residual risk."""
    controls = [control for hazard in log.hazards for control in hazard.controls]
    planned = sum(control.status is ControlStatus.PLANNED for control in controls)
    highest = max(hazard.residual_rating for hazard in log.hazards)
    worst = ", ".join(hazard.id for hazard in log.hazards if hazard.residual_rating == highest)
    untraced = sum(threshold.is_untraced_design_choice for threshold in log.thresholds)
    return (
        f"hazard log: {len(log.hazards)} hazards, {len(controls)} controls ({planned} planned), highest residual risk "
        f"{highest} ({worst}); {len(log.thresholds)} thresholds, {untraced} design choices not yet traced"
    )


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
