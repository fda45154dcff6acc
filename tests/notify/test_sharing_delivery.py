"""The sharing channels against real servers on loopback (issue 18 part 2): a secure e-mail reaches an SMTP server
(aiosmtpd) only over STARTTLS with a certificate the trust's CA file verifies, a server offering no STARTTLS (or
an untrusted certificate) is refused and the task goes back; a FHIR Communication reaches an HTTPS endpoint with
a valid webhook signature."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fhir.resources.R4B.communication import Communication

from tests.conftest import FixedClock
from tests.service.test_assignment import person
from tests.sharing import CHILD, CLERK, SECRET, certificates, fhir_receiver, load, smtp_server
from wnb import notify
from wnb.core.domain import Role
from wnb.core.ruleset import Ruleset
from wnb.core.sharing import SharingConfig
from wnb.database import open_database
from wnb.notify import FhirSettings, SecureEmailSettings
from wnb.service import Service
from wnb.store import communications, listing

CLERK_P = person(CLERK, Role.BOOKING_TEAM)
NOW = datetime(2026, 3, 2, 12, 5, tzinfo=UTC)


@pytest.fixture
def service(tmp_path: Path, ruleset: Ruleset, clock: FixedClock) -> Iterator[Service]:
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    yield Service(db, ruleset, clock, sharing=SharingConfig(("nhs.net",)))
    db.dispose()


def _gp_task(service: Service) -> str:
    with service.db.connect() as connection:
        return next(str(t["id"]) for t in listing.tasks(connection, include_closed=True) if t["code"] == "inform-gp")


def _status(service: Service, task: str) -> str:
    with service.db.connect() as connection:
        return next(str(t["status"]) for t in listing.tasks(connection, include_closed=True) if t["id"] == task)


def test_a_secure_e_mail_is_delivered_over_starttls_to_the_practice(service: Service, tmp_path: Path) -> None:
    load(service)
    tls = certificates(tmp_path)
    made = service.send_communication(_gp_task(service), "email", CLERK_P)
    with smtp_server(tls) as (box, smtp):
        counts = notify.deliver(service.db, None, NOW, secure=SecureEmailSettings(smtp, ("nhs.net",), tls.ca_file))
    assert counts["sent"] == 1 and box.secured == [True]
    (envelope,) = box.messages
    assert envelope.rcpt_tos == ["riverside.surgery@nhs.net"]
    text = envelope.content.decode()
    assert made.reference in text and CHILD in text and "Date of birth: 2019-05-01" in text
    assert service.settle_communications(NOW) == [] and _status(service, made.reference.split("-")[1]) == (
        "awaiting-acknowledgement"
    )


@pytest.mark.parametrize("offers_starttls", [False, True])
def test_a_server_without_starttls_or_with_an_untrusted_certificate_is_refused_and_the_task_goes_back(
    service: Service, tmp_path: Path, offers_starttls: bool
) -> None:
    load(service)
    task = _gp_task(service)
    made = service.send_communication(task, "email", CLERK_P)
    tls = certificates(tmp_path) if offers_starttls else None
    with smtp_server(tls) as (box, smtp):
        # With STARTTLS offered, the certificate is checked against the system's CAs, which never signed it.
        counts = notify.deliver(service.db, None, NOW, secure=SecureEmailSettings(smtp, ("nhs.net",)))
    assert counts["failed"] == 1 and box.messages == []
    assert service.settle_communications(NOW) == [f"task {task} back to requested: message {made.reference} failed"]
    with service.db.connect() as connection:
        message = communications.by_id(connection, made.id)
    assert message is not None and message.status == "failed"
    assert ("STARTTLS failed" if offers_starttls else "does not offer STARTTLS") in (message.status_reason or "")
    assert _status(service, task) == "requested"


def test_a_fhir_communication_is_posted_signed_to_the_endpoint(service: Service, tmp_path: Path) -> None:
    tls = certificates(tmp_path)
    with fhir_receiver(tls) as receiver:
        load(service, endpoint=receiver.url)
        task = _gp_task(service)
        made = service.send_communication(task, "fhir", CLERK_P)
        counts = notify.deliver(service.db, None, NOW, fhir=FhirSettings(SECRET, tls.ca_file))
    assert counts["sent"] == 1
    ((resource, signed, delivery),) = receiver.posts
    assert signed and delivery == f"communication:{made.id}:fhir:{receiver.url}"
    Communication.model_validate(resource)  # a valid FHIR R4 Communication
    assert resource["identifier"][0]["value"] == made.reference
    assert resource["subject"]["identifier"]["value"] == CHILD
    assert resource["about"] == [{"reference": f"Task/{task}", "type": "Task"}]
    assert resource["recipient"][0]["identifier"]["value"] == "Y00001"
    assert CHILD in resource["payload"][0]["contentString"]
    assert _status(service, task) == "awaiting-acknowledgement"


def test_a_fhir_endpoint_whose_certificate_is_not_trusted_gets_nothing(service: Service, tmp_path: Path) -> None:
    tls = certificates(tmp_path)
    with fhir_receiver(tls) as receiver:
        load(service, endpoint=receiver.url)
        task = _gp_task(service)
        service.send_communication(task, "fhir", CLERK_P)
        counts = notify.deliver(service.db, None, NOW, fhir=FhirSettings(SECRET))  # the system's CAs: not this one
    assert receiver.posts == [] and counts["failed"] == 1  # for good: a certificate does not mend itself
    assert service.settle_communications(NOW) and _status(service, task) == "requested"


def test_a_messages_text_is_emptied_from_the_outbox_after_its_retention_but_not_while_it_may_be_sent(
    service: Service, tmp_path: Path
) -> None:
    from datetime import timedelta

    load(service)
    service.send_communication(_gp_task(service), "email", CLERK_P)
    with service.db.connect() as connection:
        queued = connection.exec_driver_sql("SELECT body FROM outbox").scalar_one()
    assert CHILD in queued
    assert notify.purge(service.db, NOW + timedelta(days=60), timedelta(days=30)) == 0  # pending: it may yet go
    tls = certificates(tmp_path)
    with smtp_server(tls) as (_, smtp):
        notify.deliver(service.db, None, NOW, secure=SecureEmailSettings(smtp, ("nhs.net",), tls.ca_file))
    assert notify.purge(service.db, NOW + timedelta(days=29), timedelta(days=30)) == 0  # not old enough
    assert notify.purge(service.db, NOW + timedelta(days=31), timedelta(days=30)) == 1
    with service.db.connect() as connection:
        status, body = connection.exec_driver_sql("SELECT status, body FROM outbox").one()
    assert status == "sent" and CHILD not in body and "purged" in body
