"""Load, validate, version and compile rule files (YAML a safeguarding lead can read).

A ruleset is `ruleset.yaml` (parameters, counts, calendar, escalation) and one file per rule, given here as a
mapping of file names to bytes (`load_files`): reading them from a directory is wnb/rule_files.py's, and a
stored ruleset can be loaded the same way. The mapping may also hold the hazard log (`hazards.yaml`, read by
wnb.core.hazards) and the scenario files (`scenarios/NAME.yaml`): neither is a rule file, but both are part of
what a safety officer signs off, so the version (the SHA-256 of the mapping) covers them too. Validation
errors name the file, the rule id and the field.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from datetime import time
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wnb.core.calendar import DueRule
from wnb.core.domain import Level, Role
from wnb.core.errors import RulesetError
from wnb.core.facts import BUILTIN_FACTS, TRIGGERS
from wnb.core.wording import code_title

# The id of the one fact document of an evaluation, and the catch-all rule every document matches.
FACTS_ID = "facts"
ALWAYS_RULE = "wnb-always"

# Operators in words, with their symbol (for explanations) and their durable-rules operator.
OPERATORS = {
    "is": ("=", None),
    "is_not": ("≠", "$neq"),
    "at_least": ("≥", "$gte"),
    "at_most": ("≤", "$lte"),
    "more_than": (">", "$gt"),
    "less_than": ("<", "$lt"),
    "one_of": ("in", None),
}
_NUMERIC_OPERATORS = {"at_least", "at_most", "more_than", "less_than"}
# durable-rules hangs registering 512 or more rules that test one field with one operator.
MAX_SAME_TEST = 500

Scalar = bool | int | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    """One test of one fact, e.g. `{fact: missed_in_service_365d, at_least: $repeat_misses}`."""

    fact: str
    is_: Scalar | None = Field(None, alias="is")
    is_not: Scalar | None = None
    at_least: int | str | None = None
    at_most: int | str | None = None
    more_than: int | str | None = None
    less_than: int | str | None = None
    one_of: tuple[Scalar, ...] | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_operator(self) -> Condition:
        given = [op for op in OPERATORS if self.raw_value(op) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(OPERATORS)} (found {len(given)})")
        return self

    def raw_value(self, op: str) -> Any:
        return getattr(self, "is_" if op == "is" else op)

    @property
    def operator(self) -> str:
        return next(op for op in OPERATORS if self.raw_value(op) is not None)


class AnyOf(_Strict):
    any: tuple[ConditionNode, ...] = Field(min_length=1)


class AllOf(_Strict):
    all: tuple[ConditionNode, ...] = Field(min_length=1)


ConditionNode = Annotated[Condition | AnyOf | AllOf, Field(union_mode="left_to_right")]
AnyOf.model_rebuild()
AllOf.model_rebuild()


class FlagSpec(_Strict):
    code: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    level: Level


class TaskSpec(_Strict):
    code: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    owner: Role
    due: str

    @field_validator("due")
    @classmethod
    def _due(cls, value: str) -> str:
        DueRule.parse(value)
        return value

    @property
    def due_rule(self) -> DueRule:
        return DueRule.parse(self.due)


# A hazard of the hazard log (hazards.yaml): H-01, H-02, …
HazardId = Annotated[str, Field(pattern=r"^H-[0-9]{2,}$")]


class Rule(_Strict):
    id: str = Field(pattern=r"^[A-Z][A-Z0-9]*-[0-9A-Za-z-]+$")
    title: str
    # The hazards of the hazard log this rule is a control of; `wnb rules check` holds the two to each other.
    hazards: tuple[HazardId, ...] = ()
    trigger: Literal["missed-appointment", "patient-cancellation", "discharge", "follow-up-deadline"]
    when: tuple[ConditionNode, ...] = ()
    flag: FlagSpec | None = None
    tasks: tuple[TaskSpec, ...] = ()

    @model_validator(mode="after")
    def _does_something(self) -> Rule:
        if self.flag is None and not self.tasks:
            raise ValueError("a rule must raise a flag, ask for tasks, or both")
        return self


class CountSpec(_Strict):
    count: Literal["missed", "patient-cancellation"]
    services: Literal["this", "all"]
    window_days: int = Field(gt=0)


class DischargeReview(_Strict):
    window_days: int = Field(gt=0)
    review_task: str


class FollowUp(_Strict):
    deadline_working_days: int = Field(gt=0)


class Escalation(_Strict):
    delay_working_days: int = Field(ge=1)
    chains: dict[Role, tuple[Role, ...]]
    # Both added with issue 16; a version stored before them loads with these defaults.
    # An acknowledged task not completed by the end of this working day after its acknowledgement goes back to
    # `requested` at the next role of its chain. Off (None) unless a ruleset sets it.
    acknowledged_timeout_working_days: int | None = Field(default=None, ge=1)
    # How far ahead an acknowledged task may be marked "waiting for a reply".
    waiting_max_working_days: int = Field(default=10, ge=1)


class CalendarSettings(_Strict):
    working_day_ends: time


class RulesetSettings(_Strict):
    """The content of ruleset.yaml."""

    name: str
    parameters: dict[str, int | str | bool] = {}
    calendar: CalendarSettings
    counts: dict[str, CountSpec]
    discharge_review: DischargeReview
    follow_up: FollowUp
    escalation: Escalation
    # The words people read for each flag and task code (pages and terminal tables; JSON and FHIR keep the
    # code). Optional so that a ruleset written before it still loads: a code without a title reads as its
    # words (wnb.core.wording.code_title); `wnb rules check` requires one for every code once the map is given.
    titles: dict[str, str] = {}


class Ruleset(BaseModel):
    """A validated ruleset: its settings, its rules in file order, and its content version."""

    model_config = ConfigDict(frozen=True)

    directory: str
    version: str
    settings: RulesetSettings
    rules: tuple[Rule, ...]

    @property
    def short_version(self) -> str:
        return self.version[:12]

    @property
    def fact_types(self) -> dict[str, type]:
        return {**BUILTIN_FACTS, **{name: int for name in self.settings.counts}}

    def param(self, name: str) -> Any:
        return self.settings.parameters[name]

    def rule(self, rule_id: str) -> Rule:
        return next(rule for rule in self.rules if rule.id == rule_id)

    def resolve(self, value: Any) -> Any:
        """A literal, or the parameter a `$name` refers to."""
        if isinstance(value, str) and value.startswith("$"):
            return self.settings.parameters[value[1:]]
        if isinstance(value, tuple):
            return tuple(self.resolve(item) for item in value)
        return value

    def title(self, code: str) -> str:
        """What people read for a flag or task code: its title in ruleset.yaml, else the code in words."""
        return self.settings.titles.get(code) or code_title(code)

    def escalation_chain(self, first_owner: Role) -> tuple[Role, ...]:
        """The roles a task first owned by `first_owner` moves through, starting with that role."""
        return (first_owner, *self.settings.escalation.chains.get(first_owner, ()))


def error_location(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"{field}: {first['msg']}"


SETTINGS_FILE = "ruleset.yaml"
HAZARDS_FILE = "hazards.yaml"
SCENARIOS_FOLDER = "scenarios/"


def read_yaml(name: str, content: bytes) -> Any:
    try:
        return yaml.safe_load(content.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise RulesetError(f"{name}: not valid YAML: {error}") from None


def rule_file_names(files: Mapping[str, bytes]) -> list[str]:
    """The rule files of a ruleset, in the order they load: every YAML file beside ruleset.yaml but it and the
    hazard log, by name."""
    return sorted(
        name
        for name in files
        if name.endswith(".yaml") and "/" not in name and name not in (SETTINGS_FILE, HAZARDS_FILE)
    )


def scenario_file_names(files: Mapping[str, bytes]) -> list[str]:
    """The scenario files of a ruleset (`scenarios/NAME.yaml`), by name."""
    return sorted(
        name
        for name in files
        if name.startswith(SCENARIOS_FOLDER) and name.endswith(".yaml") and "/" not in name[len(SCENARIOS_FOLDER) :]
    )


def content_version(files: Mapping[str, bytes]) -> str:
    """SHA-256 over the names and bytes of every file of the ruleset: ruleset.yaml, the rules by name, the hazard
    log, then the scenarios by name. A ruleset with neither a hazard log nor scenarios keeps the version it had
    before they were hashed; any other file (a README, notes) is not part of it."""
    digest = hashlib.sha256()
    hazards = [HAZARDS_FILE] if HAZARDS_FILE in files else []
    for name in [SETTINGS_FILE, *rule_file_names(files), *hazards, *scenario_file_names(files)]:
        digest.update(name.encode() + b"\0" + files[name] + b"\0")
    return digest.hexdigest()


def titles_in(content: bytes, where: str) -> dict[str, str]:
    """Only the `titles:` map of a ruleset.yaml, for a face that shows codes in words without loading (and so
    checking) the whole ruleset; {} when it has none. The map must be words by code, like RulesetSettings'."""
    raw = read_yaml(where, content)
    titles = raw.get("titles", {}) if isinstance(raw, dict) else {}
    if not isinstance(titles, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in titles.items()):
        raise RulesetError(f"{where}: titles: give the words of each code, as code: words")
    return dict(titles)


