"""The orchestrator on a real SQLite file: idempotency, supersession, stale events, corrections that withdraw,
rejects that reserve nothing, missing dates of birth, and a crash in the middle of a batch."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.conftest import FixedClock
from tests.factories import raw
from tests.ingest.test_ingest import rejects
from wnb.core.items import RawItem
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.ingest import read_file
from wnb.service import Service
from wnb.service.explain import explain_item
from wnb.store import audit, listing, repo

STORES = ("sqlite", "postgres")  # every test here runs on both stores (conftest.py)

CHILD = "9990000018"
INFANT = "9990000026"
OTHER_CHILD = "9990000034"


def event(event_id: str, **changes: Any) -> dict[str, Any]:
    """The shared event (tests/factories.py), every one of appointment a1 unless a test names another."""
    return factories.event(event_id, **{"appointment_id": "a1", **changes})


def send(service: Service, data: dict[str, Any], line: int = 1) -> str:
    return service.ingest_one(raw(data, line), origin="test")


def flags(service: Service) -> list[dict[str, Any]]:
    with service.db.connect() as connection:
        return listing.flags(connection, include_closed=True)


def tasks(service: Service) -> list[dict[str, Any]]:
    with service.db.connect() as connection:
        return listing.tasks(connection, include_closed=True)


def events(service: Service) -> list[Any]:
    with service.db.connect() as connection:
        return list(connection.execute(select(repo.events).order_by(repo.events.c.id)))


def audit_records(service: Service, action: str | None = None) -> list[dict[str, Any]]:
    with service.db.connect() as connection:
        query = select(audit._audit).order_by(audit._audit.c.seq)
        if action:
            query = query.where(audit._audit.c.action == action)
        return [dict(row._mapping) for row in connection.execute(query)]


def without_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        ({key: value for key, value in item.items() if key != "id"} for item in items),
        key=lambda item: json.dumps(item, sort_keys=True),
    )


def task_history(service: Service, task_ref: str) -> list[Any]:
    with service.db.connect() as connection:
        return repo.task_history_of(connection, int(task_ref[1:]))


def flag_row(service: Service, flag_ref: str) -> Any:
    with service.db.connect() as connection:
        return repo.flag_by_id(connection, int(flag_ref[1:]))


# ---- idempotency ----


def test_a_repeated_event_id_is_a_duplicate_and_ignored_whatever_its_content(service: Service) -> None:
    assert send(service, event("e1")) == "accepted"
    before = (flags(service), tasks(service), len(audit_records(service)))
    resent = event(
        "e1",
        appointment_id="a2",
        attendance="attended",
        service="audiology",
        nhs_number=INFANT,
        date_of_birth="2025-11-20",
        recorded_at="2026-03-05T11:00:00+00:00",
    )

    assert send(service, resent) == "duplicate"

    assert [(row.event_id, row.appointment_id, row.attendance) for row in events(service)] == [
        ("e1", "a1", "did-not-attend")
    ]
    assert (flags(service), tasks(service), len(audit_records(service))) == before


def test_the_same_event_id_from_another_source_is_a_different_event(service: Service) -> None:
    assert send(service, event("e1")) == "accepted"
    assert send(service, event("e1", source="community-ehr")) == "accepted"
    assert len(events(service)) == 2


# ---- supersession and stale events ----


def test_a_later_recorded_event_for_the_same_appointment_supersedes_the_earlier_outcome(
    service: Service,
) -> None:
    send(service, event("e1"))

    outcome = send(service, event("e2", attendance="attended", recorded_at="2026-03-02T12:00:00+00:00"))

    assert outcome == "superseded"
    assert [(row.event_id, row.state) for row in events(service)] == [("e1", "superseded"), ("e2", "current")]
    assert {task["status"] for task in tasks(service)} == {"cancelled"}
    evaluated = [record["payload"]["event_id"] for record in audit_records(service, "evaluation")]
    assert evaluated == ["e1", "e2"]


def test_an_event_recorded_strictly_earlier_than_the_current_outcome_is_stale_and_never_evaluated(
    service: Service,
) -> None:
    send(service, event("e1"))
    before = (flags(service), tasks(service))

    outcome = send(service, event("e2", attendance="attended", recorded_at="2026-03-02T10:59:59+00:00"))

    assert outcome == "stale"
    assert [(row.event_id, row.state) for row in events(service)] == [("e1", "current"), ("e2", "stale")]
    assert (flags(service), tasks(service)) == before
    assert [record["payload"]["event_id"] for record in audit_records(service, "evaluation")] == ["e1"]
    assert [record["subject"][0] for record in audit_records(service, "event_stale")] == [f"E{events(service)[1].id}"]


@pytest.mark.parametrize(
    "recorded_at",
    ["2026-03-02T11:00:00+00:00", "2026-03-02T12:00:00+01:00"],
    ids=["equal", "equal-instant-other-offset"],
)
def test_on_a_tie_the_event_received_later_supersedes(service: Service, recorded_at: str) -> None:
    send(service, event("e1"))

    assert send(service, event("e2", attendance="attended", recorded_at=recorded_at)) == "superseded"

    assert [(row.event_id, row.state) for row in events(service)] == [("e1", "superseded"), ("e2", "current")]
    assert {task["status"] for task in tasks(service)} == {"cancelled"}


def test_a_booking_never_undoes_an_outcome_whatever_its_recorded_time(service: Service) -> None:
    send(service, event("e1"))
    before = tasks(service)

    later = event("e2", attendance="booked", recorded_at="2026-03-03T09:00:00+00:00")
    assert send(service, later) == "stale"

    assert [(row.event_id, row.state) for row in events(service)] == [("e1", "current"), ("e2", "stale")]
    assert tasks(service) == before
    with service.db.connect() as connection:
        (item,) = listing.rejects(connection)
        assert listing.count_rejects(connection) == 0
    assert (item["kind"], item["event_id"], item["field"]) == ("stale-outcome", "e2", "attendance")
    assert "a booking never replaces" in item["reason"] and "did-not-attend" in item["reason"]


def test_an_outcome_always_replaces_a_stored_booking_whatever_the_recorded_times(service: Service) -> None:
    send(service, event("e1", attendance="booked", recorded_at="2026-03-02T12:00:00+00:00"))

    # The no-show stamped before its booking (a feed's clock) is never lost behind it.
    assert send(service, event("e2", recorded_at="2026-03-02T11:00:00+00:00")) == "superseded"

    assert [(row.event_id, row.state) for row in events(service)] == [("e1", "superseded"), ("e2", "current")]
    assert {task["code"] for task in tasks(service)} >= {"reoffer-appointment", "letter-to-parent"}


def test_without_recorded_times_the_event_stored_later_wins_not_a_replica_clock(
    service: Service, clock: FixedClock
) -> None:
    send(service, event("e1", recorded_at=None))
    clock.now = clock.now.replace(minute=0)  # a second replica whose clock is an hour behind the first's

    assert send(service, event("e2", attendance="attended", recorded_at=None)) == "superseded"

    assert [(row.event_id, row.state) for row in events(service)] == [("e1", "superseded"), ("e2", "current")]


def test_entered_in_error_stays_the_latest_event_so_an_older_event_after_it_is_stale(service: Service) -> None:
    send(service, event("e1"))
    send(service, event("e2", attendance="entered-in-error", recorded_at="2026-03-02T12:00:00+00:00"))
    assert {task["status"] for task in tasks(service)} == {"cancelled"}

    # The miss again, sent late with its first recorded time: stale, it raises nothing again.
    assert send(service, event("e3", recorded_at="2026-03-02T11:30:00+00:00")) == "stale"
    assert {task["status"] for task in tasks(service)} == {"cancelled"}
    with service.db.connect() as connection:
        (item,) = listing.rejects(connection)
    assert (item["kind"], item["event_id"], item["field"]) == ("stale-outcome", "e3", "recorded_at")

    # At the withdrawal's own time it starts the appointment afresh.
    assert send(service, event("e4", recorded_at="2026-03-02T12:00:00+00:00")) == "superseded"
    assert "requested" in {task["status"] for task in tasks(service)}


def test_a_stale_event_agreeing_with_what_is_stored_is_not_listed(service: Service) -> None:
    send(service, event("e1"))

    assert send(service, event("e2", attendance="late-not-seen", recorded_at="2026-03-02T10:00:00+00:00")) == "stale"
    assert send(service, event("e3", recorded_at="2026-03-02T10:00:00+00:00")) == "stale"

    with service.db.connect() as connection:
        assert [(item["kind"], item["event_id"]) for item in listing.rejects(connection)] == [("stale-outcome", "e2")]


def test_a_stale_outcome_keeps_its_event_id_reserved(service: Service) -> None:
    send(service, event("e1"))
    send(service, event("e2", attendance="attended", recorded_at="2026-03-02T10:00:00+00:00"))

    # The same event id sent again, now later than what is stored: a duplicate, unlike a rejected event.
    assert send(service, event("e2", attendance="attended", recorded_at="2026-03-02T13:00:00+00:00")) == "duplicate"

    with service.db.connect() as connection:
        assert len(listing.rejects(connection)) == 1
    assert [row.event_id for row in events(service)] == ["e1", "e2"]


def test_a_stale_event_is_explained_to_the_sender(service: Service) -> None:
    send(service, event("e1"))
    data = event("e2", attendance="attended", recorded_at="2026-03-02T10:00:00+00:00")

    status, note = service.ingest_one_explained(RawItem(1, json.dumps(data), data), origin="test")

    assert status == "stale"
    assert note is not None and note.field == "recorded_at"
    assert note.reason.startswith("stored as stale, not evaluated: attended recorded before the stored did-not-attend")


def test_a_stale_miss_is_not_counted_by_later_evaluations(service: Service) -> None:
    send(service, event("e1", appointment_id="a1", attendance="attended"))
    send(
        service,
        event("e2", appointment_id="a1", attendance="did-not-attend", recorded_at="2026-03-02T10:30:00+00:00"),
    )  # stale

    send(
        service,
        event(
            "e3",
            appointment_id="a2",
            appointment_at="2026-03-09T10:00:00+00:00",
            recorded_at="2026-03-09T11:00:00+00:00",
        ),
    )

    (evaluation,) = [r for r in audit_records(service, "evaluation") if r["payload"]["event_id"] == "e3"]
    assert evaluation["payload"]["facts"]["missed_all_services_90d"] == 1
    assert "repeat-wnb" not in {flag["code"] for flag in flags(service)}


def test_within_one_file_a_later_line_for_the_same_appointment_supersedes_an_earlier_line(
    service: Service,
) -> None:
    feed = [event("e1"), event("e2", attendance="attended", recorded_at="2026-03-02T12:00:00+00:00")]

    counts = service.ingest([RawItem(n, json.dumps(e), e) for n, e in enumerate(feed, 1)], origin="file")

    assert counts == {"accepted": 1, "superseded": 1}
    assert [(row.event_id, row.state) for row in events(service)] == [("e1", "superseded"), ("e2", "current")]
    assert tasks(service) and {task["status"] for task in tasks(service)} == {"cancelled"}


def test_within_one_file_each_evaluation_sees_the_lines_before_it(service: Service) -> None:
    feed = [
        event("e1", appointment_id="a1"),
        event(
            "e2",
            appointment_id="a2",
            appointment_at="2026-03-09T10:00:00+00:00",
            recorded_at="2026-03-09T11:00:00+00:00",
        ),
        event(
            "e1",
            appointment_id="a3",
            appointment_at="2026-03-16T10:00:00+00:00",
            recorded_at="2026-03-16T11:00:00+00:00",
        ),
    ]

    counts = service.ingest([RawItem(n, json.dumps(e), e) for n, e in enumerate(feed, 1)], origin="file")

    assert counts == {"accepted": 2, "duplicate": 1}
    (second,) = [r for r in audit_records(service, "evaluation") if r["payload"]["event_id"] == "e2"]
    assert second["payload"]["facts"]["missed_in_service_365d"] == 2
    assert [flag["code"] for flag in flags(service)] == ["repeat-wnb"]


# ---- corrections: withdrawing only what one appointment alone supported ----


def _infant_missed_two_services(service: Service) -> None:
    """An infant (WNB-03) misses audiology (a1), then community paediatrics (a2): a2 also makes WNB-06 fire."""
    infant = {"nhs_number": INFANT, "date_of_birth": "2025-11-20"}
    send(
        service,
        event(
            "e1",
            **infant,
            service="audiology",
            appointment_id="a1",
            appointment_at="2026-03-02T10:00:00+00:00",
            recorded_at="2026-03-02T11:00:00+00:00",
        ),
    )
    send(
        service,
        event(
            "e2",
            **infant,
            service="community-paediatrics",
            appointment_id="a2",
            appointment_at="2026-03-09T10:00:00+00:00",
            recorded_at="2026-03-09T11:00:00+00:00",
        ),
    )


def test_the_two_misses_raise_a_shared_infant_flag_and_a_repeat_flag_of_the_second_alone(
    service: Service,
) -> None:
    _infant_missed_two_services(service)

    by_code = {flag["code"]: flag for flag in flags(service)}
    assert by_code["infant-wnb"]["event_ids"] == ["pas/e1", "pas/e2"]
    assert by_code["repeat-wnb"]["event_ids"] == ["pas/e2"]
    assert {task["service"] for task in tasks(service)} == {"audiology", "community-paediatrics"}


CORRECTIONS = [
    "entered-in-error",
    "cancelled-by-patient",
    "cancelled-by-provider",
    "attended",
    "attended-late",
]


def test_every_link_and_effect_names_the_evaluation_that_made_it_in_one_chunk_and_in_a_sweep(
    service: Service,
) -> None:
    """An evaluation's number is given when its transaction's records are chained, at the end: links written
    at the chunk's end, links written before a withdrawal in the same chunk, and a sweep's links all get it."""
    infant = {"nhs_number": INFANT, "date_of_birth": "2025-11-20"}
    feed = [
        event("e0", appointment_id="c1"),
        event("e1", **infant, service="audiology", appointment_id="a1"),
        event("e2", **infant, appointment_id="a2", appointment_at="2026-03-09T10:00:00+00:00"),
        event("e3", **infant, appointment_id="a2", attendance="attended", recorded_at="2026-03-10T09:00:00+00:00"),
    ]
    counts = service.ingest([RawItem(n, json.dumps(data), data) for n, data in enumerate(feed)], origin="test")
    assert counts == {"accepted": 3, "superseded": 1}
    assert service.sweep(datetime(2026, 4, 15, 9, tzinfo=UTC))["follow_ups_judged"] >= 1
    records = {record["seq"]: record for record in audit_records(service)}
    with service.db.connect() as connection:
        links = list(connection.execute(select(repo.links)))
    assert len(links) >= 5 and {link.active for link in links} == {True, False}
    for link in links:
        evaluation = records[link.audit_seq]
        assert (evaluation["action"], evaluation["subject"][0]) == ("evaluation", f"E{link.event_pk}")
    raised = [record for record in records.values() if "evaluation" in record["payload"]]
    assert {record["action"] for record in raised} >= {"flag_raised", "task_created"}
    for record in raised:
        evaluation = records[record["payload"]["evaluation"]]
        assert evaluation["action"] == "evaluation" and evaluation["seq"] < record["seq"]
        assert evaluation["subject"][1] == record["subject"][1]  # the same child


@pytest.mark.parametrize("attendance", CORRECTIONS)
def test_a_miss_corrected_away_withdraws_what_it_alone_supported_with_the_reason(
    service: Service, attendance: str
) -> None:
    _infant_missed_two_services(service)

    outcome = send(
        service,
        event(
            "e3",
            nhs_number=INFANT,
            date_of_birth="2025-11-20",
            service="community-paediatrics",
            appointment_id="a2",
            appointment_at="2026-03-09T10:00:00+00:00",
            attendance=attendance,
            recorded_at="2026-03-10T09:00:00+00:00",
        ),
    )

    assert outcome == "superseded"
    by_code = {flag["code"]: flag for flag in flags(service)}
    assert by_code["repeat-wnb"]["status"] == "entered-in-error"
    reason = flag_row(service, by_code["repeat-wnb"]["id"]).status_reason
    assert "a2" in reason and attendance in reason
    second = [task for task in tasks(service) if task["service"] == "community-paediatrics"]
    assert second and {task["status"] for task in second} == {"cancelled"}
    for task in second:
        last = task_history(service, task["id"])[-1]
        assert (last.action, last.status) == ("cancelled", "cancelled")
        assert "a2" in last.note and attendance in last.note


@pytest.mark.parametrize("attendance", CORRECTIONS)
def test_a_miss_corrected_away_keeps_what_another_appointment_also_supports(service: Service, attendance: str) -> None:
    _infant_missed_two_services(service)
    first_tasks = [task for task in tasks(service) if task["service"] == "audiology"]

    send(
        service,
        event(
            "e3",
            nhs_number=INFANT,
            date_of_birth="2025-11-20",
            service="community-paediatrics",
            appointment_id="a2",
            appointment_at="2026-03-09T10:00:00+00:00",
            attendance=attendance,
            recorded_at="2026-03-10T09:00:00+00:00",
        ),
    )

    by_code = {flag["code"]: flag for flag in flags(service)}
    assert by_code["infant-wnb"]["status"] == "active"
    assert flag_row(service, by_code["infant-wnb"]["id"]).status_reason is None
    assert [task for task in tasks(service) if task["service"] == "audiology"] == first_tasks
    assert {task["status"] for task in first_tasks} == {"requested"}


def test_a_task_linked_to_two_appointments_survives_the_withdrawal_of_one_with_its_due_time(
    service: Service,
) -> None:
    send(service, event("e1", appointment_id="a1"))
    send(
        service,
        event(
            "e2",
            appointment_id="a2",
            appointment_at="2026-03-09T10:00:00+00:00",
            recorded_at="2026-03-09T11:00:00+00:00",
        ),
    )
    shared = [task for task in tasks(service) if task["event_ids"] == ["pas/e1", "pas/e2"]]
    assert {task["code"] for task in shared} >= {"reoffer-appointment", "letter-to-parent", "inform-gp"}

    send(
        service,
        event("e3", appointment_id="a1", attendance="entered-in-error", recorded_at="2026-03-10T09:00:00+00:00"),
    )

    after = {task["id"]: task for task in tasks(service)}
    for task in shared:
        assert after[task["id"]]["status"] == "requested"
        assert after[task["id"]]["due_at"] == task["due_at"]
        assert after[task["id"]]["escalation_level"] == task["escalation_level"]


def test_an_entered_in_error_appointment_is_no_longer_counted(service: Service) -> None:
    send(service, event("e1", appointment_id="a1"))
    send(
        service,
        event("e2", appointment_id="a1", attendance="entered-in-error", recorded_at="2026-03-03T09:00:00+00:00"),
    )

    send(
        service,
        event(
            "e3",
            appointment_id="a2",
            appointment_at="2026-03-09T10:00:00+00:00",
            recorded_at="2026-03-09T11:00:00+00:00",
        ),
    )

    (evaluation,) = [r for r in audit_records(service, "evaluation") if r["payload"]["event_id"] == "e3"]
    assert evaluation["payload"]["facts"]["missed_all_services_90d"] == 1
    assert "repeat-wnb" not in {flag["code"] for flag in flags(service)}


def test_correcting_a_patient_cancellation_withdraws_nothing(service: Service) -> None:
    for number in range(1, 4):
        send(
            service,
            event(
                f"c{number}",
                appointment_id=f"c{number}",
                attendance="cancelled-by-patient",
                appointment_at=f"2026-03-0{number + 1}T10:00:00+00:00",
                recorded_at=f"2026-03-0{number}T10:00:00+00:00",
            ),
        )
    (pattern,) = flags(service)
    assert pattern["code"] == "cancellation-pattern"

    send(
        service,
        event(
            "c4",
            appointment_id="c3",
            attendance="attended",
            appointment_at="2026-03-04T10:00:00+00:00",
            recorded_at="2026-03-04T11:00:00+00:00",
        ),
    )

    assert [flag["status"] for flag in flags(service)] == ["active"]
    assert {task["status"] for task in tasks(service)} == {"requested"}


# ---- rejects ----


def test_a_rejected_event_does_not_reserve_its_event_id_so_the_corrected_resend_is_accepted(
    service: Service,
) -> None:
    assert send(service, event("e1", attendance="9")) == "rejected"
    assert events(service) == []
    assert tasks(service) == []

    assert send(service, event("e1", attendance="3")) == "accepted"

    assert [(row.event_id, row.attendance) for row in events(service)] == [("e1", "did-not-attend")]
    assert tasks(service)


def test_a_rejected_event_does_not_supersede_the_appointment_outcome(service: Service) -> None:
    send(service, event("e1"))

    assert (
        send(
            service,
            event("e2", attendance="attended", nhs_number="9990000019", recorded_at="2026-03-02T12:00:00+00:00"),
        )
        == "rejected"
    )

    assert [(row.event_id, row.state) for row in events(service)] == [("e1", "current")]
    assert {task["status"] for task in tasks(service)} == {"requested"}


def test_a_file_ingested_again_queues_its_bad_line_once_and_counts_it_twice(
    service: Service, clock: FixedClock, tmp_path: Path
) -> None:
    feed = tmp_path / "pas.ndjson"
    bad = json.dumps(event("e1", attendance="9"))
    feed.write_text(json.dumps(event("e0", appointment_id="a0")) + "\n" + bad + "\n")
    first_at = clock.now
    assert service.ingest(read_file(feed), origin=feed.name) == {"accepted": 1, "rejected": 1}
    clock.now = first_at.replace(hour=13)
    feed.write_text(bad + "\n")  # sent again, at another line

    assert service.ingest(read_file(feed), origin=feed.name) == {"rejected": 1}

    (reject,) = rejects(service)
    assert (reject["event_id"], reject["line"], reject["raw"]) == ("e1", 2, bad)
    assert reject["received_count"] == 2
    assert (reject["received_at"], reject["last_received_at"]) == (first_at.isoformat(), clock.now.isoformat())
    assert [record["subject"] for record in audit_records(service, "event_rejected")] == [[reject["id"]]]
    (again,) = audit_records(service, "reject_repeated")
    assert (again["subject"], again["payload"]["times"], again["payload"]["line"]) == ([reject["id"]], 2, 1)


def test_the_same_bad_row_from_another_origin_is_another_reject(service: Service) -> None:
    bad = event("e1", attendance="9")
    for origin in ("pas.ndjson", "api:pas"):
        service.ingest_one(RawItem(1, json.dumps(bad), bad), origin=origin)
    assert [(reject["origin"], reject["received_count"]) for reject in rejects(service)] == [
        ("pas.ndjson", 1),
        ("api:pas", 1),
    ]


def test_a_handled_reject_whose_row_arrives_again_is_back_in_the_queue(service: Service) -> None:
    bad = event("e1", attendance="9")
    assert send(service, bad) == "rejected"
    with service.db.begin() as connection:
        connection.execute(repo.rejects.update().values(handled_at=service.clock(), handled_by="dq.officer"))
    with service.db.connect() as connection:
        assert listing.rejects(connection) == []

    assert send(service, bad) == "rejected"

    with service.db.connect() as connection:
        (reopened,) = listing.rejects(connection)
    assert reopened["received_count"] == 2


# ---- no date of birth ----


def test_without_a_date_of_birth_only_wnb_15_runs_and_the_evaluation_is_audited(service: Service) -> None:
    outcome = send(service, event("e1", date_of_birth=None))

    assert outcome == "accepted"
    assert flags(service) == []
    assert [(task["code"], task["owner_role"], task["rule_ids"]) for task in tasks(service)] == [
        ("confirm-date-of-birth", "booking-team", ["WNB-15"])
    ]
    (evaluation,) = audit_records(service, "evaluation")
    assert evaluation["subject"] == [f"E{events(service)[0].id}", CHILD]
    assert evaluation["payload"]["fired"] == ["WNB-15"]
    assert evaluation["payload"]["facts"]["age_known"] is False
    assert "is_child" not in evaluation["payload"]["facts"]


def test_a_miss_of_unknown_age_is_matched_alike_in_the_second_process(service: Service) -> None:
    # From the second chunk on, the rules run in the matcher process: the document without age facts too.
    feed = [
        event("e1"),
        event("e2", date_of_birth=None, nhs_number=INFANT, appointment_id="b1"),
        event("e3", date_of_birth=None, nhs_number=OTHER_CHILD, appointment_id="c1"),
    ]

    service.ingest([RawItem(n, json.dumps(e), e) for n, e in enumerate(feed, 1)], origin="file", chunk=1)

    unknown = [(task["nhs_number"], task["code"]) for task in tasks(service) if task["nhs_number"] != CHILD]
    assert sorted(unknown) == [(INFANT, "confirm-date-of-birth"), (OTHER_CHILD, "confirm-date-of-birth")]


def test_wnb_01_on_an_unknown_age_is_explained_with_the_age_as_unknown(service: Service) -> None:
    plan = {"nhs_number": CHILD, "statuses": [{"kind": "looked-after", "start": "2025-01-01"}]}
    service.import_context([RawItem(1, json.dumps(plan), plan)], origin="ctx")
    send(service, event("e1", date_of_birth=None))

    (flag,) = flags(service)
    with service.db.connect() as connection:
        lines = explain_item(connection, flag["id"], service.ruleset)

    assert flag["rule_ids"] == ["WNB-01"]
    assert "    WNB-01 [no ] is_child = true  (was unknown)" in lines
    assert "    WNB-01 [yes] age_known = false  (was false)" in lines
    sentence = next(line for line in lines if line.startswith("    The person (NHS "))
    assert sentence.endswith(
        "nobody knows the date of birth; and a child-protection plan or looked-after status "
        "counts for this appointment."
    )


def test_a_miss_of_unknown_age_waits_for_no_follow_up_deadline(service: Service) -> None:
    send(service, event("e1", date_of_birth=None))
    service.import_context([RawItem(1, "", {"nhs_number": CHILD, "date_of_birth": "2019-05-01"})], origin="ctx")

    counts = service.sweep(datetime(2026, 6, 1, tzinfo=UTC))

    assert counts["follow_ups_judged"] == 0
    assert [task["code"] for task in tasks(service)] == ["confirm-date-of-birth"]


def test_the_date_of_birth_comes_from_the_context_record_when_the_event_has_none(service: Service) -> None:
    service.import_context([RawItem(1, "", {"nhs_number": CHILD, "date_of_birth": "2019-05-01"})], origin="ctx")

    send(service, event("e1", date_of_birth=None))

    assert tasks(service)
    (evaluation,) = audit_records(service, "evaluation")
    assert evaluation["payload"]["facts"]["age_years"] == 6


# ---- a crash in the middle of a batch ----

FEED = [
    event("f1"),
    event(
        "f2",
        nhs_number=INFANT,
        date_of_birth="2025-11-20",
        service="audiology",
        appointment_id="b1",
        appointment_at="2026-03-03T09:30:00+00:00",
        recorded_at="2026-03-03T10:00:00+00:00",
    ),
    event(
        "f3",
        appointment_id="a2",
        appointment_at="2026-03-09T10:00:00+00:00",
        recorded_at="2026-03-09T11:00:00+00:00",
    ),
    event(
        "f4",
        nhs_number=OTHER_CHILD,
        date_of_birth="2014-02-10",
        service="paediatric-diabetes",
        appointment_id="d1",
        priority="urgent",
        appointment_at="2026-03-04T14:00:00+00:00",
        recorded_at="2026-03-04T16:00:00+00:00",
    ),
    event("f5", appointment_id="a1", attendance="attended", recorded_at="2026-03-10T09:00:00+00:00"),
    event(
        "f6",
        nhs_number=INFANT,
        date_of_birth="2025-11-20",
        service="audiology",
        appointment_id="b2",
        appointment_at="2026-03-10T09:30:00+00:00",
        recorded_at="2026-03-10T10:00:00+00:00",
    ),
    event(
        "f7",
        nhs_number=OTHER_CHILD,
        date_of_birth="2014-02-10",
        service="paediatric-diabetes",
        appointment_id="d2",
        priority="2",
        appointment_at="2026-03-11T14:00:00+00:00",
        recorded_at="2026-03-11T16:00:00+00:00",
    ),
    event(
        "f8",
        appointment_id="a3",
        service="audiology",
        appointment_at="2026-03-12T10:00:00+00:00",
        recorded_at="2026-03-12T11:00:00+00:00",
    ),
]


class Crash(Exception):
    pass


def crash_after(items: Iterable[RawItem], count: int) -> Iterator[RawItem]:
    for number, item in enumerate(items):
        if number == count:
            raise Crash(f"the feed connection dropped after {count} items")
        yield item


def snapshot(service: Service) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return without_ids(flags(service)), without_ids(tasks(service))


@pytest.mark.parametrize(("chunk", "crash_at"), [(1, 5), (3, 5), (3, 6), (250, 4)])
def test_a_crash_mid_batch_then_a_full_resend_loses_and_duplicates_nothing(
    service: Service, ruleset: Ruleset, clock: FixedClock, tmp_path: Path, chunk: int, crash_at: int
) -> None:
    feed = tmp_path / "feed.ndjson"
    feed.write_text("".join(json.dumps(item) + "\n" for item in FEED), encoding="utf-8")

    with pytest.raises(Crash):
        service.ingest(crash_after(read_file(feed), crash_at), origin=feed.name, chunk=chunk)
    committed = len(events(service))
    assert committed == (crash_at // chunk) * chunk
    counts = service.ingest(read_file(feed), origin=feed.name, chunk=chunk)

    assert counts["duplicate"] == committed
    per_event = [(row.source, row.event_id) for row in events(service)]
    assert sorted(per_event) == sorted(("pas", item["event_id"]) for item in FEED)
    clean_db = open_database(f"sqlite:///{tmp_path / 'clean.db'}")
    try:
        clean = Service(clean_db, ruleset, clock)
        clean.ingest(read_file(feed), origin=feed.name)
        assert snapshot(service) == snapshot(clean)
    finally:
        clean_db.dispose()
    with service.db.connect() as connection:
        assert audit.verify(connection).ok
        evaluations = connection.execute(
            select(func.count()).select_from(audit._audit).where(audit._audit.c.action == "evaluation")
        ).scalar_one()
    assert evaluations == len(FEED)
