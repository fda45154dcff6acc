"""Combining the rules that fired into flags and tasks (DOMAIN.md §5.1, §5.2; due times §4)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import DEFAULT_RULES
from wnb.core.decide import decide
from wnb.core.domain import Decision, Level, Role, TaskDecision
from wnb.core.ruleset import Ruleset
from wnb.rule_files import load_ruleset

SERVICE = "community-paediatrics"
RECORDED = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # Monday 11:00 GMT
SAME_DAY = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
ONE_WD = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
TWO_WD = datetime(2026, 3, 4, 17, 0, tzinfo=UTC)


def tasks_by_code(decision: Decision) -> dict[str, TaskDecision]:
    codes = [task.code for task in decision.tasks]
    assert len(codes) == len(set(codes)), f"a task code appears twice: {codes}"
    return {task.code: task for task in decision.tasks}


def test_wnb_01_and_wnb_09_both_asking_to_reoffer_make_one_task(ruleset: Ruleset) -> None:
    decision = decide(ruleset, ["WNB-01", "WNB-09"], SERVICE, RECORDED)
    assert [task.code for task in decision.tasks].count("reoffer-appointment") == 1


def test_a_task_asked_for_twice_takes_the_earliest_due_time(ruleset: Ruleset) -> None:
    # WNB-01: 1 working day; WNB-09: 2 working days.
    task = tasks_by_code(decide(ruleset, ["WNB-01", "WNB-09"], SERVICE, RECORDED))["reoffer-appointment"]
    assert (task.due_at, task.owner_role) == (ONE_WD, Role.BOOKING_TEAM)


def test_a_combined_task_records_every_rule_that_asked_for_it(ruleset: Ruleset) -> None:
    task = tasks_by_code(decide(ruleset, ["WNB-01", "WNB-09"], SERVICE, RECORDED))["reoffer-appointment"]
    assert task.rule_ids == ("WNB-01", "WNB-09")


def test_the_earliest_due_time_wins_whatever_order_the_rules_fired_in(ruleset: Ruleset) -> None:
    task = tasks_by_code(decide(ruleset, ["WNB-09", "WNB-01"], SERVICE, RECORDED))["reoffer-appointment"]
    assert task.due_at == ONE_WD


def test_the_union_of_wnb_01_and_wnb_09_has_each_of_their_tasks_once(ruleset: Ruleset) -> None:
    tasks = tasks_by_code(decide(ruleset, ["WNB-01", "WNB-09"], SERVICE, RECORDED))
    assert {code: task.due_at for code, task in tasks.items()} == {
        "notify-social-worker": SAME_DAY,
        "safeguarding-review": SAME_DAY,
        "reoffer-appointment": ONE_WD,
        "inform-gp": ONE_WD,
        "inform-health-visitor-or-school-nurse": ONE_WD,
        "letter-to-parent": TWO_WD,
    }


def test_same_working_day_beats_one_working_day_for_contact_family(ruleset: Ruleset) -> None:
    # WNB-03: same-working-day; WNB-06: 1 working day.
    task = tasks_by_code(decide(ruleset, ["WNB-03", "WNB-06"], SERVICE, RECORDED))["contact-family"]
    assert (task.due_at, task.rule_ids) == (SAME_DAY, ("WNB-03", "WNB-06"))


def test_clinician_review_asked_by_three_rules_is_one_task_due_in_one_working_day(ruleset: Ruleset) -> None:
    # WNB-04 and WNB-08: 1 working day; WNB-06: 2 working days.
    decision = decide(ruleset, ["WNB-04", "WNB-06", "WNB-08", "WNB-09"], SERVICE, RECORDED)
    task = tasks_by_code(decision)["clinician-review"]
    assert (task.due_at, task.owner_role) == (ONE_WD, Role.CLINICIAN)
    assert task.rule_ids == ("WNB-04", "WNB-06", "WNB-08")


def test_safeguarding_review_from_wnb_01_and_wnb_05_is_due_the_same_working_day(ruleset: Ruleset) -> None:
    task = tasks_by_code(decide(ruleset, ["WNB-01", "WNB-05"], SERVICE, RECORDED))["safeguarding-review"]
    assert (task.due_at, task.owner_role) == (SAME_DAY, Role.NAMED_NURSE)


def test_every_task_is_for_the_service_of_the_appointment(ruleset: Ruleset) -> None:
    decision = decide(ruleset, ["WNB-01", "WNB-06", "WNB-09"], "paediatric-diabetes", RECORDED)
    assert {task.service for task in decision.tasks} == {"paediatric-diabetes"}


def test_due_times_count_from_the_recorded_time_given(ruleset: Ruleset) -> None:
    later = RECORDED + timedelta(days=1)  # Tuesday
    task = tasks_by_code(decide(ruleset, ["WNB-09"], SERVICE, later))["letter-to-parent"]
    assert task.due_at == datetime(2026, 3, 5, 17, 0, tzinfo=UTC)


def test_a_24_hour_task_is_due_24_elapsed_hours_after_recording(ruleset: Ruleset) -> None:
    task = tasks_by_code(decide(ruleset, ["WNB-07"], SERVICE, RECORDED))["consider-mash-referral"]
    assert (task.due_at, task.owner_role) == (RECORDED + timedelta(hours=24), Role.SAFEGUARDING_NURSE)


def test_recorded_after_1700_same_working_day_tasks_are_due_the_next_working_day(ruleset: Ruleset) -> None:
    evening = datetime(2026, 3, 6, 17, 30, tzinfo=UTC)  # Friday
    task = tasks_by_code(decide(ruleset, ["WNB-01"], SERVICE, evening))["notify-social-worker"]
    assert task.due_at == datetime(2026, 3, 9, 17, 0, tzinfo=UTC)


def test_flags_appear_once_per_code(ruleset: Ruleset) -> None:
    fired = ["WNB-01", "WNB-05", "WNB-06", "WNB-07", "WNB-08", "WNB-09"]
    decision = decide(ruleset, fired, SERVICE, RECORDED)
    assert [(flag.code, flag.level) for flag in decision.flags] == [
        ("safeguarding-plan-wnb", Level.RED),
        ("possible-medical-neglect", Level.RED),
        ("repeat-wnb", Level.AMBER),
        ("consider-mash-referral", Level.RED),
    ]


def test_rules_without_a_flag_raise_no_flag(ruleset: Ruleset) -> None:
    decision = decide(ruleset, ["WNB-08", "WNB-09"], SERVICE, RECORDED)
    assert decision.flags == ()
    assert {task.code for task in decision.tasks} == {
        "clinician-review",
        "reoffer-appointment",
        "letter-to-parent",
        "inform-gp",
    }


def test_nothing_fired_means_no_flags_and_no_tasks(ruleset: Ruleset) -> None:
    assert decide(ruleset, [], SERVICE, RECORDED) == Decision(fired=(), flags=(), tasks=())


def test_the_decision_keeps_the_fired_rules_in_order(ruleset: Ruleset) -> None:
    fired = ["WNB-04", "WNB-08", "WNB-09"]
    assert decide(ruleset, fired, SERVICE, RECORDED).fired == tuple(fired)


def test_an_adult_not_brought_gets_the_amber_flag_and_a_wellbeing_review(ruleset: Ruleset) -> None:
    decision = decide(ruleset, ["WNB-11"], "learning-disabilities", RECORDED)
    assert [(flag.code, flag.level) for flag in decision.flags] == [("adult-not-brought", Level.AMBER)]
    task = tasks_by_code(decision)["adult-wellbeing-review"]
    assert (task.owner_role, task.due_at) == (Role.CLINICIAN, TWO_WD)


# ---- a flag code raised at two levels: red wins ----


@pytest.fixture(scope="module")
def shared_flag(tmp_path_factory: pytest.TempPathFactory) -> Ruleset:
    """The default rules plus WNB-15, which raises WNB-11's flag code at red."""
    directory = tmp_path_factory.mktemp("rules") / "shared"
    shutil.copytree(DEFAULT_RULES, directory)
    (directory / "WNB-15.yaml").write_text(
        "id: WNB-15\n"
        "title: An adult with care needs on a safeguarding plan was not brought\n"
        "trigger: missed-appointment\n"
        "when:\n"
        "  - {fact: label, is: adult-not-brought}\n"
        "  - {fact: safeguarding_plan, is: true}\n"
        "flag: {code: adult-not-brought, level: red}\n"
        "tasks:\n"
        "  - {code: adult-wellbeing-review, owner: named-nurse, due: same-working-day}\n",
        encoding="utf-8",
    )
    return load_ruleset(directory)


def test_a_flag_raised_amber_then_red_is_one_red_flag(shared_flag: Ruleset) -> None:
    decision = decide(shared_flag, ["WNB-11", "WNB-15"], SERVICE, RECORDED)
    assert [(flag.code, flag.level, flag.rule_ids) for flag in decision.flags] == [
        ("adult-not-brought", Level.RED, ("WNB-11", "WNB-15"))
    ]


def test_a_flag_raised_red_then_amber_stays_red(shared_flag: Ruleset) -> None:
    decision = decide(shared_flag, ["WNB-15", "WNB-11"], SERVICE, RECORDED)
    assert [(flag.code, flag.level) for flag in decision.flags] == [("adult-not-brought", Level.RED)]


def test_the_earlier_task_brings_its_own_owner(shared_flag: Ruleset) -> None:
    # WNB-11 asks the clinician within 2 working days; WNB-15 the named nurse the same working day.
    decision = decide(shared_flag, ["WNB-11", "WNB-15"], SERVICE, RECORDED)
    task = tasks_by_code(decision)["adult-wellbeing-review"]
    assert (task.due_at, task.owner_role, task.rule_ids) == (SAME_DAY, Role.NAMED_NURSE, ("WNB-11", "WNB-15"))
