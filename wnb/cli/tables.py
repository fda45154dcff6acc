"""The flag and task tables people read on a terminal (`wnb flags`, `wnb tasks`, `wnb demo`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from wnb.core.wording import due_in_words, local, local_short, plain_code


def _level(level: str) -> str:
    return f"[bold red]{level}[/]" if level == "red" else f"[yellow]{level}[/]"


def flags_table(items: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("id", "NHS number", "flag", "level", "status", "rules", "raised (UK time)"):
        table.add_column(column)
    for item in items:
        table.add_row(
            item["id"],
            item["nhs_number"],
            escape(plain_code(item["code"])),
            _level(item["level"]),
            item["status"],
            ", ".join(item["rule_ids"]),
            local(item["raised_at"]),
        )
    return table


def tasks_table(items: list[dict[str, Any]], title: str, now: datetime) -> Table:
    """Open tasks show their due time in words when overdue (in red), else the UK time it falls due."""
    table = Table(title=title, title_justify="left")
    for column in ("id", "NHS number", "service", "what to do", "owner", "status", "due (UK time)", "level"):
        table.add_column(column)
    for item in items:
        due = local_short(item["due_at"])
        if item["status"] in ("requested", "accepted"):
            words = due_in_words(item["due_at"], now)
            due = f"[bold red]{words}[/]" if words.startswith("overdue") else due
        table.add_row(
            item["id"],
            item["nhs_number"],
            escape(item["service"]),
            escape(plain_code(item["code"])),
            item["owner_role"] + (f" ({item['assignee']})" if item.get("assignee") else ""),
            item["status"],
            due,
            str(item["escalation_level"]),
        )
    return table