def load_files(files: Mapping[str, bytes], where: str) -> Ruleset:
    """Validate a ruleset given as its files (name to bytes); every problem is a RulesetError naming file, rule
    and field. `where` says where the files came from (a directory, a stored version) in those messages."""
    if SETTINGS_FILE not in files:
        raise RulesetError(f"{where}: no ruleset.yaml here; is this a ruleset directory?")
    settings_name = f"{where}/{SETTINGS_FILE}"
    try:
        settings = RulesetSettings.model_validate(read_yaml(settings_name, files[SETTINGS_FILE]))
    except ValidationError as error:
        raise RulesetError(f"{settings_name}: {error_location(error)}") from None
    rules: list[Rule] = []
    sources: dict[str, str] = {}
    for file_name in rule_file_names(files):
        name = f"{where}/{file_name}"
        raw = read_yaml(name, files[file_name])
        rule_id = raw.get("id", "?") if isinstance(raw, dict) else "?"
        try:
            rule = Rule.model_validate(raw)
        except ValidationError as error:
            raise RulesetError(f"{name}: rule {rule_id}: {error_location(error)}") from None
        if rule.id in sources:
            raise RulesetError(f"{name}: rule {rule.id}: id already used in {sources[rule.id]}")
        sources[rule.id] = name
        rules.append(rule)
    if not rules:
        raise RulesetError(f"{where}: no rule files (*.yaml beside ruleset.yaml)")
    ruleset = Ruleset(directory=where, version=content_version(files), settings=settings, rules=tuple(rules))
    for rule in rules:
        _check_rule(ruleset, rule, sources[rule.id])
    _check_settings(ruleset, settings_name)
    return ruleset


