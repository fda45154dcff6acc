"""Several writers on one PostgreSQL database, as replicas are: one set of effects for one event, one audit
chain, one sweep at a time, outbox rows claimed once; a lost database answers 503 and the service recovers."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from tests.conftest import DEFAULT_RULES, ROOT, FixedClock
from tests.factories import run_wnb
from tests.server import free_port
from tests.service.test_service import event
from wnb.api import create_app
from wnb.core.items import RawItem
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.ingest import inbox
from wnb.notify import enqueue, mark_uncertain_after_restart, parse_addresses
from wnb.notify.outbox import _claim
from wnb.service import Service
from wnb.store import audit, concurrency
from wnb.store.accounts import create_api_key
from wnb.store.db import writing

STORES = ("postgres",)  # the session's PostgreSQL database, emptied before each test (conftest.py)
WNB = Path(sys.executable).parent / "wnb"
CHILDREN = ["9990000018", "9990000026", "9990000034", "9990000042", "9990000050", "9990000069"]


@pytest.fixture
def replicas(db_url: str, ruleset: Ruleset, clock: FixedClock) -> Iterator[list[Service]]:
    """Two services on one database, each with its own engine (connection pool), as two replicas have."""
    services = [Service(open_database(db_url), ruleset, clock) for _ in range(2)]
    yield services
    for service in services:
        service.db.dispose()


def _together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls at once on threads (released together); their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _send(service: Service, data: dict[str, Any]) -> str:
    return service.ingest_one(RawItem(1, json.dumps(data), data), origin="test")


def _count(service: Service, sql: str) -> int:
    with service.db.connect() as connection:
        return int(connection.exec_driver_sql(sql).scalar_one())


def test_the_same_event_at_two_replicas_at_once_is_stored_and_evaluated_once(replicas: list[Service]) -> None:
    for attempt in range(5):
        data = event(f"e{attempt}", appointment_id=f"a{attempt}")
        statuses = _together([lambda service=service, data=data: _send(service, data) for service in replicas])
        assert sorted(statuses) == ["accepted", "duplicate"]
    assert _count(replicas[0], "SELECT count(*) FROM event") == 5
    assert _count(replicas[0], "SELECT count(*) FROM audit WHERE action = 'evaluation'") == 5


def test_the_same_bad_row_at_two_replicas_at_once_is_one_reject_received_twice(replicas: list[Service]) -> None:
    for attempt in range(5):
        bad = event(f"bad{attempt}", attendance="9")
        statuses = _together([lambda service=service, bad=bad: _send(service, bad) for service in replicas])
        assert statuses == ["rejected", "rejected"]
    assert _count(replicas[0], "SELECT count(*) FROM reject") == 5
    assert _count(replicas[0], "SELECT min(received_count) FROM reject") == 2
    with replicas[0].db.connect() as connection:
        assert audit.verify(connection).ok


def test_concurrent_writers_for_different_children_keep_one_valid_audit_chain(replicas: list[Service]) -> None:
    def feed(service: Service, offset: int) -> None:
        for number in range(12):
            child = CHILDREN[(number + offset) % len(CHILDREN)]
            _send(service, event(f"e{offset}-{number}", nhs_number=child, appointment_id=f"a{offset}-{number}"))

    _together([lambda service=service, offset=offset: feed(service, offset) for offset, service in enumerate(replicas)])
    with replicas[0].db.connect() as connection:
        verification = audit.verify(connection)
    assert verification.ok, verification.problem
    assert _count(replicas[0], "SELECT count(*) FROM event") == 24


class _PausingClock:
    """The clock of a replica whose chunk stops after its first item: the second read waits (at most a minute)
    until another replica says it committed, and notes whether it did."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.reads = 0
        self.paused = threading.Event()
        self.other_committed = threading.Event()
        self.saw_other_commit: bool | None = None

    def __call__(self) -> datetime:
        self.reads += 1
        if self.reads == 2:
            self.paused.set()
            self.saw_other_commit = self.other_committed.wait(60)
        return self.now


