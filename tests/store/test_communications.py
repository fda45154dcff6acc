"""The messages sent from information-sharing tasks (issue 18 part 2) on both stores: stored with a reference
and their content, found by id, reference, person and outbox row, moved through their statuses; and a task
awaiting acknowledgement is open, so a second open task of its (person, service, code) is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests import factories
from tests.factories import raw
from wnb.core.sharing import AcknowledgedVia, CommunicationStatus
from wnb.service import Service
from wnb.store import communications, repo
from wnb.store.communications import NewCommunication
from wnb.store.db import writing

STORES = ("sqlite", "postgres")  # every test here runs on both stores (conftest.py)

AT = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _inform_gp(service: Service) -> int:
    """The task T<n> `inform-gp` a missed appointment of a seven-year-old raises (WNB-09)."""
    service.ingest_one(raw(factories.event("e1"), 1), origin="test")
    with service.db.connect() as connection:
        found = repo.open_tasks(connection, factories.CHILD, "community-paediatrics")
    return int(found[("community-paediatrics", "inform-gp")].id)


def _letter(task_id: int) -> NewCommunication:
    return NewCommunication(
        task_id=task_id,
        nhs_number=factories.CHILD,
        recipient_role="gp-practice",
        recipient_name="Riverside Surgery",
        recipient_organisation="Riverside Surgery",
        recipient_ods="Y00001",
        channel="letter",
        address=None,
        status=CommunicationStatus.AWAITING_SEND,
    )


def test_a_message_is_stored_with_its_reference_and_found_by_id_reference_and_person(service: Service) -> None:
    task_id = _inform_gp(service)
    with writing(service.db) as connection:
        first = communications.next_reference(connection, task_id)
        made = communications.create(connection, _letter(task_id), first, {"reference": first}, AT, "booking.one")
        second = communications.next_reference(connection, task_id)
    assert first == f"WNB-T{task_id}-1" and second == f"WNB-T{task_id}-2"
    assert made.status == "awaiting-send" and made.sent_at is None and made.outstanding
    with service.db.connect() as connection:
        assert communications.by_id(connection, made.id) == made
        assert communications.by_reference(connection, first) == made
        assert communications.of_person(connection, factories.CHILD) == [made]
        assert communications.of_task(connection, task_id) == [made]
        assert communications.of_person(connection, "9990000026") == []
        assert communications.by_reference(connection, "WNB-T0-1") is None


def test_a_message_is_marked_sent_then_acknowledged_and_its_failure_keeps_the_reason(service: Service) -> None:
    task_id = _inform_gp(service)
    due = AT + timedelta(days=3)
    with writing(service.db) as connection:
        ref = communications.next_reference(connection, task_id)
        made = communications.create(connection, _letter(task_id), ref, {}, AT, "booking.one")
        sent = communications.mark_sent(connection, made.id, AT + timedelta(hours=1), "booking.two", due)
        other = communications.create(
            connection, _letter(task_id), communications.next_reference(connection, task_id), {}, AT, "booking.one"
        )
        communications.set_outbox(connection, other.id, 41)
        failed = communications.set_status(connection, other.id, CommunicationStatus.FAILED, "550 no such mailbox")
    assert (sent.status, sent.sent_by, sent.ack_due_at) == ("sent", "booking.two", due)
    assert (failed.status, failed.status_reason, failed.outbox_id, failed.outstanding) == (
        "failed",
        "550 no such mailbox",
        41,
        False,
    )
    with service.db.connect() as connection:
        assert communications.by_outbox(connection, 41) == failed
        assert communications.due_unacknowledged(connection, due - timedelta(seconds=1)) == []
        assert communications.due_unacknowledged(connection, due) == [sent]
    with writing(service.db) as connection:
        acked = communications.mark_acknowledged(connection, made.id, due, "Dr A. Practice", AcknowledgedVia.LINK)
    assert (acked.status, acked.acknowledged_by, acked.acknowledged_via) == ("acknowledged", "Dr A. Practice", "link")
    with service.db.connect() as connection:
        assert communications.due_unacknowledged(connection, due) == []


def test_a_task_awaiting_acknowledgement_is_open_so_a_second_open_task_of_its_code_is_refused(
    service: Service,
) -> None:
    task_id = _inform_gp(service)
    with writing(service.db) as connection:
        repo.update_row(connection, repo.tasks, task_id, status="awaiting-acknowledgement")
    with service.db.connect() as connection:
        task = repo.task_by_id(connection, task_id)
        assert task is not None
        held = repo.open_tasks(connection, factories.CHILD, "community-paediatrics")
        assert held[("community-paediatrics", "inform-gp")].id == task_id
    twin = {key: task[key] for key in task if key != "id"}
    with (
        pytest.raises(Exception, match="uq_task_open|UNIQUE constraint failed: task"),
        writing(service.db) as connection,
    ):
        repo.insert_row(connection, repo.tasks, twin)