def _check_rule(ruleset: Ruleset, rule: Rule, path: str) -> None:
    types = ruleset.fact_types
    for index, condition in enumerate(_conditions(rule.when)):
        where = f"{path}: rule {rule.id}: when condition {index + 1} ({condition.fact})"
        if condition.fact not in types:
            raise RulesetError(f"{where}: unknown fact; known facts are {', '.join(sorted(types))}")
        op = condition.operator
        raw = condition.raw_value(op)
        values = raw if isinstance(raw, tuple) else (raw,)
        for value in values:
            if isinstance(value, str) and value.startswith("$") and value[1:] not in ruleset.settings.parameters:
                raise RulesetError(f"{where}: {op}: unknown parameter {value}")
            resolved = ruleset.resolve(value)
            expected = types[condition.fact]
            if op in _NUMERIC_OPERATORS and expected is not int:
                raise RulesetError(f"{where}: {op} needs a number fact, {condition.fact} is {expected.__name__}")
            if type(resolved) is not expected:
                raise RulesetError(
                    f"{where}: {op}: {resolved!r} is {type(resolved).__name__}, the fact is {expected.__name__}"
                )


def _check_settings(ruleset: Ruleset, path: str) -> None:
    review = ruleset.settings.discharge_review.review_task
    task_codes = {task.code for rule in ruleset.rules for task in rule.tasks}
    if review not in task_codes:
        raise RulesetError(f"{path}: discharge_review.review_task: no rule asks for a task {review!r}")
    tests = Counter(
        (condition.fact, condition.operator) for rule in ruleset.rules for condition in _conditions(rule.when)
    )
    for (fact, op), count in tests.items():
        if count > MAX_SAME_TEST:
            raise RulesetError(
                f"{path}: {count} rules test {fact} with {op}; the matcher supports at most {MAX_SAME_TEST}"
            )