def test_an_evaluation_under_way_lets_another_replica_evaluate_and_commit_and_the_chain_stays_one(
    db_url: str, ruleset: Ruleset, clock: FixedClock, replicas: list[Service]
) -> None:
    """The audit chain's head is taken only to chain a transaction's records at its end, so a chunk that is
    still evaluating (its first child's records appended, not chained) holds up no other replica."""
    pausing = _PausingClock(clock.now)
    slow = Service(open_database(db_url), ruleset, pausing)
    first, second = (
        RawItem(n, json.dumps(data), data)
        for n, data in enumerate(
            [
                event("s1", nhs_number=CHILDREN[0], appointment_id="s1"),
                event("s2", nhs_number=CHILDREN[0], appointment_id="s2", appointment_at="2026-03-09T10:00:00+00:00"),
            ]
        )
    )
    other: dict[str, str] = {}

    def evaluate_another_child() -> None:
        assert pausing.paused.wait(60)
        other["status"] = _send(replicas[1], event("o1", nhs_number=CHILDREN[1], appointment_id="o1"))
        pausing.other_committed.set()

    helper = threading.Thread(target=evaluate_another_child)
    helper.start()
    try:
        counts = slow.ingest([first, second], origin="test")
    finally:
        pausing.other_committed.set()
        helper.join(timeout=120)
        slow.db.dispose()
    assert pausing.saw_other_commit, "the other replica waited for the chunk under way to commit"
    assert (counts, other) == ({"accepted": 2}, {"status": "accepted"})
    with replicas[0].db.connect() as connection:
        verification = audit.verify(connection)
        records = [json.loads(line) for line in audit.export_lines(connection)]
        links = connection.exec_driver_sql("SELECT audit_seq, event_pk FROM link").all()
    assert verification.ok, verification.problem
    evaluations = [record for record in records if record["action"] == "evaluation"]
    assert [record["subject"][1] for record in evaluations] == [CHILDREN[1], CHILDREN[0], CHILDREN[0]]
    by_seq = {record["seq"]: record for record in records}
    assert links and all(by_seq[seq]["subject"][0] == f"E{event_pk}" for seq, event_pk in links)


def test_only_one_replica_sweeps_at_a_time(replicas: list[Service]) -> None:
    with writing(replicas[0].db) as holder:
        assert concurrency.try_sweep_lock(holder)
        counts = replicas[1].sweep(datetime(2026, 4, 1, tzinfo=UTC))
    assert counts == {"skipped_another_replica_sweeping": 1}


def test_wnb_sweep_says_it_skipped_while_another_replica_sweeps(db_url: str, replicas: list[Service]) -> None:
    env = {"WNB_DATABASE_URL": db_url, "WNB_RULES_DIR": str(DEFAULT_RULES)}
    with writing(replicas[0].db) as holder:
        assert concurrency.try_sweep_lock(holder)
        done = run_wnb(ROOT, "sweep", env=env)
    assert done.returncode == 0, done.stderr
    assert "skipped, another replica is sweeping now" in done.stdout


def test_a_sweep_waits_for_an_evaluation_under_way_to_commit(replicas: list[Service]) -> None:
    swept = threading.Event()

    def sweep() -> None:
        replicas[1].sweep(datetime(2026, 4, 1, tzinfo=UTC))
        swept.set()

    with writing(replicas[0].db) as evaluating:
        concurrency.lock_people(evaluating, [CHILDREN[0]])
        sweeper = threading.Thread(target=sweep)
        sweeper.start()
        assert not swept.wait(1.0), "the sweep ran while an evaluation held its person's lock"
    sweeper.join(timeout=30)
    assert swept.is_set()


