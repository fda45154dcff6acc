"""The flag and task tables at 80 columns (issue 17): ids and NHS numbers (spaced, 999 000 0018) whole on their
row's first line, nothing cut short, no line wider than the terminal; codes and statuses in words (issue 16)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from tests.cli.test_cli import run_in
from wnb.cli.tables import flags_table, tasks_table
from wnb.core.nhs import spaced_nhs_number
from wnb.core.ruleset import Ruleset

NOW = datetime(2026, 3, 18, 9, 0, tzinfo=UTC)


def rendered(table: Table, width: int = 80) -> str:
    text = io.StringIO()
    Console(width=width, file=text, color_system=None).print(table)
    return text.getvalue()


def assert_readable(text: str, items: list[dict[str, Any]], width: int = 80) -> None:
    assert "…" not in text  # nothing is cut short: a long word folds onto the next line
    assert max(len(line) for line in text.splitlines()) <= width
    for item in items:
        assert re.search(rf"│ {item['id']} +│ {spaced_nhs_number(item['nhs_number'])} │", text), (item["id"], text)


def test_a_three_digit_task_id_and_the_longest_task_title_fit_80_columns(ruleset: Ruleset) -> None:
    longest = max(
        (task.code for rule in ruleset.rules for task in rule.tasks), key=lambda code: len(ruleset.title(code))
    )
    items = [
        {
            "id": "T123",
            "nhs_number": "9990000018",
            "service": "community-paediatrics",
            "code": longest,
            "owner_role": "safeguarding-nurse",
            "status": "requested",
            "due_at": "2026-03-02T17:00:00Z",
            "escalation_level": 2,
        },
        {
            "id": "T7",
            "nhs_number": "9990000026",
            "service": "orthoptics",
            "code": "inform-gp",
            "owner_role": "booking-team",
            "status": "accepted",
            "due_at": "2026-03-20T17:00:00Z",
            "escalation_level": 0,
        },
    ]

    text = rendered(tasks_table(items, "2 tasks", NOW, ruleset.title))

    assert_readable(text, items)
    assert "overdue" in text
    words = " ".join(rendered(tasks_table(items, "2 tasks", NOW, ruleset.title), width=200).split())
    assert "999 000 0018" in words and "9990000018" not in words
    assert "not yet acknowledged" in words and "requested" not in words
    assert "Tell the GP" in words and "inform-gp" not in words


def test_a_three_digit_flag_id_with_several_rules_fits_80_columns(ruleset: Ruleset) -> None:
    items = [
        {
            "id": "F123",
            "nhs_number": "9990000018",
            "code": "safeguarding-plan-wnb",
            "level": "red",
            "status": "active",
            "rule_ids": ["WNB-01", "WNB-02", "WNB-09-young-person"],
            "raised_at": "2026-03-02T09:00:00+00:00",
        }
    ]

    text = rendered(flags_table(items, "1 flag", ruleset.title))

    assert_readable(text, items)
    assert "safeguarding-plan-wnb" not in text and "children's" in text


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("demo")
    made = run_in(folder, "demo", db=folder / "wnb-demo.db")
    assert made.code == 0, made.err
    yield folder / "wnb-demo.db"


@pytest.mark.parametrize("listing", ["tasks", "flags"])
def test_the_demo_databases_tables_show_every_id_and_nhs_number_whole_at_80_columns(demo: Path, listing: str) -> None:
    items = run_in(demo.parent, listing, "--json", db=demo).json()
    table = run_in(demo.parent, listing, db=demo, columns=80)

    assert table.code == 0, table.err
    assert items
    assert_readable(table.out, items)