def untitled_codes(ruleset: Ruleset) -> list[str]:
    """The flag and task codes the rules use that the ruleset's `titles:` map gives no words, each once, as
    `rule WNB-01: flag safeguarding-plan-wnb`; none when the ruleset has no titles map (an older ruleset, whose
    codes read as their words)."""
    titles = ruleset.settings.titles
    if not titles:
        return []
    missing: list[str] = []
    seen: set[str] = set()
    for rule in ruleset.rules:
        used = ([("flag", rule.flag.code)] if rule.flag else []) + [("task", task.code) for task in rule.tasks]
        for kind, code in used:
            if code not in titles and code not in seen:
                seen.add(code)
                missing.append(f"rule {rule.id}: {kind} {code}")
    return missing


def _conditions(nodes: tuple[Any, ...]) -> list[Condition]:
    found: list[Condition] = []
    for node in nodes:
        if isinstance(node, Condition):
            found.append(node)
        else:
            found.extend(_conditions(node.any if isinstance(node, AnyOf) else node.all))
    return found


# ---- compiling to durable-rules (single pattern over one fact document) ----


def _compile_condition(ruleset: Ruleset, condition: Condition) -> dict[str, Any]:
    op = condition.operator
    value = ruleset.resolve(condition.raw_value(op))
    if op == "one_of":
        return {"$or": [{condition.fact: item} for item in value]}
    durable_op = OPERATORS[op][1]
    return {condition.fact: value} if durable_op is None else {durable_op: {condition.fact: value}}


def _compile_node(ruleset: Ruleset, node: Any) -> dict[str, Any]:
    if isinstance(node, Condition):
        return _compile_condition(ruleset, node)
    if isinstance(node, AnyOf):
        return {"$or": [_compile_node(ruleset, child) for child in node.any]}
    return {"$and": [_compile_node(ruleset, child) for child in node.all]}


def compile_rules(ruleset: Ruleset) -> dict[str, dict[str, Any]]:
    """The durable-rules definition: one single-pattern rule per rule, named by rule id, in file order."""
    compiled: dict[str, dict[str, Any]] = {}
    for priority, rule in enumerate(ruleset.rules, start=1):
        tests = [{TRIGGERS[rule.trigger]: True}, *(_compile_node(ruleset, node) for node in rule.when)]
        compiled[rule.id] = {"all": [{"m": {"$and": tests}}], "run": rule.id, "pri": priority}
    # A document that no rule matches makes the engine raise, and deleting that session can then corrupt
    # its heap; this lowest-priority rule matches every document so that never happens.
    compiled[ALWAYS_RULE] = {
        "all": [{"m": {"id": FACTS_ID}}],
        "run": ALWAYS_RULE,
        "pri": len(ruleset.rules) + 1,
    }
    return compiled