def test_two_replicas_polling_one_inbox_ingest_a_file_once_and_neither_fails(
    replicas: list[Service], tmp_path: Path
) -> None:
    lines = [json.dumps(event(f"e{n}", appointment_id=f"a{n}", nhs_number=CHILDREN[n % 6])) for n in range(150)]
    feed = tmp_path / "pas.ndjson"
    feed.write_text("\n".join(lines) + "\n")
    os.utime(feed, (time.time() - 60, time.time() - 60))
    polled = _together([lambda service=service: inbox.poll(service, tmp_path, 0) for service in replicas])
    outcomes = [item.outcome for results in polled for item in results]
    assert outcomes == ["processed"]
    assert len(list((tmp_path / "processed").iterdir())) == 1
    assert _count(replicas[0], "SELECT count(*) FROM event") == 150


def test_two_deliverers_never_claim_the_same_outbox_row(replicas: list[Service]) -> None:
    addresses = parse_addresses("safeguarding-nurse=sg@trust.example")
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    with writing(replicas[0].db) as connection:
        for number in range(200):
            enqueue(connection, addresses, "safeguarding-nurse", f"flag:{number}", "subject", "body", now)

    def claim_all(service: Service) -> list[int]:
        taken = []
        while (row := _claim(service.db, now, ["email"])) is not None:
            taken.append(row.id)
        return taken

    claimed = _together([lambda service=service: claim_all(service) for service in replicas])
    ids = [row_id for rows in claimed for row_id in rows]
    assert len(ids) == len(set(ids)) == 200


def test_a_restarting_replica_leaves_rows_another_is_sending_and_marks_long_stuck_ones(
    replicas: list[Service],
) -> None:
    addresses = parse_addresses("safeguarding-nurse=sg@trust.example")
    now = datetime.now(UTC)
    with writing(replicas[0].db) as connection:
        for number in range(2):
            enqueue(connection, addresses, "safeguarding-nurse", f"flag:{number}", "subject", "body", now)
    _claim(replicas[0].db, now, ["email"])  # both being sent by the first replica now
    _claim(replicas[0].db, now, ["email"])
    with writing(replicas[0].db) as connection:
        connection.exec_driver_sql("UPDATE outbox SET claimed_at = claimed_at - interval '1 hour' WHERE id = 1")
    assert mark_uncertain_after_restart(replicas[1].db) == 1
    with replicas[0].db.connect() as connection:
        statuses = connection.exec_driver_sql("SELECT status FROM outbox ORDER BY id").scalars().all()
    assert statuses == ["uncertain", "sending"]


def test_a_losing_transaction_is_run_again_and_a_lost_connection_too(replicas: list[Service]) -> None:
    failures = [psycopg.errors.UniqueViolation("lost a race"), psycopg.OperationalError("server closed")]

    def work() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    assert concurrency.retrying(replicas[0].db, work) == "done"


def _terminate(url: str, allow: bool | None = None) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as admin:
        if allow is not None:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )


def test_a_lost_database_answers_503_with_retry_after_and_the_replica_recovers(db_url: str, ruleset: Ruleset) -> None:
    db = open_database(db_url)
    key = create_api_key(db, "clinic-system", "pas", sources=("pas", "community-ehr"), context=True)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(Service(db, ruleset)), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=30) as client:
            assert client.post("/v1/attendance-events", json=event("e1")).status_code == 200
            _terminate(db_url)  # every pooled connection dropped, as by a database restart
            assert client.post("/v1/attendance-events", json=event("e2", appointment_id="a2")).status_code == 200
            _terminate(db_url, allow=False)  # the database stays away
            try:
                refused = client.post("/v1/attendance-events", json=event("e3", appointment_id="a3"))
            finally:
                _terminate(db_url, allow=True)
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "2"
            again = client.post("/v1/attendance-events", json=event("e3", appointment_id="a3"))
            assert (again.status_code, again.json()["status"]) == (200, "accepted")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        db.dispose()
