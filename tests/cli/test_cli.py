"""The `wnb` command line (ARCHITECTURE.md §4) on a real SQLite file.

Commands run in this process through the Typer app the console script runs (a process each took one to two
seconds, most of this file's time); the console script itself, as its own process, is run by the tests of
what only a process shows (help, a one-line error on stderr, every command's help). A module fixture loads one
database through the command line, and tests that change it work on their own copy of that file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.factories import run_wnb
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.store.accounts import create_user, person_named

WNB = Path(sys.executable).parent / "wnb"
RULES = ROOT / "rules" / "default"

# `--by` names an enabled account; its role must allow the action (wnb.core.policy).
PEOPLE = {"nurse.one": "safeguarding-lead", "clerk.two": "booking-team", "dr.three": "clinician"}
CPP_CHILD = "9990000018"  # on a child protection plan
COMPLEX_CHILD = "9990000034"  # complex health needs
CSV_CHILD = "9990000042"
ADULT = "9990000050"

FLAG_KEYS = ["id", "nhs_number", "code", "level", "status", "rule_ids", "raised_at", "event_ids"]
TASK_KEYS = [
    "id",
    "nhs_number",
    "service",
    "code",
    "owner_role",
    "status",
    "due_at",
    "escalation_level",
    "assignee",
    "rule_ids",
    "event_ids",
]

CONTEXT = [
    {
        "nhs_number": CPP_CHILD,
        "date_of_birth": "2019-05-01",
        "statuses": [{"kind": "child-protection-plan", "start": "2025-06-01"}],
        "complex_health_needs": False,
        "care_and_support_needs": False,
        "contacts": {"social_worker": "Duty team"},
    },
    {
        "nhs_number": COMPLEX_CHILD,
        "date_of_birth": "2014-02-10",
        "statuses": [],
        "complex_health_needs": True,
    },
    {"nhs_number": ADULT, "date_of_birth": "1990-01-01"},
    {"nhs_number": "9990000019", "date_of_birth": "2015-01-01"},  # invalid NHS number: rejected
]

NDJSON_LINES: list[dict[str, Any] | str] = [
    {
        "source": "pas",
        "event_id": "pas-1",
        "nhs_number": CPP_CHILD,
        "service": "community-paediatrics",
        "appointment_id": "A1",
        "appointment_at": "2026-03-02T10:00:00+00:00",
        "attendance": "did-not-attend",
        "recorded_at": "2026-03-02T12:05:00+00:00",
    },
    {
        "source": "pas",
        "event_id": "pas-2",
        "nhs_number": COMPLEX_CHILD,
        "service": "paediatric-diabetes",
        "appointment_id": "A2",
        "appointment_at": "2026-03-04T14:00:00+00:00",
        "attendance": "3",
        "priority": "urgent",
        "recorded_at": "2026-03-04T16:00:00+00:00",
    },
    {
        "source": "pas",
        "event_id": "pas-3",
        "nhs_number": "9990000019",
        "service": "audiology",
        "appointment_id": "A3",
        "appointment_at": "2026-03-03T09:30:00+00:00",
        "attendance": "3",
    },
    {
        "source": "pas",
        "event_id": "pas-2",
        "nhs_number": COMPLEX_CHILD,
        "service": "paediatric-diabetes",
        "appointment_id": "A2",
        "appointment_at": "2026-03-04T14:00:00+00:00",
        "attendance": "attended",
    },
    {
        "source": "pas",
        "event_id": "pas-4",
        "nhs_number": ADULT,
        "service": "audiology",
        "appointment_id": "A4",
        "appointment_at": "2026-03-05T09:30:00+00:00",
        "attendance": "did-not-attend",
        "recorded_at": "2026-03-05T10:00:00+00:00",
    },
    '{"source": "pas", "event_id": "pas-5", "nhs_number": "9990000018"',
]
CSV_TEXT = (
    "source,event_id,nhs_number,date_of_birth,service,appointment_id,appointment_at,attendance,priority,"
    "outcome,first_appointment,recorded_at\n"
    "community-ehr,c-1,999 000 0042,2012-08-30,orthoptics,S1,2026-03-05T11:00:00+00:00,7,,,,"
    "2026-03-05T11:40:00+00:00\n"
    "community-ehr,c-2,9990000042,2012-08-30,orthoptics\n"
)


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)

    @property
    def words(self) -> str:
        """The output with line wrapping and table borders flattened to single spaces."""
        return " ".join(re.sub(r"[│┃|]", " ", self.out).split())


def run_in(folder: Path, *args: str, db: Path | None = None, columns: int | None = None) -> Run:
    """`wnb ARGS` in `folder`, in this process (tests.factories.run_wnb), on the database in the folder or `db`."""
    env = {"COLUMNS": str(columns) if columns else None, "LINES": None, "WNB_RULES_DIR": str(RULES)}
    ran = run_wnb(folder, *args, env={**env, "WNB_DATABASE_URL": f"sqlite:///{db or folder / 'wnb.db'}"})
    return Run(ran.returncode, ran.stdout, ran.stderr)


def run_process(folder: Path, *args: str, columns: int | None = None) -> Run:
    """`wnb ARGS` as its own process, through the installed console script, for the tests of the process itself."""
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES", "WNB_DATABASE_URL")}
    env.update(WNB_DATABASE_URL=f"sqlite:///{folder / 'wnb.db'}", WNB_RULES_DIR=str(RULES))
    if columns:
        env["COLUMNS"] = str(columns)
    result = subprocess.run(
        [str(WNB), *args], cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    return Run(result.returncode, result.stdout, result.stderr)


def assert_one_line_error(result: Run, *words: str) -> None:
    assert result.code != 0
    assert "Traceback" not in result.err, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("wnb: error:"), lines[0]
    for word in words:
        assert word in lines[0], lines[0]


@dataclass
class Loaded:
    folder: Path
    context: Run
    ingest_ndjson: Run
    ingest_csv: Run
    flags: list[dict[str, Any]]
    tasks: list[dict[str, Any]]

    def run(self, *args: str, columns: int | None = None) -> Run:
        """A read-only command on the loaded database."""
        return run_in(self.folder, *args, columns=columns)

    def flag(self, code: str) -> dict[str, Any]:
        return next(flag for flag in self.flags if flag["code"] == code)

    def task(self, code: str, nhs_number: str) -> dict[str, Any]:
        return next(task for task in self.tasks if task["code"] == code and task["nhs_number"] == nhs_number)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    folder = tmp_path_factory.mktemp("cli")
    (folder / "context.ndjson").write_text("".join(json.dumps(item) + "\n" for item in CONTEXT), encoding="utf-8")
    (folder / "feed.ndjson").write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in NDJSON_LINES),
        encoding="utf-8",
    )
    (folder / "feed.csv").write_text(CSV_TEXT, encoding="utf-8")
    context = run_in(folder, "context", "import", "context.ndjson")
    ingest_ndjson = run_in(folder, "ingest", "feed.ndjson")
    ingest_csv = run_in(folder, "ingest", str(folder / "feed.csv"))  # an absolute path, as an inbox poller gives
    people = open_database(f"sqlite:///{folder / 'wnb.db'}")  # the people whom `--by` names
    for name, role in PEOPLE.items():
        create_user(people, name, role, f"{name} passphrase long enough")
    people.dispose()
    flags, tasks = run_in(folder, "flags", "--json"), run_in(folder, "tasks", "--json")
    return Loaded(folder, context, ingest_ndjson, ingest_csv, flags.json(), tasks.json())


@pytest.fixture
def copy(loaded: Loaded, tmp_path: Path) -> Callable[..., Run]:
    """A private copy of the loaded database (a consistent snapshot, whatever else reads it); returns a runner."""
    source, target = sqlite3.connect(loaded.folder / "wnb.db"), sqlite3.connect(tmp_path / "wnb.db")
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()

    def run(*args: str, columns: int | None = None) -> Run:
        return run_in(tmp_path, *args, columns=columns)

    return run


# ---- context import and ingest ----


def test_context_import_prints_created_and_rejected_counts(loaded: Loaded) -> None:
    assert loaded.context.code == 0, loaded.context.err
    assert "3 created, 0 updated, 1 rejected" in " ".join(loaded.context.out.split())


def test_ingest_of_an_ndjson_file_prints_its_counts_and_exits_0_despite_rejected_lines(
    loaded: Loaded,
) -> None:
    result = loaded.ingest_ndjson
    assert result.code == 0, result.err
    counts = " ".join(result.out.split())
    assert "3 accepted, 0 superseded, 0 stale, 1 duplicate, 2 rejected" in counts


def test_ingest_of_a_csv_file_prints_its_counts_and_exits_0_despite_a_short_row(loaded: Loaded) -> None:
    result = loaded.ingest_csv
    assert result.code == 0, result.err
    assert "1 accepted, 0 superseded, 0 stale, 0 duplicate, 1 rejected" in " ".join(result.out.split())


def test_ingest_prints_each_files_counts_on_one_line_when_its_output_is_piped(loaded: Loaded) -> None:
    # Scripts depend on the command line (ARCHITECTURE.md §4): a pipe must not get terminal line wrapping,
    # whatever the length of the file's path.
    lines = loaded.ingest_csv.out.strip().splitlines()
    assert len(lines) == 1, loaded.ingest_csv.out
    assert lines[0] == f"{loaded.folder / 'feed.csv'}: 1 accepted, 0 superseded, 0 stale, 0 duplicate, 1 rejected"


def test_ingest_accepts_several_files_and_a_format_option(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text(json.dumps(NDJSON_LINES[0]) + "\n", encoding="utf-8")
    (tmp_path / "two.data").write_text(CSV_TEXT, encoding="utf-8")

    result = run_in(tmp_path, "ingest", "one.txt", "two.data", "--format", "ndjson", columns=300)

    assert result.code == 0, result.err
    # two.data read as NDJSON: its three lines are not JSON objects, so all are rejected, none dropped.
    assert "one.txt: 1 accepted" in result.out
    assert "two.data: 0 accepted, 0 superseded, 0 stale, 0 duplicate, 3 rejected" in result.out


def test_ingest_of_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    assert_one_line_error(run_process(tmp_path, "ingest", "absent.ndjson"), "absent.ndjson", "no such file")


# ---- flags and tasks listings ----


def test_flags_json_is_a_list_of_objects_with_exactly_the_documented_keys(loaded: Loaded) -> None:
    assert loaded.flags
    for flag in loaded.flags:
        assert list(flag) == FLAG_KEYS
        assert re.fullmatch(r"F\d+", flag["id"])
        assert flag["status"] == "active"
        assert flag["level"] in ("amber", "red")
        assert datetime.fromisoformat(flag["raised_at"]).utcoffset() is not None
    plan = loaded.flag("safeguarding-plan-wnb")
    assert (plan["nhs_number"], plan["level"], plan["rule_ids"], plan["event_ids"]) == (
        CPP_CHILD,
        "red",
        ["WNB-01"],
        ["pas/pas-1"],
    )
    assert ADULT not in {flag["nhs_number"] for flag in loaded.flags}


def test_tasks_json_is_a_list_of_objects_with_exactly_the_documented_keys_and_utc_due_times(
    loaded: Loaded,
) -> None:
    assert loaded.tasks
    for task in loaded.tasks:
        assert list(task) == TASK_KEYS
        assert re.fullmatch(r"T\d+", task["id"])
        assert task["status"] == "requested"
        assert task["escalation_level"] == 0
        due = datetime.fromisoformat(task["due_at"].replace("Z", "+00:00"))
        assert due.utcoffset() is not None and due.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)", task["due_at"])
    notify = next(task for task in loaded.tasks if task["code"] == "notify-social-worker")
    assert notify == {
        **notify,
        "nhs_number": CPP_CHILD,
        "service": "community-paediatrics",
        "owner_role": "safeguarding-nurse",
        "due_at": "2026-03-02T17:00:00Z",
        "rule_ids": ["WNB-01"],
        "event_ids": ["pas/pas-1"],
    }


def test_tasks_are_listed_soonest_due_first(loaded: Loaded) -> None:
    due = [task["due_at"] for task in loaded.tasks]
    assert due == sorted(due)


def test_tasks_role_filter_lists_only_that_roles_tasks(loaded: Loaded) -> None:
    result = loaded.run("tasks", "--json", "--role", "named-nurse")

    assert result.code == 0, result.err
    expected = [task for task in loaded.tasks if task["owner_role"] == "named-nurse"]
    assert expected
    assert result.json() == expected


def test_tasks_role_filter_refuses_an_unknown_role_with_exit_2_naming_the_known_roles(tmp_path: Path) -> None:
    result = run_in(tmp_path, "tasks", "--role", "safeguarding-nurses", columns=200)

    assert result.code == 2
    assert "'safeguarding-nurses' is not a role" in result.err
    assert "booking-team" in result.err and "safeguarding-nurse," in result.err and "admin" in result.err
    assert not (tmp_path / "wnb.db").exists()  # refused before any database is opened


def test_flags_nhs_number_filter_lists_only_that_persons_flags(loaded: Loaded) -> None:
    result = loaded.run("flags", "--json", "--nhs-number", COMPLEX_CHILD)

    assert result.code == 0, result.err
    assert result.json() == [flag for flag in loaded.flags if flag["nhs_number"] == COMPLEX_CHILD]
    assert {flag["code"] for flag in result.json()} == {"high-clinical-need-wnb"}


def test_the_flags_and_tasks_tables_show_ids_and_titles_for_people(loaded: Loaded) -> None:
    flags_table = loaded.run("flags", columns=200)
    tasks_table = loaded.run("tasks", "--role", "safeguarding-nurse", columns=200)

    assert flags_table.code == 0 and tasks_table.code == 0
    assert f"{len(loaded.flags)} flags" in flags_table.out
    assert loaded.flag("safeguarding-plan-wnb")["id"] in flags_table.words
    assert "Not brought: child known to children's social care" in flags_table.words
    assert "Tell the child's social worker" in tasks_table.words
    assert "booking-team" not in tasks_table.words


def test_the_tables_show_statuses_and_nhs_numbers_in_words_not_codes(loaded: Loaded) -> None:
    flags_table = loaded.run("flags", columns=200)
    tasks_table = loaded.run("tasks", columns=200)
    number = loaded.flag("safeguarding-plan-wnb")["nhs_number"]

    assert f"{number[:3]} {number[3:6]} {number[6:]}" in flags_table.words
    assert number not in flags_table.words
    assert "not yet acknowledged" in tasks_table.words
    for code in ("requested", "safeguarding-plan-wnb", "notify-social-worker"):
        assert code not in flags_table.words + tasks_table.words


# ---- acting on tasks and flags ----


def test_task_ack_accepts_the_task_which_stays_in_the_open_list(copy: Callable[..., Run], loaded: Loaded) -> None:
    task = loaded.tasks[0]

    acked = copy("task", "ack", task["id"], "--by", "nurse.one", "--note", "calling the family today")

    assert acked.code == 0, acked.err
    assert f"task {task['id']}" in acked.out and ": acknowledged" in acked.out
    listed = {item["id"]: item for item in copy("tasks", "--json").json()}
    assert listed[task["id"]]["status"] == "accepted"


def test_a_completed_task_leaves_the_open_list_but_all_still_shows_it(copy: Callable[..., Run], loaded: Loaded) -> None:
    task = loaded.tasks[0]

    done = copy("task", "complete", task["id"], "--by", "nurse.one", "--note", "family contacted")

    assert done.code == 0, done.err
    assert ": done" in done.out
    assert task["id"] not in {item["id"] for item in copy("tasks", "--json").json()}
    every = {item["id"]: item for item in copy("tasks", "--json", "--all").json()}
    assert every[task["id"]]["status"] == "completed"
    assert len(every) == len(loaded.tasks)


def test_task_cancel_cancels_the_task_and_keeps_who_and_the_note_in_its_history(
    copy: Callable[..., Run], loaded: Loaded
) -> None:
    task = next(task for task in reversed(loaded.tasks) if task["owner_role"] == "booking-team")

    cancelled = copy("task", "cancel", task["id"], "--by", "clerk.two", "--note", "duplicate referral")

    assert cancelled.code == 0, cancelled.err
    assert "cancelled" in cancelled.out
    history = copy("explain", task["id"], columns=300).out
    assert "It is cancelled" in history
    assert "cancelled by user:clerk.two" in history
    assert "duplicate referral" in history


def test_acting_on_a_completed_task_is_a_one_line_error(
    copy: Callable[..., Run], loaded: Loaded, tmp_path: Path, ruleset: Ruleset
) -> None:
    task = loaded.tasks[0]
    engine = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    Service(engine, ruleset).act_on_task(task["id"], "complete", person_named(engine, "nurse.one"), "phoned")
    engine.dispose()

    again = copy("task", "ack", task["id"], "--by", "nurse.one")

    assert_one_line_error(again, task["id"], "completed")


def test_acting_on_an_unknown_task_is_a_one_line_error(loaded: Loaded) -> None:
    assert_one_line_error(loaded.run("task", "complete", "T9999", "--by", "nurse.one", "--note", "x"), "T9999")


def test_flag_resolve_makes_the_flag_inactive_with_the_reason(copy: Callable[..., Run], loaded: Loaded) -> None:
    flag = loaded.flag("high-clinical-need-wnb")

    resolved = copy("flag", "resolve", flag["id"], "--by", "nurse.one", "--reason", "seen at home visit")

    assert resolved.code == 0, resolved.err
    assert ": resolved" in resolved.out
    assert flag["id"] not in {item["id"] for item in copy("flags", "--json").json()}
    every = {item["id"]: item for item in copy("flags", "--all", "--json").json()}
    assert every[flag["id"]]["status"] == "inactive"


def test_resolving_an_unknown_flag_is_a_one_line_error(loaded: Loaded) -> None:
    assert_one_line_error(loaded.run("flag", "resolve", "F9999", "--by", "nurse.one", "--reason", "x"), "F9999")


# ---- rejects ----


def test_rejects_json_lists_each_rejected_row_with_reason_field_line_and_raw_row(loaded: Loaded) -> None:
    result = loaded.run("rejects", "--json")

    assert result.code == 0, result.err
    by_place = {(item["origin"], item["line"]): item for item in result.json()}
    assert set(by_place) == {
        ("context:context.ndjson", 4),
        ("feed.ndjson", 3),
        ("feed.ndjson", 6),
        ("feed.csv", 3),
    }
    invalid = by_place[("feed.ndjson", 3)]
    assert (invalid["field"], invalid["reason"]) == ("nhs_number", "fails the Modulus 11 check")
    assert invalid["raw"] == json.dumps(NDJSON_LINES[2])
    broken = by_place[("feed.ndjson", 6)]
    assert broken["field"] == "line" and "not valid JSON" in broken["reason"]
    assert broken["raw"] == NDJSON_LINES[5]
    short = by_place[("feed.csv", 3)]
    assert short["field"] == "row" and "5 values" in short["reason"]
    assert short["raw"] == "community-ehr,c-2,9990000042,2012-08-30,orthoptics"


def test_rejects_table_shows_reason_field_line_and_raw_row(loaded: Loaded) -> None:
    result = loaded.run("rejects", columns=400)

    assert result.code == 0, result.err
    assert "4 rejected rows" in result.out
    row = next(line for line in result.out.splitlines() if "pas-3" in line)
    assert "fails the Modulus 11 check" in row
    assert "nhs_number" in row and "feed.ndjson" in row and " 3 " in row and '"event_id": "pas-3"' in row


def test_rejects_shows_a_raw_row_with_square_brackets_verbatim(tmp_path: Path) -> None:
    # A feed's text is data, not console markup: `[urgent]` must survive and `[/b]` must not crash the listing.
    line = '{"source": "pas", "event_id": "x1", "note": "[urgent] see [/b]"}'
    (tmp_path / "feed.ndjson").write_text(line + "\n", encoding="utf-8")
    assert run_in(tmp_path, "ingest", "feed.ndjson").code == 0

    result = run_in(tmp_path, "rejects", columns=400)

    assert result.code == 0, result.err[-300:]
    assert "[urgent] see [/b]" in result.out


def test_rejects_counts_a_row_ingested_again_instead_of_listing_it_twice(tmp_path: Path) -> None:
    (tmp_path / "feed.ndjson").write_text('{"source": "pas", "event_id": "x1", "colour": "blue"}\n', encoding="utf-8")
    for _ in range(2):
        assert run_in(tmp_path, "ingest", "feed.ndjson").code == 0

    listed = run_in(tmp_path, "rejects", "--json").json()
    table = run_in(tmp_path, "rejects", columns=400).out

    assert [(item["event_id"], item["received_count"]) for item in listed] == [("x1", 2)]
    assert "1 rejected row" in table and "2, last " in table


def test_rejects_lists_a_stale_outcome_with_its_kind(tmp_path: Path) -> None:
    miss = {
        "source": "pas",
        "event_id": "s1",
        "nhs_number": "9990000018",
        "date_of_birth": "2019-05-01",
        "service": "audiology",
        "appointment_id": "a1",
        "appointment_at": "2026-03-02T10:00:00+00:00",
        "attendance": "did-not-attend",
        "recorded_at": "2026-03-02T11:00:00+00:00",
    }
    booking = {**miss, "event_id": "s2", "attendance": "booked", "recorded_at": "2026-03-02T12:00:00+00:00"}
    lines = [json.dumps(miss), json.dumps(booking), '{"source": "pas", "event_id": "x1", "colour": "blue"}']
    (tmp_path / "feed.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert run_in(tmp_path, "ingest", "feed.ndjson").code == 0

    listed = run_in(tmp_path, "rejects", "--json").json()
    table = run_in(tmp_path, "rejects", columns=400).out

    assert [(item["kind"], item["event_id"]) for item in listed] == [("stale-outcome", "s2"), ("reject", "x1")]
    assert "1 rejected row, 1 stale outcome" in table
    assert "stale-outcome" in next(line for line in table.splitlines() if "a booking never replaces" in line)


# ---- sweep ----


def test_sweep_escalates_overdue_tasks_and_a_second_sweep_at_the_same_now_changes_nothing(
    copy: Callable[..., Run], loaded: Loaded
) -> None:
    now = "2026-03-10T09:00:00+00:00"

    first = copy("sweep", "--now", now)
    after_first = copy("tasks", "--all", "--json").json()
    second = copy("sweep", "--now", now)
    after_second = copy("tasks", "--all", "--json").json()

    assert first.code == 0 and second.code == 0, first.err + second.err
    escalated = int(re.search(r"(\d+) escalated", first.out).group(1))  # type: ignore[union-attr]
    assert escalated == len(loaded.tasks)  # every task was due by 6 Mar 17:00, none acknowledged
    assert all(task["escalation_level"] >= 1 for task in after_first)
    notify = next(task for task in after_first if task["code"] == "notify-social-worker")
    # Due Mon 2 Mar 17:00, then Tue 3 Mar 17:00 at named-nurse: long overdue, it climbs to the end of its chain.
    assert (notify["owner_role"], notify["escalation_level"]) == ("safeguarding-lead", 2)
    assert re.search(r"\b0 escalated", second.out)
    assert after_second == after_first


def test_sweep_with_a_time_without_offset_is_a_one_line_error(loaded: Loaded) -> None:
    assert_one_line_error(loaded.run("sweep", "--now", "2026-03-10T09:00:00"), "UTC offset")


# ---- explain ----


def test_explain_a_flag_names_its_rules_and_the_events_behind_it(loaded: Loaded) -> None:
    flag = loaded.flag("safeguarding-plan-wnb")

    result = loaded.run("explain", flag["id"], columns=300)

    assert result.code == 0, result.err
    assert flag["id"] in result.out
    assert "WNB-01" in result.out
    assert "pas/pas-1" in result.out
    assert "A1" in result.out


def test_explain_reads_as_sentences_with_the_rules_title_and_the_nhs_number_spaced(loaded: Loaded) -> None:
    flag = loaded.flag("safeguarding-plan-wnb")
    number = flag["nhs_number"]

    result = loaded.run("explain", flag["id"], columns=300)

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == (
        f"Flag {flag['id']}: Not brought: child known to children's social care (red), "
        f"NHS number {number[:3]} {number[3:6]} {number[6:]}."
    )
    assert "  It is active;" in result.out
    assert "  WNB-01, “A child on a child protection plan, or looked after, was not brought”:" in lines
    assert any(
        line.startswith(f"    The child (NHS {number[:3]} {number[3:6]} {number[6:]}) was not brought to ")
        and line.endswith("a child-protection plan or looked-after status counts for this appointment.")
        for line in lines
    ), result.out


def test_explain_json_keeps_the_codes(loaded: Loaded) -> None:
    flag = loaded.flag("safeguarding-plan-wnb")

    found = loaded.run("explain", flag["id"], "--json").json()

    assert found["code"] == "safeguarding-plan-wnb" and found["status"] == "active"
    assert found["nhs_number"] == flag["nhs_number"]


def test_explain_a_task_names_its_rules_the_events_behind_it_and_its_history(loaded: Loaded) -> None:
    task = loaded.task("clinician-review", COMPLEX_CHILD)

    result = loaded.run("explain", task["id"], columns=300)

    assert result.code == 0, result.err
    for rule_id in task["rule_ids"]:
        assert rule_id in result.out
    for event_id in task["event_ids"]:
        assert event_id in result.out
    assert "History:" in result.out and "created" in result.out


def test_explain_shows_each_condition_of_a_fired_rule_verbatim(loaded: Loaded) -> None:
    # The condition marks and list values are text to show, not console markup to interpret.
    flag = loaded.flag("high-clinical-need-wnb")

    result = loaded.run("explain", flag["id"], columns=300)

    assert result.code == 0, result.err
    assert "[yes] is_child = true" in result.out
    assert "priority in [urgent, two-week-wait]" in result.out


def test_explain_json_gives_a_flags_rules_events_and_conditions_as_one_object(loaded: Loaded) -> None:
    flag = loaded.flag("high-clinical-need-wnb")

    found = loaded.run("explain", flag["id"], "--json").json()

    assert {key: found[key] for key in ("id", "kind", "nhs_number", "code", "rule_ids")} == {
        "id": flag["id"],
        "kind": "flag",
        "nhs_number": flag["nhs_number"],
        "code": "high-clinical-need-wnb",
        "rule_ids": flag["rule_ids"],
    }
    assert [f"{cause['event']['source']}/{cause['event']['event_id']}" for cause in found["because"]] == flag[
        "event_ids"
    ]
    rules = [rule for cause in found["because"] for rule in cause["evaluation"]["rules"]]
    assert {rule["rule_id"] for rule in rules} == set(flag["rule_ids"])
    assert {"test": "is_child = true", "held": True, "actual": True} in rules[0]["conditions"]


def test_explain_json_gives_a_tasks_history_with_utc_times(loaded: Loaded) -> None:
    task = loaded.task("clinician-review", COMPLEX_CHILD)

    found = loaded.run("explain", task["id"], "--json").json()

    assert found["id"] == task["id"] and found["kind"] == "task" and found["owner_role"] == task["owner_role"]
    assert found["history"][0]["action"] == "created"
    assert datetime.fromisoformat(found["history"][0]["at"]).utcoffset() is not None


def test_explain_an_unknown_id_is_a_one_line_error(loaded: Loaded) -> None:
    assert_one_line_error(loaded.run("explain", "F9999"), "F9999")


# ---- rules ----


def test_rules_check_of_the_default_ruleset_exits_0_and_prints_its_version(tmp_path: Path) -> None:
    result = run_in(tmp_path, "rules", "check", str(RULES), columns=300)

    assert result.code == 0, result.err
    assert re.search(r"valid, version [0-9a-f]{8,}, 16 rules", result.out)
    for number in range(1, 16):
        assert f"WNB-{number:02d}" in result.out
    assert "WNB-09-young-person" in result.out
    assert "WNB-07 on missed-appointment" in result.out and "controls H-10" in result.out
    assert re.search(r"^hazard log: 18 hazards, \d+ controls", result.out, re.MULTILINE)
    assert "wnb: error" not in result.err
    assert "thresholds are design choices not yet traced to the trust's own chart" in result.err


def test_rules_check_refuses_a_rule_naming_an_unknown_hazard(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    rule_file = rules / "WNB-07.yaml"
    text = rule_file.read_text(encoding="utf-8")
    rule_file.write_text(text.replace("hazards: [H-10]", "hazards: [H-10, H-42]"), encoding="utf-8")

    result = run_in(tmp_path, "rules", "check", str(rules))

    assert result.code == 1
    assert_one_line_error(result, "rule WNB-07 names an unknown hazard H-42", "hazards.yaml has no hazard H-42")
    assert "valid" not in result.out


def test_rules_check_of_a_ruleset_without_a_hazard_log_passes_with_a_warning(tmp_path: Path) -> None:
    # A trust's own ruleset from before hazard logs: its rules name no hazard and it has no hazards.yaml.
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "hazards.yaml").unlink()
    for rule_file in rules.glob("WNB-*.yaml"):
        text = rule_file.read_text(encoding="utf-8")
        rule_file.write_text(re.sub(r"^hazards: .*\n", "", text, flags=re.MULTILINE), encoding="utf-8")

    result = run_in(tmp_path, "rules", "check", str(rules), columns=300)

    assert result.code == 0, result.err
    assert "valid, version" in result.out
    assert "wnb: warning: no hazards.yaml: the ruleset has no hazard log" in result.err


def test_rules_check_shows_each_flag_with_its_title(tmp_path: Path) -> None:
    result = run_in(tmp_path, "rules", "check", str(RULES), columns=300)

    assert result.code == 0, result.err
    assert "flag safeguarding-plan-wnb “Not brought: child known to children's social care” (red)" in result.out


def test_rules_check_refuses_a_task_code_without_a_title(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    settings = rules / "ruleset.yaml"
    text = settings.read_text(encoding="utf-8")
    settings.write_text(re.sub(r"^  inform-gp: .*\n", "", text, flags=re.MULTILINE), encoding="utf-8")

    result = run_in(tmp_path, "rules", "check", str(rules))

    assert result.code == 1
    assert_one_line_error(result, "ruleset.yaml", "titles", "no title for rule WNB-01: task inform-gp")
    assert "valid" not in result.out


def test_rules_check_of_a_ruleset_without_titles_passes_its_codes_reading_as_words(tmp_path: Path) -> None:
    # A trust's ruleset from before titles: no `titles:` map at all.
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    settings = rules / "ruleset.yaml"
    text = settings.read_text(encoding="utf-8")
    settings.write_text(text[: text.index("\n# The words people read")] + "\n", encoding="utf-8")

    result = run_in(tmp_path, "rules", "check", str(rules), columns=300)

    assert result.code == 0, result.err
    assert "flag safeguarding-plan-wnb “Safeguarding plan wnb” (red)" in result.out


def test_rules_check_of_a_broken_rule_file_exits_1_naming_the_file_and_the_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(RULES, broken)
    rule_file = broken / "WNB-04.yaml"
    rule_file.write_text(
        rule_file.read_text(encoding="utf-8").replace("fact: priority", "fact: priorty"), encoding="utf-8"
    )

    result = run_in(tmp_path, "rules", "check", str(broken))

    assert result.code == 1
    assert_one_line_error(result, "WNB-04.yaml", "rule WNB-04", "priorty", "unknown fact")


PASSING_SCENARIO = """\
name: a child not brought for the first time in a service
event_defaults: {source: pas, service: community-paediatrics}
steps:
  - context: {nhs_number: "9990000069", date_of_birth: "2018-04-04"}
  - event:
      event_id: e1
      nhs_number: "9990000069"
      appointment_id: a1
      appointment_at: "2026-03-02T10:00:00+00:00"
      attendance: did-not-attend
      recorded_at: "2026-03-02T11:00:00+00:00"
