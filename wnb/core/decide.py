"""Combine the rules that fired into one Decision (DOMAIN.md §5.1–5.2). Pure.

Tasks are the union over fired rules, one per code (per service), with the earliest due time asked
for; flags one per code, at the highest level asked for.
"""

from __future__ import annotations

from datetime import datetime

from wnb.core.domain import Decision, FlagDecision, Level, Role, TaskDecision
from wnb.core.ruleset import Ruleset


def decide(ruleset: Ruleset, fired: list[str], service: str, due_from: datetime) -> Decision:
    """The flags and tasks the fired rules ask for; due times count from `due_from` (the recorded time)."""
    day_end = ruleset.settings.calendar.working_day_ends
    flags: dict[str, tuple[Level, list[str]]] = {}
    tasks: dict[str, tuple[Role, datetime, list[str]]] = {}
    for rule_id in fired:
        rule = ruleset.rule(rule_id)
        if rule.flag is not None:
            level, rule_ids = flags.get(rule.flag.code, (rule.flag.level, []))
            if rule.flag.level is Level.RED:
                level = Level.RED
            flags[rule.flag.code] = (level, [*rule_ids, rule_id])
        for spec in rule.tasks:
            due = spec.due_rule.due_at(due_from, day_end)
            if spec.code in tasks:
                owner, earliest, rule_ids = tasks[spec.code]
                if due < earliest:
                    owner, earliest = spec.owner, due
                tasks[spec.code] = (owner, earliest, [*rule_ids, rule_id])
            else:
                tasks[spec.code] = (spec.owner, due, [rule_id])
    return Decision(
        fired=tuple(fired),
        flags=tuple(FlagDecision(code=code, level=level, rule_ids=tuple(ids)) for code, (level, ids) in flags.items()),
        tasks=tuple(
            TaskDecision(code=code, service=service, owner_role=owner, due_at=due, rule_ids=tuple(ids))
            for code, (owner, due, ids) in tasks.items()
        ),
    )
