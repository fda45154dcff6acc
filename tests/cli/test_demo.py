"""`wnb demo` (wnb/cli/demo.py) through the installed console script: the sample feeds moved to the week it
runs, an account for each role, and the database a later `wnb serve` opens."""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from wnb.core.calendar import LONDON
from wnb.core.domain import Role
from wnb.database import open_database
from wnb.store import listing, quick
from wnb.store.accounts import user_for_password
from wnb.store.quick import open_at_newest, sqlite_file

WNB = Path(sys.executable).parent / "wnb"
STRONG = "a-production-secret-of-more-than-32-characters"
AS_DATED = "2026-03-18T09:00:00+00:00"  # the Wednesday the sample feeds were written for (the old default --now)
LATER_DAY = "2026-12-02"  # a Wednesday 37 weeks later; neither stretch of weeks holds a bank holiday
LATER_NOW = datetime(2026, 12, 2, 9, 0, tzinfo=LONDON)  # --today alone: the sweep runs at 09:00 UK time


def wnb(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("WNB_") and key != "LINES"}
    clean.update(
        COLUMNS="200", WNB_DATABASE_URL=f"sqlite:///{folder / 'wnb.db'}", WNB_RULES_DIR=str(ROOT / "rules/default")
    )
    clean.update(env)
    return subprocess.run(
        [str(WNB), *args], cwd=folder, env=clean, capture_output=True, text=True, timeout=120, check=False
    )


@dataclass
class Demo:
    out: str
    database_url: str  # as printed for a later `wnb serve`
    tasks: list[dict[str, Any]]


def run_demo(folder: Path, *args: str) -> Demo:
    result = wnb(folder, "demo", *args)
    assert result.returncode == 0, result.stderr
    match = re.search(r"^Pages: WNB_DATABASE_URL=(\S+) ", result.stdout, re.MULTILINE)
    assert match, result.stdout
    (url,) = shlex.split(match[1])
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    tasks = wnb(elsewhere, "tasks", "--json", "--all", WNB_DATABASE_URL=url)  # from another folder, as printed
    assert tasks.returncode == 0, tasks.stderr
    return Demo(result.stdout, url, json.loads(tasks.stdout))


