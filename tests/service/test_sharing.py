"""Sending the information is the task (issue 18 part 2), through the real service on both stores: a letter is
prepared then marked sent, e-mail and FHIR messages are queued with the minimum necessary, the task awaits the
recipient's acknowledgement (and is claimed, assigned or escalated no more), one who does not own the task is
refused, e-mail goes only to configured secure domains, and an undelivered or uncertain message puts its task
back to `requested` at once, due at the end of the working day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.conftest import FixedClock
from tests.service.test_assignment import person, records
from tests.sharing import CHILD, CLERK, DOCTOR, NURSE, load
from wnb import notify
from wnb.core.domain import Role
from wnb.core.errors import Forbidden, InvalidAction
from wnb.core.ruleset import Ruleset
from wnb.core.sharing import SharingConfig
from wnb.database import open_database
from wnb.service import Service
from wnb.store import communications, listing, repo
from wnb.store.db import writing

STORES = ("sqlite", "postgres")  # every test here runs on both stores (conftest.py)
CLERK_P = person(CLERK, Role.BOOKING_TEAM)
MINIMUM = {
    "reference",
    "nhs_number",
    "date_of_birth",
    "service",
    "appointment_date",
    "outcome",
    "task",
    "rules",
    "trust_contact",
    "ack_url",
}


@pytest.fixture
def service(db_url: str, ruleset: Ruleset, clock: FixedClock) -> Iterator[Service]:
    db = open_database(db_url)
    wnb = Service(db, ruleset, clock, sharing=SharingConfig(("nhs.net",), "Safeguarding team, 01234 567890"))
    load(wnb)
    yield wnb
    db.dispose()


def task_of(service: Service, code: str) -> dict[str, object]:
    with service.db.connect() as connection:
        return next(item for item in listing.tasks(connection, include_closed=True) if item["code"] == code)


def test_a_letter_is_prepared_then_marked_sent_and_its_task_awaits_acknowledgement(service: Service) -> None:
    task = task_of(service, "inform-gp")
    made = service.send_communication(str(task["id"]), "letter", CLERK_P)
    assert (made.status, made.channel, made.recipient_name, made.recipient_ods) == (
        "awaiting-send",
        "letter",
        "Riverside Surgery",
        "Y00001",
    )
    assert made.reference == f"WNB-{task['id']}-1" and made.sent_at is None
    assert task_of(service, "inform-gp")["status"] == "requested"  # not out yet: it waits to be printed
    assert set(made.content) == MINIMUM and made.content["ack_url"] is None
    assert made.content["nhs_number"] == CHILD and made.content["date_of_birth"] == "2019-05-01"
    assert made.content["appointment_date"] == "2026-03-02" and made.content["outcome"] == "did-not-attend"
    assert made.content["trust_contact"] == "Safeguarding team, 01234 567890"
    assert [rule["id"] for rule in made.content["rules"]] == ["WNB-01", "WNB-09"]
    sent = service.mark_letter_sent(made.reference, CLERK_P)
    assert (sent.status, sent.sent_by) == ("sent", f"user:{CLERK}")
    after = task_of(service, "inform-gp")
    assert after["status"] == "awaiting-acknowledgement"
    assert [r["payload"]["communication"] for r in records(service, "communication_sent")] == [made.id]
    assert records(service, "task_sent")[0]["subject"] == [str(task["id"]), CHILD]
    with pytest.raises(InvalidAction, match="only a letter waiting to be sent"):
        service.mark_letter_sent(made.reference, CLERK_P)
    with pytest.raises(InvalidAction, match="is awaiting-acknowledgement"):
        service.assign_task(str(task["id"]), "claim", CLERK_P)


def test_one_who_does_not_own_the_task_may_not_send_from_it(service: Service) -> None:
    task = str(task_of(service, "inform-gp")["id"])  # the booking team's
    for who in (person(NURSE, Role.SAFEGUARDING_NURSE), person(DOCTOR, Role.CLINICIAN)):
        with pytest.raises(Forbidden, match="booking-team role"):
            service.send_communication(task, "letter", who)
    with service.db.connect() as connection:
        assert communications.of_person(connection, CHILD) == []


def test_a_task_that_shares_nothing_or_names_no_contact_sends_nothing(service: Service) -> None:
    with pytest.raises(InvalidAction, match="shares no information"):
        service.send_communication(str(task_of(service, "reoffer-appointment")["id"]), "letter", CLERK_P)
    with pytest.raises(InvalidAction, match="no structured health-visitor contact|no structured school-nurse"):
        service.send_communication(
            str(task_of(service, "inform-health-visitor-or-school-nurse")["id"]), "letter", CLERK_P
        )


def test_e_mail_goes_only_to_a_secure_domain_and_is_off_when_none_is_configured(
    service: Service, db_url: str, ruleset: Ruleset, clock: FixedClock
) -> None:
    nurse_task = str(task_of(service, "notify-social-worker")["id"])
    with pytest.raises(InvalidAction, match="has no e-mail address"):
        service.send_communication(nurse_task, "email", person(NURSE, Role.SAFEGUARDING_NURSE))
    off = Service(service.db, ruleset, clock)  # WNB_SECURE_EMAIL_DOMAINS not set
    with pytest.raises(InvalidAction, match="e-mail sharing is off"):
        off.send_communication(str(task_of(service, "inform-gp")["id"]), "email", CLERK_P)
    elsewhere = Service(service.db, ruleset, clock, sharing=SharingConfig(("gov.uk",)))
    with pytest.raises(InvalidAction, match="nhs.net is not one of the secure e-mail domains"):
        elsewhere.send_communication(str(task_of(service, "inform-gp")["id"]), "email", CLERK_P)
    with pytest.raises(InvalidAction, match="'pigeon' is not a channel"):
        service.send_communication(str(task_of(service, "inform-gp")["id"]), "pigeon", CLERK_P)


def test_an_e_mail_is_queued_with_the_minimum_and_its_task_awaits_acknowledgement(service: Service) -> None:
    task = task_of(service, "inform-gp")
    made = service.send_communication(str(task["id"]), "email", CLERK_P)
    assert (made.status, made.address, made.sent_by) == ("sent", "riverside.surgery@nhs.net", f"user:{CLERK}")
    assert task_of(service, "inform-gp")["status"] == "awaiting-acknowledgement"
    with service.db.connect() as connection:
        (row,) = connection.exec_driver_sql("SELECT id, recipient, subject, body FROM outbox").all()
    assert row[0] == made.outbox_id and row[1] == "secure-email:riverside.surgery@nhs.net"
    assert made.reference in row[2] and CHILD not in row[2]  # the subject carries no personal data
    assert CHILD in row[3] and "Safeguarding team, 01234 567890" in row[3]
    with pytest.raises(InvalidAction, match="is awaiting-acknowledgement"):
        service.send_communication(str(task["id"]), "letter", CLERK_P)
    service.act_on_task(str(task["id"]), "complete", CLERK_P, "the practice rang to say they have it")
    assert task_of(service, "inform-gp")["status"] == "completed"


@pytest.mark.parametrize(("outcome", "words"), [("failed", "not delivered"), ("uncertain", "may not have arrived")])
def test_an_undelivered_or_uncertain_message_puts_its_task_back_at_once_due_at_the_days_end(
    service: Service, clock: FixedClock, outcome: str, words: str
) -> None:
    task = task_of(service, "inform-gp")
    made = service.send_communication(str(task["id"]), "email", CLERK_P)
    with writing(service.db) as connection:  # as the outbox leaves a row it gives up on, or one cut off mid-send
        status = "sending" if outcome == "uncertain" else "failed"
        connection.exec_driver_sql(f"UPDATE outbox SET status = '{status}', last_error = '550 no such mailbox'")
    if outcome == "uncertain":
        assert notify.mark_uncertain_after_restart(service.db, clock.now) == 1
    clock.now = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    assert service.sweep()["messages_returned"] == 1
    after = task_of(service, "inform-gp")
    assert after["status"] == "requested" and after["due_at"] == "2026-03-02T17:00:00Z"
    with service.db.connect() as connection:
        message = communications.by_id(connection, made.id)
        history = repo.task_history_of(connection, int(str(task["id"])[1:]))
    assert message is not None and message.status == outcome and words in (message.status_reason or "")
    assert history[-1].action == "message-undelivered" and made.reference in (history[-1].note or "")
    assert service.sweep()["messages_returned"] == 0  # once
    again = service.send_communication(str(task["id"]), "letter", CLERK_P)  # a letter instead
    assert again.reference.endswith("-2")
