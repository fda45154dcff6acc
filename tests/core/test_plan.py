"""Planning the lifecycle's changes as values (DOMAIN.md §5.2–5.7), with no database: one active flag per code,
due times only move earlier, the escalation chain walk, the task transitions and withdrawals."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wnb.core import plan
from wnb.core.domain import Decision, FlagDecision, FlagStatus, Level, Role, TaskDecision, TaskStatus
from wnb.core.errors import InvalidAction

MONDAY_5PM = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # GMT: London 17:00
DAY_END = time(17)
CHAIN = (Role.BOOKING_TEAM, Role.CLINICIAN, Role.SAFEGUARDING_NURSE)


def flag(code: str = "wnb-repeated", level: Level = Level.AMBER, rules: tuple[str, ...] = ("WNB-02",)) -> FlagDecision:
    return FlagDecision(code=code, level=level, rule_ids=rules)


def task(
    code: str = "reoffer-appointment", due: datetime = MONDAY_5PM, rules: tuple[str, ...] = ("WNB-01",), service="ent"
) -> TaskDecision:
    return TaskDecision(code=code, service=service, owner_role=Role.BOOKING_TEAM, due_at=due, rule_ids=rules)


def held(id: int, rules: tuple[str, ...], due: datetime | None = None, **more: object) -> SimpleNamespace:
    return SimpleNamespace(id=id, rule_ids=list(rules), due_at=due, **more)


def test_a_code_without_an_active_flag_gets_a_new_flag() -> None:
    assert plan.plan_flags([flag()], {}) == (plan.NewFlag(flag()),)


def test_a_code_with_an_active_flag_links_to_it_instead_of_raising_a_second() -> None:
    change = plan.plan_flags([flag(rules=("WNB-02",))], {"wnb-repeated": held(7, ("WNB-02",))})
    assert change == (plan.LinkToFlag(7, flag(rules=("WNB-02",)), rule_ids=None),)


def test_a_link_adds_the_rules_the_flag_did_not_name_yet_in_order() -> None:
    (change,) = plan.plan_flags([flag(rules=("WNB-03", "WNB-02"))], {"wnb-repeated": held(7, ("WNB-02",))})
    assert isinstance(change, plan.LinkToFlag) and change.rule_ids == ("WNB-02", "WNB-03")


def test_a_task_without_an_open_one_of_its_service_and_code_is_created() -> None:
    other_service = {("audiology", "reoffer-appointment"): held(3, ("WNB-01",), MONDAY_5PM)}
    assert plan.plan_tasks([task(service="ent")], other_service) == (plan.NewTask(task(service="ent")),)


def test_a_repeat_asking_an_earlier_due_time_moves_it_earlier() -> None:
    earlier = MONDAY_5PM - timedelta(hours=3)
    (change,) = plan.plan_tasks([task(due=earlier)], {("ent", "reoffer-appointment"): held(3, ("WNB-01",), MONDAY_5PM)})
    assert change == plan.RepeatTask(3, task(due=earlier), rule_ids=None, due_at=earlier)


@pytest.mark.parametrize("later", [timedelta(0), timedelta(hours=1), timedelta(days=30)])
def test_a_repeat_never_moves_a_due_time_later(later: timedelta) -> None:
    (change,) = plan.plan_tasks(
        [task(due=MONDAY_5PM + later)], {("ent", "reoffer-appointment"): held(3, ("WNB-01",), MONDAY_5PM)}
    )
    assert isinstance(change, plan.RepeatTask) and change.due_at is None


@given(st.datetimes(timezones=st.just(UTC)), st.datetimes(timezones=st.just(UTC)))
def test_after_a_repeat_the_due_time_is_the_earlier_of_the_two(open_due: datetime, asked: datetime) -> None:
    (change,) = plan.plan_tasks([task(due=asked)], {("ent", "reoffer-appointment"): held(3, ("WNB-01",), open_due)})
    assert isinstance(change, plan.RepeatTask)
    assert (change.due_at or open_due) == min(open_due, asked)


def test_a_decision_plans_its_flags_and_its_tasks_from_the_state_before_either_is_applied() -> None:
    decision = Decision(fired=("WNB-01", "WNB-02"), flags=(flag(),), tasks=(task(), task(code="inform-gp")))
    planned = plan.plan(decision, {}, {("ent", "inform-gp"): held(9, ("WNB-02",), MONDAY_5PM)})
    assert [type(change) for change in planned.flags] == [plan.NewFlag]
    assert [type(change) for change in planned.tasks] == [plan.NewTask, plan.RepeatTask]


def requested(level: int, due: datetime) -> SimpleNamespace:
    return SimpleNamespace(id=5, owner_role=CHAIN[level].value, escalation_level=level, due_at=due, assignee=None)


def test_a_task_not_yet_due_does_not_escalate() -> None:
    assert plan.plan_escalation(requested(0, MONDAY_5PM), CHAIN, MONDAY_5PM - timedelta(seconds=1), 1, DAY_END) is None


def test_a_task_past_its_due_time_moves_to_the_next_role_due_the_next_working_day() -> None:
    step = plan.plan_escalation(requested(0, MONDAY_5PM), CHAIN, MONDAY_5PM, 1, DAY_END)
    assert step == plan.Escalation(5, "booking-team", "clinician", 0, 1, MONDAY_5PM, MONDAY_5PM + timedelta(days=1))


def test_a_task_overdue_by_several_steps_climbs_as_many_levels_as_are_due_but_not_past_its_chain() -> None:
    a_week_later = MONDAY_5PM + timedelta(days=7)
    step = plan.plan_escalation(requested(0, MONDAY_5PM), CHAIN, a_week_later, 1, DAY_END)
    assert step is not None and (step.to_level, step.to_role) == (2, "safeguarding-nurse")
    assert step.due_at == MONDAY_5PM + timedelta(days=2)  # the second step's due time: Wednesday 17:00


def test_a_task_at_the_end_of_its_chain_stays_overdue() -> None:
    assert plan.plan_escalation(requested(2, MONDAY_5PM), CHAIN, MONDAY_5PM + timedelta(days=9), 1, DAY_END) is None


def test_escalation_skips_the_weekend_and_bank_holidays() -> None:
    friday = datetime(2026, 4, 3, 16, 0, tzinfo=UTC)  # Good Friday, 17:00 BST; Easter Monday follows
    step = plan.plan_escalation(requested(0, friday), CHAIN, friday, 1, DAY_END)
    assert step is not None and step.due_at == datetime(2026, 4, 7, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "action", "becomes"),
    [
        ("requested", "ack", TaskStatus.ACCEPTED),
        ("requested", "complete", TaskStatus.COMPLETED),
        ("accepted", "complete", TaskStatus.COMPLETED),
        ("requested", "cancel", TaskStatus.CANCELLED),
        ("accepted", "cancel", TaskStatus.CANCELLED),
        # Sent and awaiting the recipient's acknowledgement (issue 18): the owner may still close it.
        ("awaiting-acknowledgement", "complete", TaskStatus.COMPLETED),
        ("awaiting-acknowledgement", "cancel", TaskStatus.CANCELLED),
    ],
)
def test_the_transitions_people_may_make(status: str, action: str, becomes: TaskStatus) -> None:
    assert plan.task_transition(4, status, action)[0] is becomes


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("accepted", "ack"),
        ("completed", "ack"),
        ("completed", "complete"),
        ("cancelled", "cancel"),
        ("cancelled", "complete"),
        # A message is out: nobody takes it on, hands it over or puts it back while the recipient is asked.
        ("awaiting-acknowledgement", "ack"),
        ("awaiting-acknowledgement", "claim"),
        ("awaiting-acknowledgement", "assign"),
        ("awaiting-acknowledgement", "release"),
    ],
)
def test_a_transition_the_status_does_not_allow_is_refused_naming_the_task(status: str, action: str) -> None:
    with pytest.raises(InvalidAction, match=f"task T4 is {status}"):
        plan.task_transition(4, status, action)


def test_an_unknown_action_is_refused_with_the_ones_there_are() -> None:
    with pytest.raises(InvalidAction, match="use ack, complete, cancel, claim, assign, release"):
        plan.task_transition(4, "requested", "delete")


def test_only_an_active_flag_is_resolved_and_only_with_a_reason() -> None:
    plan.check_flag_resolution(1, "active", "seen in clinic")
    with pytest.raises(InvalidAction, match="only an active flag"):
        plan.check_flag_resolution(1, "inactive", "seen in clinic")
    with pytest.raises(InvalidAction, match="needs a reason"):
        plan.check_flag_resolution(1, "active", "  ")


@pytest.mark.parametrize(
    ("kind", "status", "becomes"),
    [
        ("flag", "active", FlagStatus.ENTERED_IN_ERROR),
        ("flag", "inactive", None),
        ("task", "requested", TaskStatus.CANCELLED),
        ("task", "accepted", TaskStatus.CANCELLED),
        ("task", "completed", None),
        ("task", "cancelled", None),
    ],
)
def test_a_withdrawal_closes_only_what_is_still_open(kind: str, status: str, becomes: object) -> None:
    assert plan.withdrawal(kind, status) == becomes


# ---- people own the work (issue 16): notes, claims, assignments, releases ----


def test_an_escalation_clears_the_assignee_and_names_whom_it_was_with() -> None:
    task_ = SimpleNamespace(**{**vars(requested(0, MONDAY_5PM)), "assignee": "sam.booker"})
    step = plan.plan_escalation(task_, CHAIN, MONDAY_5PM, 1, DAY_END)
    assert step is not None and step.to_role == "clinician" and step.cleared_assignee == "sam.booker"


@pytest.mark.parametrize("action", ["complete", "cancel"])
@pytest.mark.parametrize("note", [None, "", "   \n"])
def test_completing_or_cancelling_without_a_note_is_refused(action: str, note: str | None) -> None:
    with pytest.raises(InvalidAction, match="task T4 can be .* only with a note"):
        plan.check_task_note(4, action, note)


def test_a_note_is_enough_to_complete_and_acknowledging_needs_none() -> None:
    plan.check_task_note(4, "complete", "phoned the parent")
    plan.check_task_note(4, "cancel", "duplicate of T3")
    plan.check_task_note(4, "ack", None)


def open_task(status: str = "requested", assignee: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(id=4, status=status, owner_role="booking-team", assignee=assignee)


SAM = plan.Member("sam.booker", "booking-team", enabled=True)
ALEX = plan.Member("alex.booker", "booking-team", enabled=True)


def test_claiming_a_requested_task_acknowledges_it_and_makes_it_the_claimers() -> None:
    change = plan.plan_assignment(open_task(), "claim", SAM)
    assert (change.status, change.assignee, change.previous, change.verb) == (
        TaskStatus.ACCEPTED,
        "sam.booker",
        None,
        "claimed",
    )


def test_claiming_an_acknowledged_task_keeps_it_acknowledged() -> None:
    assert plan.plan_assignment(open_task("accepted"), "claim", SAM).status is TaskStatus.ACCEPTED


def test_a_task_assigned_to_me_but_not_acknowledged_is_acknowledged_when_i_claim_it() -> None:
    change = plan.plan_assignment(open_task("requested", "sam.booker"), "claim", SAM)
    assert (change.status, change.assignee) == (TaskStatus.ACCEPTED, "sam.booker")


def test_a_task_assigned_to_someone_else_is_not_claimed_over_them() -> None:
    with pytest.raises(InvalidAction, match="assigned to alex.booker; they release it, or a lead reassigns it"):
        plan.plan_assignment(open_task("accepted", "alex.booker"), "claim", SAM)


def test_a_lead_assigning_a_task_leaves_its_status_as_it_was() -> None:
    change = plan.plan_assignment(open_task(), "assign", SAM)
    assert (change.status, change.assignee, change.verb) == (TaskStatus.REQUESTED, "sam.booker", "assigned")


def test_reassigning_from_one_person_to_another_needs_a_reason() -> None:
    with pytest.raises(InvalidAction, match="reassigning it to sam.booker needs a reason"):
        plan.plan_assignment(open_task("accepted", "alex.booker"), "assign", SAM, reason="  ")
    change = plan.plan_assignment(open_task("accepted", "alex.booker"), "assign", SAM, reason="alex is on leave")
    assert (change.assignee, change.previous, change.reason) == ("sam.booker", "alex.booker", "alex is on leave")


def test_a_task_is_assigned_only_to_an_enabled_member_of_its_owner_role() -> None:
    with pytest.raises(InvalidAction, match="a task is assigned only to a member of its role"):
        plan.plan_assignment(open_task(), "assign", plan.Member("dr.who", "clinician", enabled=True))
    with pytest.raises(InvalidAction, match="the account sam.booker is disabled"):
        plan.plan_assignment(open_task(), "assign", plan.Member("sam.booker", "booking-team", enabled=False))
    with pytest.raises(InvalidAction, match="needs the account"):
        plan.plan_assignment(open_task(), "assign", None)


def test_assigning_a_task_to_whom_it_is_assigned_already_is_refused() -> None:
    with pytest.raises(InvalidAction, match="assigned to sam.booker already"):
        plan.plan_assignment(open_task("accepted", "sam.booker"), "assign", SAM)


def test_a_release_hands_the_task_back_to_its_role_keeping_its_status() -> None:
    change = plan.plan_assignment(open_task("accepted", "sam.booker"), "release")
    assert (change.status, change.assignee, change.previous, change.verb) == (
        TaskStatus.ACCEPTED,
        None,
        "sam.booker",
        "released",
    )


def test_a_task_assigned_to_nobody_is_not_released() -> None:
    with pytest.raises(InvalidAction, match="not assigned to anyone"):
        plan.plan_assignment(open_task(), "release")


@pytest.mark.parametrize("action", ["claim", "assign", "release"])
@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_a_closed_task_is_neither_claimed_assigned_nor_released(action: str, status: str) -> None:
    with pytest.raises(InvalidAction, match=f"task T4 is {status}"):
        plan.plan_assignment(open_task(status, "alex.booker"), action, SAM)


# ---- waiting for a reply, and the acknowledgement timeout ----


def acknowledged(at: datetime, waiting_until: datetime | None = None, level: int = 0) -> SimpleNamespace:
    return SimpleNamespace(
        id=5, owner_role=CHAIN[level].value, escalation_level=level, acknowledged_at=at, waiting_until=waiting_until
    )


def test_a_wait_is_refused_unless_acknowledged_after_today_and_within_the_limit() -> None:
    today = date(2026, 3, 2)
    plan.check_wait(5, "accepted", date(2026, 3, 16), today, 10)  # ten working days on: allowed
    for status, until, why in [
        ("requested", date(2026, 3, 3), "only an acknowledged task"),
        ("accepted", today, "after today"),
        ("accepted", date(2026, 3, 17), "more than 10 working days"),
    ]:
        with pytest.raises(InvalidAction, match=why):
            plan.check_wait(5, status, until, today, 10)


def test_the_timeout_falls_at_the_end_of_the_nth_working_day_after_the_acknowledgement() -> None:
    friday = datetime(2026, 4, 2, 10, 0, tzinfo=UTC)  # Thu 2 Apr; Good Friday and Easter Monday follow
    before = datetime(2026, 4, 7, 15, 59, tzinfo=UTC)
    assert plan.plan_acknowledgement_timeout(acknowledged(friday), CHAIN, before, 1, 1, DAY_END) is None
    step = plan.plan_acknowledgement_timeout(acknowledged(friday), CHAIN, before + timedelta(minutes=1), 1, 1, DAY_END)
    assert step is not None and (step.to_role, step.to_level) == ("clinician", 1)
    assert step.deadline == datetime(2026, 4, 7, 16, 0, tzinfo=UTC)  # Tue 17:00 BST


def test_a_waiting_task_does_not_time_out_and_one_at_the_end_of_its_chain_stays_with_its_role() -> None:
    late = MONDAY_5PM + timedelta(days=10)
    waiting = acknowledged(MONDAY_5PM, waiting_until=late + timedelta(days=1))
    assert plan.plan_acknowledgement_timeout(waiting, CHAIN, late, 1, 1, DAY_END) is None
    step = plan.plan_acknowledgement_timeout(acknowledged(MONDAY_5PM, level=2), CHAIN, late, 1, 1, DAY_END)
    assert step is not None and (step.to_role, step.to_level) == ("safeguarding-nurse", 2)


def test_a_task_awaiting_acknowledgement_is_open_and_withdrawn_like_any_open_task() -> None:
    assert TaskStatus.AWAITING_ACKNOWLEDGEMENT.is_open
    assert "awaiting-acknowledgement" in plan.OPEN_TASK_STATUSES
    assert plan.withdrawal("task", "awaiting-acknowledgement") is TaskStatus.CANCELLED
