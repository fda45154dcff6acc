"""`wnb explain`: why a flag or task was raised, in sentences for people and as JSON for scripts."""

from __future__ import annotations

from datetime import datetime

from tests.cli.running import assert_one_line_error
from tests.cli.sample import COMPLEX_CHILD, Loaded


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
