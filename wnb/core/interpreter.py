"""The pure-Python interpreter of the rule conditions: which rules hold, and why, condition by condition.

durable-rules says only which rules fired; this says, for each condition, the fact's value and whether
it held. The service runs both on every evaluation and refuses one where they disagree. A fact absent
from the document (an age fact when the age is unknown) satisfies no condition, as in the matcher.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from wnb.core.facts import TRIGGERS
from wnb.core.ruleset import OPERATORS, AnyOf, Condition, Rule, Ruleset, Scalar


@dataclass(frozen=True, slots=True)
class ConditionResult:
    """One condition as the interpreter saw it (a dataclass: thousands are made per second)."""

    test: str  # e.g. "missed_in_service_365d ≥ 2 ($repeat_misses)"
    actual: Scalar | None  # None: the fact is absent (an unknown age)
    held: bool


@dataclass(frozen=True, slots=True)
class RuleExplanation:
    rule_id: str
    fired: bool
    conditions: tuple[ConditionResult, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "fired": self.fired,
            "conditions": [{"test": c.test, "actual": c.actual, "held": c.held} for c in self.conditions],
        }


def _test(op: str, actual: Any, expected: Any) -> bool:
    if actual is None:  # absent: durable-rules never matches a missing field, not even with ≠
        return False
    if op == "is":
        return bool(actual == expected and type(actual) is type(expected))
    if op == "is_not":
        return bool(actual != expected)
    if op == "one_of":
        return bool(actual in expected)
    if type(actual) is not int:
        return False
    return bool(
        {
            "at_least": actual >= expected,
            "at_most": actual <= expected,
            "more_than": actual > expected,
            "less_than": actual < expected,
        }[op]
    )


def describe_condition(condition: Condition, ruleset: Ruleset) -> str:
    """One condition in words, with the parameter it names: `missed_in_service_365d ≥ 2 ($repeat_misses)`."""
    op = condition.operator
    raw = condition.raw_value(op)
    value = ruleset.resolve(raw)
    shown = "[" + ", ".join(map(str, value)) + "]" if isinstance(value, tuple) else str(value).lower()
    named = f" ({raw})" if isinstance(raw, str) and raw.startswith("$") else ""
    return f"{condition.fact} {OPERATORS[op][0]} {shown}{named}"


_Plan = tuple[Any, ...]  # ("test", fact, op, value, text) or ("any" | "all", children)


@dataclass(frozen=True)
class _RulePlan:
    """A rule with its conditions resolved once: a predicate to run fast, a tree to explain."""

    rule: Rule
    trigger: str
    nodes: list[_Plan]
    holds: Callable[[dict[str, Any]], bool]


_PLANS: dict[str, list[_RulePlan]] = {}


def _plan_node(ruleset: Ruleset, node: Any) -> _Plan:
    if isinstance(node, Condition):
        op = node.operator
        return ("test", node.fact, op, ruleset.resolve(node.raw_value(op)), describe_condition(node, ruleset))
    if isinstance(node, AnyOf):
        return ("any", [_plan_node(ruleset, child) for child in node.any])
    return ("all", [_plan_node(ruleset, child) for child in node.all])


def _predicate(plan: _Plan) -> Any:
    if plan[0] == "test":
        _, fact, op, value, _text = plan
        return lambda facts: _test(op, facts.get(fact), value)
    children = [_predicate(child) for child in plan[1]]
    if plan[0] == "any":
        return lambda facts: any(child(facts) for child in children)
    return lambda facts: all(child(facts) for child in children)


def _plans(ruleset: Ruleset) -> list[_RulePlan]:
    """Each rule's conditions resolved once per ruleset version (parameters substituted, texts made)."""
    plans = _PLANS.get(ruleset.version)
    if plans is None:
        plans = []
        for rule in ruleset.rules:
            trigger = TRIGGERS[rule.trigger]
            nodes = [_plan_node(ruleset, node) for node in rule.when]
            checks = [_predicate(node) for node in nodes]
            plans.append(_RulePlan(rule, trigger, nodes, _all_hold(trigger, checks)))
        _PLANS[ruleset.version] = plans
    return plans


def _all_hold(trigger: str, checks: list[Any]) -> Any:
    return lambda facts: facts[trigger] is True and all(check(facts) for check in checks)


def fired_by_interpreter(ruleset: Ruleset, facts: dict[str, Any]) -> list[str]:
    """The ids of the rules whose conditions hold, by the pure-Python interpreter, in rule order."""
    return [plan.rule.id for plan in _plans(ruleset) if plan.holds(facts)]


def _explain_node(plan: _Plan, facts: dict[str, Any], out: list[ConditionResult]) -> bool:
    if plan[0] == "test":
        _, fact, op, value, text = plan
        actual = facts.get(fact)
        held = _test(op, actual, value)
        out.append(ConditionResult(test=text, actual=actual, held=held))
        return held
    results = [_explain_node(child, facts, out) for child in plan[1]]
    return any(results) if plan[0] == "any" else all(results)


def explain(ruleset: Ruleset, facts: dict[str, Any], only: Iterable[str] | None = None) -> list[RuleExplanation]:
    """The interpreter's verdict on every rule (or those `only`), in rule order: each condition, its value."""
    wanted = None if only is None else set(only)
    explanations = []
    for plan in _plans(ruleset):
        if wanted is not None and plan.rule.id not in wanted:
            continue
        rule, trigger, nodes = plan.rule, plan.trigger, plan.nodes
        fired = facts[trigger] is True
        results = [ConditionResult(test=f"trigger is {rule.trigger}", actual=facts[trigger], held=fired)]
        for node in nodes:
            fired = _explain_node(node, facts, results) and fired
        explanations.append(RuleExplanation(rule_id=rule.id, fired=fired, conditions=tuple(results)))
    return explanations


def explain_rule(ruleset: Ruleset, rule: Rule, facts: dict[str, Any]) -> RuleExplanation:
    """The interpreter's verdict on one rule."""
    return explain(ruleset, facts, only=[rule.id])[0]
