"""Waiting on someone and the acknowledgement timeout (issue 16), through the real service on both stores: a
task waits for a reply until a date and is back at the top of its owner's list then, told by e-mail; with the
ruleset's timeout set, an acknowledged task not completed in time goes back to `requested` at the next role."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.conftest import FixedClock
from tests.service.test_assignment import NURSE, nurse_task, person, records, service  # noqa: F401
from wnb.core.domain import Role
from wnb.core.errors import InvalidAction
from wnb.core.ruleset import Ruleset
from wnb.service import Service
from wnb.store import repo

STORES = ("sqlite", "postgres")
MONDAY = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # the clock fixture's day: the miss is recorded then


def _with_timeout(ruleset: Ruleset, days: int) -> Ruleset:
    escalation = ruleset.settings.escalation.model_copy(update={"acknowledged_timeout_working_days": days})
    return ruleset.model_copy(update={"settings": ruleset.settings.model_copy(update={"escalation": escalation})})


def _acknowledged(service: Service) -> str:  # noqa: F811
    task = nurse_task(service)
    service.act_on_task(task["id"], "ack", person(NURSE, Role.SAFEGUARDING_NURSE))
    return str(task["id"])


def test_a_task_waits_for_a_reply_then_is_back_at_the_top_of_its_owners_list_and_they_are_told(
    service: Service,  # noqa: F811
    clock: FixedClock,
) -> None:
    ref = _acknowledged(service)
    service.wait_on_task(
        ref, date(2026, 3, 5), "the social worker's reply on the home visit", person(NURSE, Role.SAFEGUARDING_NURSE)
    )
    clock.now = datetime(2026, 3, 4, 23, 0, tzinfo=UTC)
    assert service.sweep()["returned"] == 0  # not yet: the wait ends at the start of Thu 5 Mar
    clock.now = datetime(2026, 3, 5, 0, 5, tzinfo=UTC)
    assert service.sweep()["returned"] == 1
    task = nurse_task(service)
    assert task["status"] == "accepted" and datetime.fromisoformat(task["due_at"].replace("Z", "+00:00")) <= clock.now
    with service.db.connect() as connection:
        row = repo.task_by_id(connection, int(ref[1:]))
        assert row is not None and row.waiting_until is None
        keys = [key for (key,) in connection.exec_driver_sql("SELECT dedupe_key FROM outbox")]
    assert any(f"task:{ref[1:]}:reply-due" in key for key in keys)
    assert [record["payload"]["reason"] for record in records(service, "task_reply_due")] == [
        "the social worker's reply on the home visit"
    ]


@pytest.mark.parametrize(
    ("until", "why"),
    [(date(2026, 3, 2), "a date after today"), (date(2026, 3, 30), "more than 10 working days")],
)
def test_a_wait_must_end_after_today_and_within_the_rulesets_working_days(
    service: Service,  # noqa: F811
    until: date,
    why: str,
) -> None:
    ref = _acknowledged(service)
    with pytest.raises(InvalidAction, match=why):
        service.wait_on_task(ref, until, "a reply", person(NURSE, Role.SAFEGUARDING_NURSE))


def test_only_an_acknowledged_task_waits(service: Service) -> None:  # noqa: F811
    with pytest.raises(InvalidAction, match="only an acknowledged task can wait"):
        service.wait_on_task(
            nurse_task(service)["id"], date(2026, 3, 4), "a reply", person(NURSE, Role.SAFEGUARDING_NURSE)
        )


def test_the_acknowledgement_timeout_is_off_in_the_default_ruleset(service: Service, clock: FixedClock) -> None:  # noqa: F811
    _acknowledged(service)
    assert service.ruleset.settings.escalation.acknowledged_timeout_working_days is None
    clock.now = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    service.sweep()
    assert nurse_task(service)["status"] == "accepted"


def test_with_a_timeout_an_acknowledged_task_not_done_goes_back_to_requested_at_the_next_role(
    service: Service,  # noqa: F811
    clock: FixedClock,
) -> None:
    _acknowledged(service)
    timed = Service(service.db, _with_timeout(service.ruleset, 1), clock, notify=service.notify)
    clock.now = datetime(2026, 3, 3, 16, 59, tzinfo=UTC)  # Tue before 17:00: the working day after Monday's ack
    assert timed.sweep()["returned"] == 0
    clock.now = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
    assert timed.sweep()["returned"] == 1
    task = nurse_task(service)
    assert (task["status"], task["owner_role"], task["escalation_level"]) == ("requested", "named-nurse", 1)
    assert records(service, "task_acknowledgement_timed_out")[0]["payload"]["to_role"] == "named-nurse"


def test_a_task_waiting_for_a_reply_does_not_time_out(service: Service, clock: FixedClock) -> None:  # noqa: F811
    ref = _acknowledged(service)
    service.wait_on_task(ref, date(2026, 3, 6), "the GP's letter", person(NURSE, Role.SAFEGUARDING_NURSE))
    timed = Service(service.db, _with_timeout(service.ruleset, 1), clock, notify=service.notify)
    clock.now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    assert timed.sweep()["returned"] == 0
    assert nurse_task(service)["status"] == "accepted"