expect:
  flags: []
  tasks:
    - {code: clinician-review, owner_role: clinician, due_at: "2026-03-03T17:00:00+00:00"}
    - {code: reoffer-appointment, owner_role: booking-team, due_at: "2026-03-04T17:00:00+00:00"}
    - {code: letter-to-parent, owner_role: booking-team, due_at: "2026-03-04T17:00:00+00:00"}
    - {code: inform-gp, owner_role: booking-team, due_at: "2026-03-04T17:00:00+00:00"}
  rejects: 0
"""


def _ruleset_with_scenarios(tmp_path: Path, scenarios: dict[str, str]) -> Path:
    copy_dir = tmp_path / "rules"
    shutil.copytree(RULES, copy_dir, ignore=shutil.ignore_patterns("scenarios"))
    (copy_dir / "scenarios").mkdir()
    for name, text in scenarios.items():
        (copy_dir / "scenarios" / name).write_text(text, encoding="utf-8")
    return copy_dir


def test_rules_test_passes_and_exits_0_when_every_scenario_holds(tmp_path: Path) -> None:
    rules = _ruleset_with_scenarios(tmp_path, {"first-miss.yaml": PASSING_SCENARIO})

    result = run_in(tmp_path, "rules", "test", str(rules), columns=300)

    assert result.code == 0, result.out + result.err
    assert "PASS first-miss.yaml: a child not brought for the first time in a service" in result.out
    assert "1 passed, 0 failed" in result.out


def test_rules_test_exits_1_with_a_fail_line_when_a_scenario_does_not_hold(tmp_path: Path) -> None:
    failing = PASSING_SCENARIO.replace("name: a child", "name: wrongly expecting a flag for a child").replace(
        "flags: []", "flags: [{code: repeat-wnb, status: active}]"
    )
    rules = _ruleset_with_scenarios(tmp_path, {"a-first-miss.yaml": PASSING_SCENARIO, "b-wrong.yaml": failing})

    result = run_in(tmp_path, "rules", "test", str(rules), columns=300)

    assert result.code == 1
    assert "PASS a-first-miss.yaml" in result.out
    assert "FAIL b-wrong.yaml: wrongly expecting a flag" in result.out
    assert "expected flag not found" in result.out and "repeat-wnb" in result.out
    assert "1 passed, 1 failed" in result.out


# ---- demo and help ----


def test_demo_runs_from_any_folder_and_shows_flags_tasks_rejects_and_an_intact_audit_log(
    tmp_path: Path,
) -> None:
    result = run_in(tmp_path, "demo", columns=200)

    assert result.code == 0, result.err
    assert "Active flags (" in result.out
    assert "Open tasks (" in result.out
    assert "rows rejected to the data-quality queue" in result.out
    assert "audit log: intact" in result.out
    assert "Not brought: child known to children's social care" in result.words
    assert "safeguarding-plan-wnb" not in result.words
    assert (tmp_path / "wnb-demo.db").is_file()


def _command_paths() -> list[list[str]]:
    import typer.main

    from wnb.cli.main import app

    paths: list[list[str]] = [[]]

    def walk(command: Any, prefix: list[str]) -> None:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_the_console_script_prints_help(tmp_path: Path) -> None:
    result = run_process(tmp_path, "--help", columns=200)

    assert result.code == 0, result.err
    for command in (
        "context",
        "ingest",
        "sweep",
        "flags",
        "tasks",
        "task",
        "flag",
        "rejects",
        "audit",
        "explain",
        "rules",
        "demo",
    ):
        assert re.search(rf"│ {command}\s", result.out), command


def test_help_works_for_every_command_and_subcommand(tmp_path: Path) -> None:
    paths = _command_paths()
    assert ["task", "ack"] in paths and ["rules", "test"] in paths and ["audit", "verify"] in paths
    # One process runs the installed `wnb` entry point once per command, to keep the suite quick.
    script = (
        "import json, sys\n"
        "from importlib.metadata import entry_points\n"
        "main = entry_points(group='console_scripts')['wnb'].load()\n"
        "results = []\n"
        "for path in json.loads(sys.argv[1]):\n"
        "    sys.argv = ['wnb', *path, '--help']\n"
        "    try:\n"
        "        main()\n"
        "        code = 0\n"
        "    except SystemExit as stop:\n"
        "        code = stop.code or 0\n"
        "    sys.stdout.write('\\n@@@ ' + json.dumps([path, code]) + '\\n')\n"
    )
    env = {**os.environ, "COLUMNS": "200", "WNB_DATABASE_URL": f"sqlite:///{tmp_path / 'wnb.db'}"}
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(paths)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    chunks = re.split(r"\n@@@ (.*)\n", result.stdout)
    outputs = dict(zip((tuple(json.loads(marker)[0]) for marker in chunks[1::2]), chunks[0::2], strict=False))
    codes = {tuple(json.loads(marker)[0]): json.loads(marker)[1] for marker in chunks[1::2]}
    assert set(codes) == {tuple(path) for path in paths}
    for path, code in codes.items():
        assert code == 0, path
        assert "Usage: wnb " + " ".join(path) in " ".join(outputs[path].split()), path
    assert not (tmp_path / "wnb.db").exists()  # help touches no database
