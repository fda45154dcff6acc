"""The `wnb` command line (ARCHITECTURE.md §4) on a real SQLite file.

Commands run in this process through the Typer app the console script runs (tests/cli/running.py); a one-line
error on stderr is checked on the console script as its own process. The module fixture `loaded`
(tests/cli/conftest.py) loads the sample (tests/cli/sample.py) through the command line, and tests that change
it work on their own copy of that file. `wnb explain`, `wnb rules` and help have files of their own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from tests.cli.running import Run, assert_one_line_error, run_in, run_process
from tests.cli.sample import ADULT, COMPLEX_CHILD, CPP_CHILD, CSV_TEXT, FLAG_KEYS, NDJSON_LINES, TASK_KEYS, Loaded
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.store.accounts import person_named

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
