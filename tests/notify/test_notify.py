"""E-mail through the outbox, against a real SMTP server on loopback (aiosmtpd): red flags and escalations
are queued with the change, delivered once, retried on transient failures, stopped on permanent ones."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import FixedClock
from wnb.core.items import RawItem
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.notify import SmtpSettings, deliver, mark_uncertain_after_restart, parse_addresses
from wnb.service import Service
from wnb.store.db import writing

ADDRESSES = parse_addresses("safeguarding-nurse=sg@trust.example,named-nurse=nn@trust.example")
PLAN_CHILD = {
    "nhs_number": "9990000018",
    "date_of_birth": "2019-05-01",
    "statuses": [{"kind": "child-protection-plan", "start": "2025-01-01"}],
}
MISSED = {
    "source": "pas",
    "event_id": "e1",
    "nhs_number": "9990000018",
    "service": "audiology",
    "appointment_id": "a1",
    "appointment_at": "2026-03-02T10:00:00+00:00",
    "attendance": "did-not-attend",
    "recorded_at": "2026-03-02T11:00:00+00:00",
}
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


class Mailbox:
    """Collects messages; answers with the queued replies first (e.g. a 451), then 250."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.replies: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        if self.replies:
            return self.replies.pop(0)
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, SmtpSettings]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, SmtpSettings("127.0.0.1", port, "wnb@trust.example", timeout=5)
    controller.stop()


@pytest.fixture
def wnb(tmp_path: Path, ruleset: Ruleset) -> Iterator[Service]:
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    service = Service(db, ruleset, FixedClock(NOW), notify=ADDRESSES)
    service.import_context([RawItem(1, "", dict(PLAN_CHILD))], origin="test")
    yield service
    db.dispose()


def outbox_statuses(service: Service) -> list[str]:
    with service.db.connect() as connection:
        return [row[0] for row in connection.exec_driver_sql("SELECT status FROM outbox ORDER BY id")]


def test_a_red_flag_is_mailed_once_to_the_safeguarding_nurses(wnb: Service, mailbox: Any) -> None:
    box, smtp = mailbox
    wnb.ingest_one(RawItem(1, "", dict(MISSED)), origin="test")
    wnb.ingest_one(RawItem(2, "", {**MISSED, "event_id": "e2", "appointment_id": "a2"}), origin="test")  # repeat
    assert deliver(wnb.db, smtp, NOW) == {"sent": 1, "retried": 0, "failed": 0, "uncertain": 0}
    # A second run sends nothing.
    assert deliver(wnb.db, smtp, NOW) == {"sent": 0, "retried": 0, "failed": 0, "uncertain": 0}
    (message,) = box.messages
    assert message.rcpt_tos == ["sg@trust.example"]
    assert b"safeguarding-plan-wnb" in message.content and b"9990000018" not in message.content


def test_an_escalation_is_mailed_to_the_new_owner_role(wnb: Service, mailbox: Any) -> None:
    box, smtp = mailbox
    wnb.ingest_one(RawItem(1, "", dict(MISSED)), origin="test")
    wnb.sweep(datetime(2026, 3, 2, 17, 30, tzinfo=UTC))  # same-working-day tasks are overdue
    deliver(wnb.db, smtp, datetime(2026, 3, 2, 17, 31, tzinfo=UTC))
    assert any(m.rcpt_tos == ["nn@trust.example"] and b"escalated" in m.content for m in box.messages)


def test_a_transient_failure_is_retried_later_and_a_permanent_one_stops(wnb: Service, mailbox: Any) -> None:
    box, smtp = mailbox
    wnb.ingest_one(RawItem(1, "", dict(MISSED)), origin="test")
    box.replies = ["451 try again later"]
    assert deliver(wnb.db, smtp, NOW)["retried"] == 1
    assert deliver(wnb.db, smtp, NOW)["sent"] == 0  # not due again yet (backoff)
    assert deliver(wnb.db, smtp, datetime(2026, 3, 2, 13, tzinfo=UTC))["sent"] == 1
    wnb.sweep(datetime(2026, 3, 2, 17, 30, tzinfo=UTC))
    box.replies = ["550 no such mailbox"] * 10
    counts = deliver(wnb.db, smtp, datetime(2026, 3, 2, 18, tzinfo=UTC))
    assert counts["failed"] >= 1 and "failed" in outbox_statuses(wnb)


def test_a_row_interrupted_while_sending_is_never_sent_again_after_a_restart(wnb: Service, mailbox: Any) -> None:
    box, smtp = mailbox
    wnb.ingest_one(RawItem(1, "", dict(MISSED)), origin="test")
    with writing(wnb.db) as connection:
        connection.exec_driver_sql("UPDATE outbox SET status = 'sending'")  # the process died mid-send
    assert mark_uncertain_after_restart(wnb.db) == 1
    assert deliver(wnb.db, smtp, NOW)["sent"] == 0 and box.messages == []
    assert outbox_statuses(wnb) == ["uncertain"]


def test_a_bad_notify_setting_is_an_error_naming_the_entry() -> None:
    with pytest.raises(ValueError, match="nurse"):
        parse_addresses("nurse")
