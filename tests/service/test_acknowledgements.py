"""Acknowledgement tracking (issue 18 part 3), through the real service on both stores: a message carries a
signed, single-use, expiring link under WNB_PUBLIC_URL; acknowledging by it (or by a partner's key bound to the
recipient) records who and when and completes the task; a message not acknowledged within the ruleset's working
days puts its task back to `requested`, noted "sent, not acknowledged", and the sweep after its due time escalates
it as any other."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import FixedClock
from tests.service.test_assignment import person, records
from tests.sharing import CLERK, load
from wnb.core.ack_links import BadLink, make_token, read_token
from wnb.core.domain import Role
from wnb.core.errors import Forbidden, InvalidAction
from wnb.core.policy import Kind, Principal
from wnb.core.ruleset import Ruleset
from wnb.core.sharing import SharingConfig
from wnb.database import open_database
from wnb.service import Service
from wnb.store import communications, listing, repo
from wnb.store.communications import Communication

STORES = ("sqlite", "postgres")  # every test here runs on both stores (conftest.py)
CLERK_P = person(CLERK, Role.BOOKING_TEAM)
LINK_SECRET = "acknowledgement-test-secret-0123456789"
SHARING = SharingConfig(("nhs.net",), None, "https://wnb.trust.example", LINK_SECRET, 30)


@pytest.fixture
def service(db_url: str, ruleset: Ruleset, clock: FixedClock) -> Iterator[Service]:
    db = open_database(db_url)
    wnb = Service(db, ruleset, clock, sharing=SHARING)
    load(wnb)
    yield wnb
    db.dispose()


def gp_task(service: Service) -> dict[str, object]:
    with service.db.connect() as connection:
        return next(item for item in listing.tasks(connection, include_closed=True) if item["code"] == "inform-gp")


def letter_sent(service: Service) -> Communication:
    made = service.send_communication(str(gp_task(service)["id"]), "letter", CLERK_P)
    return service.mark_letter_sent(made.reference, CLERK_P)


def token_of(message: Communication) -> str:
    url = message.content["ack_url"]
    assert isinstance(url, str) and url.startswith("https://wnb.trust.example/web/ack/")
    return url.rsplit("/", 1)[1]


def partner(recipient: str | None) -> Principal:
    return Principal(Kind.CLIENT, "gp-system", Role.CLINIC_SYSTEM, frozenset(), False, recipient)


def test_a_message_carries_a_signed_link_that_acknowledges_it_once_and_completes_its_task(service: Service) -> None:
    sent = letter_sent(service)
    assert sent.ack_due_at == datetime(2026, 3, 5, 17, 0, tzinfo=UTC)  # three working days, at 17:00 London
    assert gp_task(service)["status"] == "awaiting-acknowledgement"
    done = service.acknowledge_by_link(token_of(sent), "  Dr  A. Reader ")
    assert (done.status, done.acknowledged_by, done.acknowledged_via) == ("acknowledged", "Dr A. Reader", "link")
    task = gp_task(service)
    assert task["status"] == "completed"
    assert [r["payload"]["via"] for r in records(service, "communication_acknowledged")] == ["link"]
    completed = records(service, "task_completed")[-1]["payload"]
    assert completed["note"].startswith(f"message {sent.reference} acknowledged by Dr A. Reader (link) on ")
    with pytest.raises(InvalidAction, match="acknowledged already"):  # single use: the second changes nothing
        service.acknowledge_by_link(token_of(sent), "Someone Else")
    assert len(records(service, "communication_acknowledged")) == 1
    with service.db.connect() as connection:
        again = communications.by_id(connection, sent.id)
    assert again is not None and again.acknowledged_by == "Dr A. Reader"


def test_an_altered_or_expired_link_is_refused_and_changes_nothing(service: Service) -> None:
    sent = letter_sent(service)
    token = token_of(sent)
    number, expires, mac = token.split(".")
    with pytest.raises(BadLink, match="altered"):
        service.acknowledge_by_link(f"{int(number) + 1}.{expires}.{mac}", "A. Reader")
    with pytest.raises(BadLink, match="altered"):
        service.acknowledge_by_link(f"{number}.{int(expires) + 86400}.{mac}", "A. Reader")
    with pytest.raises(BadLink, match="not an acknowledgement link"):
        service.acknowledge_by_link("../../etc", "A. Reader")
    with pytest.raises(BadLink, match="expired"):
        service.acknowledge_by_link(token, "A. Reader", at=service.clock() + timedelta(days=31))
    with pytest.raises(InvalidAction, match="give your name"):
        service.acknowledge_by_link(token, "   ")
    assert records(service, "communication_acknowledged") == []
    assert gp_task(service)["status"] == "awaiting-acknowledgement"


def test_a_link_is_signed_with_the_secret_and_names_only_the_message() -> None:
    at = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    token = make_token(42, at + timedelta(days=1), LINK_SECRET)
    assert read_token(token, LINK_SECRET, at) == 42
    with pytest.raises(BadLink):
        read_token(token, "another secret of the same length, nearly", at)
    assert token.split(".")[:2] == ["42", str(int((at + timedelta(days=1)).timestamp()))]


def test_a_partners_key_acknowledges_only_its_own_recipients_messages(service: Service) -> None:
    sent = letter_sent(service)
    with pytest.raises(Forbidden, match="not bound to a recipient"):
        service.acknowledge_by_key(sent.reference, "A. Reader", partner(None))
    with pytest.raises(Forbidden, match="only messages to Y00002"):
        service.acknowledge_by_key(sent.reference, "A. Reader", partner("Y00002"))
    with pytest.raises(Forbidden):  # a person acknowledges by the link, not the API
        service.acknowledge_by_key(sent.reference, "A. Reader", CLERK_P)
    assert gp_task(service)["status"] == "awaiting-acknowledgement"
    done = service.acknowledge_by_key(f"M{sent.id}", "Practice manager", partner("Y00001"))
    assert (done.status, done.acknowledged_via) == ("acknowledged", "api")
    assert gp_task(service)["status"] == "completed"
    assert records(service, "communication_acknowledged")[0]["actor"] == "client:gp-system"


def test_an_unacknowledged_message_reopens_and_escalates_its_task_at_the_sweep_after_the_deadline(
    service: Service,
) -> None:
    sent = letter_sent(service)
    before_due = service.sweep(datetime(2026, 3, 5, 16, 59, tzinfo=UTC))
    assert before_due["not_acknowledged"] == 0 and gp_task(service)["status"] == "awaiting-acknowledgement"
    after_due = service.sweep(datetime(2026, 3, 5, 17, 1, tzinfo=UTC))
    assert after_due["not_acknowledged"] == 1 and after_due["escalated"] >= 1
    task = gp_task(service)
    assert task["status"] == "requested"
    assert task["owner_role"] != "booking-team"  # due at 17:00 that day, so up its chain as any overdue task
    with service.db.connect() as connection:
        message = communications.by_id(connection, sent.id)
        history = repo.task_history_of(connection, int(str(task["id"])[1:]))
    assert message is not None and (message.status, message.status_reason) == (
        "not-acknowledged",
        "sent, not acknowledged",
    )
    assert any(str(entry.note).startswith("sent, not acknowledged") for entry in history)
    back = records(service, "task_not_acknowledged")[0]["payload"]
    assert back["to"] == "requested"
    assert datetime.fromisoformat(back["due_at"].replace("Z", "+00:00")) == datetime(2026, 3, 5, 17, 0, tzinfo=UTC)
    assert service.sweep(datetime(2026, 3, 5, 17, 2, tzinfo=UTC))["not_acknowledged"] == 0  # once only
    late = service.acknowledge_by_link(token_of(sent), "A. Late Reader")  # it did arrive after all
    assert late.status == "acknowledged" and gp_task(service)["status"] == "completed"
