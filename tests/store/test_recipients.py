"""The recipient directory and joined-up data quality on both stores (issue 18 parts 1 and 5): recipients
imported, replaced and audited; structured contacts completed from them; the context match rate, the people
with events but no context, stale context and the free-text contacts needing structure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from tests import factories
from tests.conftest import FixedClock
from tests.factories import raw
from wnb.core.contacts import Contact, ContactRole, Recipient
from wnb.service import Service
from wnb.store import audit, quality, recipients
from wnb.store.db import writing

STORES = ("sqlite", "postgres")  # every test here runs on both stores (conftest.py)

CHILD, INFANT, UNKNOWN = "9990000018", "9990000026", "9990000034"
AT = datetime(2026, 3, 2, 9, tzinfo=UTC)
RIVERSIDE = Recipient(ods_code="Y00001", name="Riverside Surgery", email="riverside.surgery@nhs.net")


def context(nhs_number: str, **fields: Any) -> dict[str, Any]:
    return {"nhs_number": nhs_number, "date_of_birth": "2019-05-01", **fields}


def import_context(service: Service, *records: dict[str, Any]) -> None:
    service.import_context([raw(record, line) for line, record in enumerate(records, 1)], origin="context")


def send(service: Service, nhs_number: str, event_id: str) -> None:
    data = factories.event(event_id, nhs_number=nhs_number, appointment_id=event_id, date_of_birth="2019-05-01")
    service.ingest_one(raw(data, 1), origin="test")


def test_recipients_are_created_then_replaced_by_their_ods_code_and_audited(service: Service) -> None:
    with writing(service.db) as connection:
        first = recipients.save_recipients(connection, [RIVERSIDE], AT, "cli")
    moved = RIVERSIDE.model_copy(update={"email": "safeguarding.riverside@nhs.net"})
    other = Recipient(ods_code="B86001", name="Northshire Children's Services")
    with writing(service.db) as connection:
        second = recipients.save_recipients(connection, [moved, other], AT, "cli")
    assert first == {"created": 1, "updated": 0} and second == {"created": 1, "updated": 1}
    with service.db.connect() as connection:
        assert recipients.all_recipients(connection) == [other, moved]
        records = connection.execute(
            select(audit._audit).where(audit._audit.c.action == "recipients_imported").order_by(audit._audit.c.seq)
        )
        assert [row.subject for row in records] == [["Y00001"], ["B86001", "Y00001"]]
        assert audit.verify(connection).ok


def test_a_contact_naming_only_an_ods_code_is_completed_from_the_stored_directory(service: Service) -> None:
    with writing(service.db) as connection:
        recipients.save_recipients(connection, [RIVERSIDE], AT, "cli")
    given = [
        Contact(role=ContactRole.GP_PRACTICE, ods_code="Y00001"),
        Contact(role=ContactRole.SOCIAL_WORKER, person="A. Duty"),
    ]
    with service.db.connect() as connection:
        shown = recipients.completed_contacts(connection, given)
    assert (shown[0].organisation, shown[0].email) == ("Riverside Surgery", "riverside.surgery@nhs.net")
    assert shown[1] == given[1]


def test_the_match_rate_counts_judged_events_whose_person_has_context(service: Service, clock: FixedClock) -> None:
    import_context(service, context(CHILD), context(INFANT))
    for event_id, person in (("e1", CHILD), ("e2", CHILD), ("e3", INFANT), ("e4", UNKNOWN)):
        send(service, person, event_id)
    with service.db.connect() as connection:
        coverage = quality.context_coverage(connection, clock(), stale_days=90)
    assert (coverage.events, coverage.events_with_context, coverage.ratio) == (4, 3, 0.75)
    assert (coverage.people_without_context, coverage.without_context) == (1, (UNKNOWN,))


def test_without_events_the_match_rate_is_unknown_not_zero(service: Service, clock: FixedClock) -> None:
    with service.db.connect() as connection:
        coverage = quality.context_coverage(connection, clock(), stale_days=90)
    assert coverage.ratio is None and coverage.events == 0


def test_context_not_refreshed_for_the_configured_days_is_listed_oldest_first(
    service: Service, clock: FixedClock
) -> None:
    start = clock()
    import_context(service, context(CHILD))
    clock.now = start + timedelta(days=10)
    import_context(service, context(INFANT))
    with service.db.connect() as connection:
        at_90 = quality.context_coverage(connection, start + timedelta(days=95), stale_days=90)
        at_80 = quality.context_coverage(connection, start + timedelta(days=95), stale_days=80)
    assert (at_90.stale_contexts, [number for number, _ in at_90.stale]) == (1, [CHILD])
    assert (at_80.stale_contexts, [number for number, _ in at_80.stale]) == (2, [CHILD, INFANT])


def test_free_text_contacts_need_structure_until_the_role_has_a_structured_contact(service: Service) -> None:
    import_context(
        service,
        context(CHILD, contacts={"social_worker": "Duty team", "gp_practice": "Y00001 Riverside Surgery"}),
        context(
            INFANT,
            contacts={"gp_practice": "Y00001"},
            structured_contacts=[{"role": "gp-practice", "ods_code": "Y00001"}],
        ),
        context(UNKNOWN),
    )
    with service.db.connect() as connection:
        needing = quality.contacts_needing_structure(connection)
    assert [(item.nhs_number, item.key, item.role, item.text) for item in needing] == [
        (CHILD, "social_worker", "social-worker", "Duty team"),
        (CHILD, "gp_practice", "gp-practice", "Y00001 Riverside Surgery"),
    ]