@pytest.fixture(scope="module")
def as_dated(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return run_demo(tmp_path_factory.mktemp("as-dated"), "--now", AS_DATED)


@pytest.fixture(scope="module")
def later(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return run_demo(tmp_path_factory.mktemp("later"), "--today", LATER_DAY)


def _due(task: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(task["due_at"])


def test_the_demo_moves_the_sample_feeds_to_the_week_of_today_and_sweeps_that_day(later: Demo) -> None:
    assert "sample feeds moved 37 weeks later, so they end in the week of Wed 02 Dec 2026" in later.out
    assert "bank holidays may differ" in later.out
    assert "sweep as of Wed 02 Dec 2026 09:00 GMT" in later.out


def test_the_demo_s_open_tasks_are_not_overdue_on_the_day_it_runs(later: Demo) -> None:
    open_tasks = [task for task in later.tasks if task["status"] in ("requested", "accepted")]

    assert open_tasks and all(_due(task) > LATER_NOW for task in open_tasks)
    assert {task["owner_role"] for task in open_tasks} >= {"safeguarding-nurse", "booking-team", "clinician"}
    assert all(task["escalation_level"] == 0 for task in open_tasks)  # nothing escalated away from its owner


def test_the_sample_s_older_work_is_completed_as_its_history_with_a_note(later: Demo) -> None:
    done = [task for task in later.tasks if task["status"] == "completed"]

    assert done and all(_due(task) < LATER_NOW for task in done)
    assert "tasks due before Wed 02 Dec 2026 09:00 GMT completed as the sample's history" in later.out
    assert "demo-today.ndjson: 3 outcomes of today, recorded at Wed 02 Dec 2026 08:45 GMT" in later.out


def test_the_demo_in_a_later_week_raises_the_same_tasks_due_as_many_weeks_later(as_dated: Demo, later: Demo) -> None:
    def shape(task: dict[str, Any]) -> tuple[Any, ...]:
        return task["id"], task["code"], task["owner_role"], task["status"], task["escalation_level"]

    assert [shape(task) for task in later.tasks] == [shape(task) for task in as_dated.tasks]
    for before, after in zip(as_dated.tasks, later.tasks, strict=True):
        wall_clock = _due(before).astimezone(LONDON).replace(tzinfo=None) + timedelta(weeks=37)
        assert _due(after).astimezone(LONDON).replace(tzinfo=None) == wall_clock, after["id"]


def test_the_demo_creates_an_account_for_each_role_and_prints_its_password_once(later: Demo) -> None:
    table = later.out.split("Accounts (passwords shown once)")[1]
    printed = dict(re.findall(r"^│ ([a-z-]+) +│ (\S+) +│$", table, re.MULTILINE))

    assert sorted(printed) == sorted(role.value for role in Role if role is not Role.CLINIC_SYSTEM)
    assert len(set(printed.values())) == len(printed)  # a new password each
    db = open_database(later.database_url)
    try:
        for name, password in printed.items():
            person = user_for_password(db, name, password)
            assert person is not None and person.role == Role(name), name
    finally:
        db.dispose()


def test_the_demo_puts_the_default_ruleset_live_through_the_registry_with_its_accounts(later: Demo) -> None:
    history = wnb(ROOT, "rules", "history", "--json", WNB_DATABASE_URL=later.database_url)
    assert history.returncode == 0, history.stderr
    (release,) = json.loads(history.stdout)
    assert release["status"] == "active" and release["approved"] is True
    assert release["proposed_by"] == "safeguarding-lead"
    assert release["approved_by"] == "clinical-safety-officer" and release["activated_by"] == "admin"
    assert release["version"].startswith(re.search(r"ruleset (\w{12})", later.out)[1])  # type: ignore[index]


def test_demo_serve_is_refused_in_production_mode_before_anything_is_written(tmp_path: Path) -> None:
    production = {"WNB_MODE": "production", "WNB_SESSION_SECRET": STRONG, "WNB_WEBHOOK_SECRET": STRONG}
    result = wnb(tmp_path, "demo", "--serve", **production)

    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("wnb: error: refusing to serve the demo in production mode (WNB_MODE=production)")
    assert result.stdout == ""
    assert not (tmp_path / "wnb-demo.db").exists()


def test_the_demo_gives_its_context_match_rate_as_the_data_says(later: Demo) -> None:
    """The sample has context for every child but one, whose one event is the unmatched one."""
    path = sqlite_file(later.database_url)
    assert path is not None
    with closing(sqlite3.connect(path)) as connection:
        events, matched = connection.execute(
            "SELECT count(*), sum(nhs_number IN (SELECT nhs_number FROM person_context)) FROM event "
            "WHERE state != 'stale'"
        ).fetchone()
    assert (matched, events) == (20, 21)
    assert f"context match rate: {matched} of {events} judged events (95%) have" in later.out
    assert "1 person has events but no context" in later.out


def test_a_quick_listing_of_the_demo_s_file_gives_what_the_store_lists(later: Demo, tmp_path: Path) -> None:
    """`wnb tasks` and `wnb flags` read a SQLite file with sqlite3 (wnb.store.quick, issue 17): the same items, in
    the same order, as wnb.store.listing's SQLAlchemy reading, byte for byte as JSON, filter by filter."""
    source = sqlite_file(later.database_url)
    assert source is not None
    copy = tmp_path / "copy.db"
    with closing(sqlite3.connect(source)) as demo_file, closing(sqlite3.connect(copy)) as copied:
        demo_file.backup(copied)
        # What the demo has none of: assigned tasks, and a time with a fraction of a second.
        copied.execute("UPDATE task SET assignee = 'booking-team' WHERE owner_role = 'booking-team' AND id % 2 = 0")
        copied.execute("UPDATE task SET due_at = '2026-12-04 10:15:30.123456' WHERE id = (SELECT MIN(id) FROM task)")
        copied.commit()
    url = f"sqlite:///{copy}"
    some = later.tasks[-1]
    task_filters: list[dict[str, Any]] = [
        {},
        {"include_closed": True},
        {"role": "safeguarding-nurse"},
        {"include_closed": True, "assignee": "booking-team"},
        {"include_closed": True, "nhs_number": some["nhs_number"], "code": some["code"]},
        {"role": "nobody"},
    ]
    flag_filters: list[dict[str, Any]] = [{}, {"include_closed": True}, {"nhs_number": some["nhs_number"]}]
    quick_file = open_at_newest(url)
    assert quick_file is not None
    db = open_database(url)
    try:
        with closing(quick_file), db.connect() as connection:
            for wanted in task_filters:
                expected = listing.tasks(connection, **wanted)
                assert json.dumps(quick.tasks(quick_file, **wanted), indent=2) == json.dumps(expected, indent=2), wanted
            for wanted in flag_filters:
                expected = listing.flags(connection, **wanted)
                assert json.dumps(quick.flags(quick_file, **wanted), indent=2) == json.dumps(expected, indent=2), wanted
            assigned = listing.tasks(connection, include_closed=True, assignee="booking-team")
            assert assigned and listing.tasks(connection) and listing.flags(connection)
    finally:
        db.dispose()


def test_a_quick_listing_reads_only_a_sqlite_file_at_the_newest_revision(later: Demo, tmp_path: Path) -> None:
    source = sqlite_file(later.database_url)
    assert source is not None
    older = tmp_path / "older.db"
    with closing(sqlite3.connect(source)) as demo_file, closing(sqlite3.connect(older)) as copied:
        demo_file.backup(copied)
        copied.execute("UPDATE alembic_version SET version_num = '0013_directory'")
        copied.commit()

    assert open_at_newest(f"sqlite:///{older}") is None  # wnb.database.open_database migrates it
    assert open_at_newest(f"sqlite:///{tmp_path / 'none.db'}") is None and not (tmp_path / "none.db").exists()
    for url in ("postgresql://localhost/wnb", "sqlite://", "sqlite:///:memory:", f"sqlite:///{source}?mode=ro"):
        assert sqlite_file(url) is None, url
