"""The flag and task tables people read on a terminal (`wnb flags`, `wnb tasks`, `wnb demo`).

At any width an id or NHS number is shown whole, on one line: people read it and type it back. The other
columns wrap at spaces, and a word too long for its column folds onto the next line rather than being cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from wnb.core.wording import due_in_words, local, local_short, plain_code

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


def flags_table(items: list[dict[str, Any]], title: str) -> Table:
    columns = ("id", "NHS number", "flag", "level", "status", "rules", "raised (UK time)")
    rows = [
        (
            item["id"],
            item["nhs_number"],
            escape(plain_code(item["code"])),
            _level(item["level"]),
            item["status"],
            ", ".join(item["rule_ids"]),
            local(item["raised_at"]),
        )
        for item in items
    ]
    return _table(title, columns, rows)


def _due(item: dict[str, Any], now: datetime) -> str:
    """An open task's due time in words when overdue (in red), else the UK time it falls due."""
    if item["status"] in ("requested", "accepted"):
        words = due_in_words(item["due_at"], now)
        if words.startswith("overdue"):
            return f"[bold red]{words}[/]"
    return local_short(item["due_at"])


def tasks_table(items: list[dict[str, Any]], title: str, now: datetime) -> Table:
    columns = ("id", "NHS number", "service", "what to do", "owner", "status", "due (UK time)", "level")
    rows = [
        (
            item["id"],
            item["nhs_number"],
            escape(item["service"]),
            escape(plain_code(item["code"])),
            item["owner_role"] + (f" ({item['assignee']})" if item.get("assignee") else ""),
            item["status"],
            _due(item, now),
            str(item["escalation_level"]),
        )
        for item in items
    ]
    return _table(title, columns, rows)
