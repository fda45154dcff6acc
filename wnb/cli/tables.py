"""The flag and task tables people read on a terminal (`wnb flags`, `wnb tasks`, `wnb demo`), and a simulation's
comparison (`wnb rules simulate`).

At any width an id or NHS number is shown whole, on one line: people read it and type it back (an NHS number
spaced 999 000 0018, 12 characters). The other columns wrap at spaces, and a word too long for its column folds
onto the next line rather than being cut. Codes and statuses are shown in words: a flag's or task's title from
the ruleset (`titles`, by default the code in words), "not yet acknowledged" for `requested`; `--json` keeps the
codes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from wnb.core.kinds import OPEN_TASK_STATUSES
from wnb.core.nhs import spaced_nhs_number
from wnb.core.wording import code_title, due_in_words, flag_status, local, local_short, task_status

if TYPE_CHECKING:  # a listing must not import the service stack (tests/cli/test_startup.py)
    from wnb.service.simulate import Simulation

Titles = Callable[[str], str]  # a flag or task code → its words (Ruleset.title)

WHOLE = ("id", "NHS number")


def _table(title: str, columns: tuple[str, ...], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        if column in WHOLE:
            widest = max((len(row[index]) for row in rows), default=0)
            table.add_column(column, no_wrap=True, min_width=widest)
        else:
            table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _level(level: str) -> str:
    return f"[bold red]{level}[/]" if level == "red" else f"[yellow]{level}[/]"


def flags_table(items: list[dict[str, Any]], title: str, titles: Titles = code_title) -> Table:
    columns = ("id", "NHS number", "flag", "level", "status", "rules", "raised (UK time)")
    rows = [
        (
            item["id"],
            spaced_nhs_number(item["nhs_number"]),
            escape(titles(item["code"])),
            _level(item["level"]),
            flag_status(item["status"]),
            ", ".join(item["rule_ids"]),
            local(item["raised_at"]),
        )
        for item in items
    ]
    return _table(title, columns, rows)


def _due(item: dict[str, Any], now: datetime) -> str:
    """An open task's due time in words when overdue (in red), else the UK time it falls due."""
    if item["status"] in OPEN_TASK_STATUSES:
        words = due_in_words(item["due_at"], now)
        if words.startswith("overdue"):
            return f"[bold red]{words}[/]"
    return local_short(item["due_at"])


def tasks_table(items: list[dict[str, Any]], title: str, now: datetime, titles: Titles = code_title) -> Table:
    columns = ("id", "NHS number", "service", "what to do", "owner", "status", "due (UK time)", "level")
    rows = [
        (
            item["id"],
            spaced_nhs_number(item["nhs_number"]),
            escape(item["service"]),
            escape(titles(item["code"])),
            item["owner_role"] + (f" ({item['assignee']})" if item.get("assignee") else ""),
            task_status(item["status"]),
            _due(item, now),
            str(item["escalation_level"]),
        )
        for item in items
    ]
    return _table(title, columns, rows)


def simulation_tables(result: Simulation, title: str) -> list[Table]:
    """The per-rule and per-role comparisons as terminal tables; differing rows marked."""
    versions = result.baseline.get("versions") or {}
    baseline = (
        f"; the baseline (raised) replayed under the version active for each event ({len(versions)} versions)"
        if result.baseline.get("how") == "replayed"
        else "; the baseline is what was raised"
    )
    rules = Table(
        title=f"Simulation of {title}: {result.events_replayed} events replayed{baseline}", title_justify="left"
    )
    for column in ("rule", "flags raised", "flags simulated", "tasks raised", "tasks simulated", ""):
        rules.add_column(column)
    for row in result.by_rule:
        counts = (row.actual_flags, row.simulated_flags, row.actual_tasks, row.simulated_tasks)
        rules.add_row(row.key, *(str(n) for n in counts), "[bold]differs[/]" if row.differs else "")
    roles = Table(title="Tasks per role (the role that first owned them)", title_justify="left")
    for column in ("role", "tasks raised", "tasks simulated", ""):
        roles.add_column(column)
    for row in result.by_role:
        roles.add_row(
            row.key, str(row.actual_tasks), str(row.simulated_tasks), "[bold]differs[/]" if row.differs else ""
        )
    items = Table(title="Raised on one side only (the first 20 of each)", title_justify="left")
    for column in ("side", "kind", "code", "NHS number", "service", "owner", "rules"):
        items.add_column(column)
    for side, listed in (("candidate only", result.only_simulated), ("actually only", result.only_actual)):
        for item in listed[:20]:
            cells = (
                item.kind,
                item.code,
                item.nhs_number,
                item.service or "",
                item.role or "",
                ", ".join(item.rule_ids),
            )
            items.add_row(side, *(escape(cell) for cell in cells))
    return [rules, roles, items] if result.only_simulated or result.only_actual else [rules, roles]
