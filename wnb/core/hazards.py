"""The hazard log of a ruleset (`hazards.yaml`): DCB0129 hazards, their risk, the controls that reduce it and the
evidence that each control works, and the check that holds the log, the rules, the scenario files and wnb's own
tests to one another (wnb/core/hazard_check.py).

Pure: it reads the ruleset's mapping of file names to bytes and the sources of the test modules the log names,
handed over by the caller (wnb/rule_files.py reads them from disk). Nothing here runs a scenario or a test: that
is `wnb rules test`'s, and the registry's when a version is proposed (wnb.service.system_evidence runs the named
tests; `unproven_hazards` says which hazards their failures leave without a working control).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, model_validator

from wnb.core.errors import RulesetError
from wnb.core.ruleset import HAZARDS_FILE, HazardId, error_location, read_yaml


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
