"""The decision chart in Markdown, rendered from a ruleset: each rule's id, title, trigger, conditions, flag,
tasks and the parameters it names, then the ruleset's counts, deadlines and escalation chains.

`python -m wnb.service.decision_chart [RULES_DIR] [OUT]` writes docs/decision-chart.md from rules/default; a
test fails while the file differs from what this renders. It reads the validated ruleset, so any key a rule
file may hold beyond the chart's (hazards, say) is left out rather than refused here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from wnb.core.interpreter import describe_condition
from wnb.core.ruleset import AnyOf, Condition, Rule, Ruleset

CHART = "docs/decision-chart.md"

TRIGGER_WORDS = {
    "missed-appointment": "a missed appointment (did-not-attend or late-not-seen)",
    "patient-cancellation": "a cancellation by or for the patient",
    "discharge": "an outcome of discharged, whatever the attendance",
    "follow-up-deadline": "the follow-up deadline of a missed appointment, judged by the sweep (due times count "
    "from the deadline)",
}
COUNTED = {"missed": "missed appointments", "patient-cancellation": "cancellations by or for the patient"}


def _conditions(nodes: tuple[Any, ...], ruleset: Ruleset, depth: int = 0) -> Iterator[str]:
    """The conditions as a nested Markdown list: `any of:` / `all of:` above their members."""
    indent = "  " * depth
    for node in nodes:
        if isinstance(node, Condition):
            yield f"{indent}- `{describe_condition(node, ruleset)}`"
        else:
            members = node.any if isinstance(node, AnyOf) else node.all
            yield f"{indent}- {'any' if isinstance(node, AnyOf) else 'all'} of:"
            yield from _conditions(members, ruleset, depth + 1)


def _named(nodes: tuple[Any, ...]) -> Iterator[str]:
    for node in nodes:
        if isinstance(node, Condition):
            raw = node.raw_value(node.operator)
            for value in raw if isinstance(raw, tuple) else (raw,):
                if isinstance(value, str) and value.startswith("$"):
                    yield value[1:]
        else:
            yield from _named(node.any if isinstance(node, AnyOf) else node.all)


def _parameters(rule: Rule) -> list[str]:
    """The parameters (`$name`) a rule's conditions name, once each, in the order they first appear."""
    return list(dict.fromkeys(_named(rule.when)))


def _days(count: int) -> str:
    return f"{count} working day{'' if count == 1 else 's'}"


def _flag(rule: Rule) -> str:
    return f"`{rule.flag.code}` ({rule.flag.level.value})" if rule.flag else "none"


def _rule_section(rule: Rule, ruleset: Ruleset) -> list[str]:
    lines = [f"## {rule.id}", "", f"**{rule.title}**", ""]
    lines.append(
        f"On {TRIGGER_WORDS.get(rule.trigger, rule.trigger)}, "
        + ("always." if not rule.when else "when this holds:" if len(rule.when) == 1 else "when all of these hold:")
    )
    if rule.when:
        lines += ["", *_conditions(rule.when, ruleset)]
    lines += ["", f"Flag: {_flag(rule)}.", ""]
    if rule.tasks:
        lines += ["| task | owner | due |", "|---|---|---|"]
        lines += [f"| `{task.code}` | {task.owner.value} | {task.due_rule} |" for task in rule.tasks]
    else:
        lines.append("Tasks: none.")
    if names := _parameters(rule):
        shown = ", ".join(f"`{name}` = {ruleset.param(name)}" for name in names)
        lines += ["", f"Parameters: {shown}."]
    return [*lines, ""]


def _settings_section(ruleset: Ruleset) -> list[str]:
    settings = ruleset.settings
    users = {name: [rule.id for rule in ruleset.rules if name in _parameters(rule)] for name in settings.parameters}
    lines = ["## The ruleset's settings", "", "Parameters (`$name` in a rule file):", ""]
    lines += ["| parameter | value | named by |", "|---|---|---|"]
    lines += [
        f"| `{name}` | {value} | {', '.join(users[name]) or '— (read where the facts are derived)'} |"
        for name, value in settings.parameters.items()
    ]
    lines += ["", "Counts over a window that ends at the appointment's time, both ends included:", ""]
    lines += ["| fact | counts | in | window |", "|---|---|---|---|"]
    lines += [
        f"| `{name}` | {COUNTED.get(spec.count, spec.count)} | "
        f"{'this service' if spec.services == 'this' else 'all services'} | {spec.window_days} days |"
        for name, spec in settings.counts.items()
    ]
    review, follow_up, escalation = settings.discharge_review, settings.follow_up, settings.escalation
    lines += [
        "",
        f"- A working day ends at {settings.calendar.working_day_ends:%H:%M} (Europe/London): due times fall then.",
        f"- Follow-up deadline: {_days(follow_up.deadline_working_days)} after a miss was recorded.",
        f"- Discharge review: a miss within {review.window_days} days in the service counts as unreviewed until a "
        f"`{review.review_task}` task for that service is completed.",
        f"- Escalation: a task still requested at its due time moves to the next role of its first owner's chain, "
        f"due {_days(escalation.delay_working_days)} later:",
        "",
        "| first owner | then |",
        "|---|---|",
    ]
    lines += [
        f"| {first.value} | {' → '.join(role.value for role in then)} |" for first, then in escalation.chains.items()
    ]
    return [*lines, ""]


def render(ruleset: Ruleset, source: str = "rules/default") -> str:
    """The chart of `ruleset` (read from `source`) as one Markdown document."""
    lines = [
        "# The decision chart",
        "",
        f"<!-- Generated from {source} by `python -m wnb.service.decision_chart`; edit the rule files, not this. -->",
        "",
        f"The ruleset in `{source}` ({ruleset.settings.name}), one rule file per row. Every number is a parameter",
        "of its `ruleset.yaml` that a trust can change and sign off. How the words, windows and due times are read:",
        "[readings.md](readings.md), which also says what each fact a condition tests means.",
        "",
        "| rule | on | flag | tasks |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| [{rule.id}](#{rule.id.lower()}) | {rule.trigger} | {_flag(rule)} | "
        f"{', '.join(f'`{task.code}`' for task in rule.tasks) or '—'} |"
        for rule in ruleset.rules
    ]
    lines.append("")
    for rule in ruleset.rules:
        lines += _rule_section(rule, ruleset)
    lines += _settings_section(ruleset)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":  # `python -m wnb.service.decision_chart` rewrites docs/decision-chart.md
    import sys
    from pathlib import Path

    from wnb.rule_files import load_ruleset

    source = sys.argv[1] if len(sys.argv) > 1 else "rules/default"
    out = Path(sys.argv[2] if len(sys.argv) > 2 else CHART)
    out.write_text(render(load_ruleset(source), source), encoding="utf-8")
