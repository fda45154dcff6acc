"""The hash-chained audit log: `wnb audit verify` passes on an untouched log and names the first bad record
after the SQLite file is edited behind wnb's back; `wnb audit export` prints the records in order."""

from __future__ import annotations

import json
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, FixedClock
from tests.factories import Ran, run_wnb
from wnb.core.audit_chain import canonical, header_text, stored_list
from wnb.core.domain import Role
from wnb.core.policy import Principal
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.ingest import read_file
from wnb.service import Service
from wnb.store import listing

WNB = Path(sys.executable).parent / "wnb"
FIXTURES = ROOT / "fixtures"


def wnb(db: Path, *args: str) -> Ran:
    env = {"WNB_DATABASE_URL": f"sqlite:///{db}", "WNB_RULES_DIR": str(ROOT / "rules" / "default")}
    return run_wnb(db.parent, *args, env=env)


@pytest.fixture
def db(tmp_path: Path, ruleset: Ruleset, clock: FixedClock) -> Path:
    """A database with the sample feeds ingested, a sweep run and a person's action: a log of many records."""
    path = tmp_path / "wnb.db"
    engine = open_database(f"sqlite:///{path}")
    service = Service(engine, ruleset, clock)
    service.import_context(read_file(FIXTURES / "context.ndjson"), origin="context.ndjson")
    service.ingest(read_file(FIXTURES / "feed-1-pas-2026-03.ndjson"), origin="feed-1")
    service.sweep(datetime(2026, 3, 18, 9, 0, tzinfo=UTC))
    with engine.connect() as connection:
        first_task = listing.tasks(connection)[0]["id"]
    service.act_on_task(first_task, "ack", Principal("user", "nurse.one", Role.SAFEGUARDING_LEAD), "on it")
    engine.dispose()
    return path


def edit(db: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    connection = sqlite3.connect(db)
    try:
        with connection:
            for sql, parameters in statements:
                connection.execute(sql, parameters)
    finally:
        connection.close()


def record_count(db: Path) -> int:
    connection = sqlite3.connect(db)
    try:
        return int(connection.execute("SELECT count(*) FROM audit").fetchone()[0])
    finally:
        connection.close()


def assert_broken(result: Ran, *words: str) -> None:
    assert result.returncode != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, result.stderr
    assert "NOT intact" in message
    for word in words:
        assert word in message, message
    assert "intact:" not in result.stdout


def test_audit_verify_passes_on_an_untouched_log_and_says_how_many_records(db: Path) -> None:
    result = wnb(db, "audit", "verify")

    assert result.returncode == 0, result.stderr
    assert f"audit log intact: {record_count(db)} records verified" in result.stdout
    assert record_count(db) > 20


def test_audit_verify_names_a_record_whose_payload_was_changed(db: Path) -> None:
    edit(db, ("UPDATE audit SET payload = json_set(payload, '$.tampered', 1) WHERE seq = 3", ()))

    assert_broken(wnb(db, "audit", "verify"), "record 3 was changed")


def test_audit_verify_names_a_record_whose_actor_was_changed(db: Path) -> None:
    edit(db, ("UPDATE audit SET actor = 'user:mallory' WHERE seq = 3", ()))

    assert_broken(wnb(db, "audit", "verify"), "record 3 was changed")


def test_audit_verify_names_a_changed_record_even_when_its_own_hash_was_recomputed(db: Path) -> None:
    connection = sqlite3.connect(db)
    try:
        row = connection.execute("SELECT * FROM audit WHERE seq = 3").fetchone()
        names = [column[0] for column in connection.execute("SELECT * FROM audit LIMIT 0").description]
    finally:
        connection.close()
    record = dict(zip(names, row, strict=True))
    from wnb.store.audit import record_hash

    record.update(
        actor="user:mallory",
        at=datetime.fromisoformat(record["at"]).replace(tzinfo=UTC),
        subject=json.loads(record["subject"]),
        payload=json.loads(record["payload"]),
    )
    edit(db, ("UPDATE audit SET actor = ?, hash = ? WHERE seq = 3", ("user:mallory", record_hash(record))))

    # Its MAC, made with the audit key the editor does not hold, no longer matches its hash.
    assert_broken(wnb(db, "audit", "verify"), "record 3 is not authenticated by audit key 'test'")


def test_audit_verify_names_a_deleted_record(db: Path) -> None:
    edit(db, ("DELETE FROM audit WHERE seq = 3", ()))

    assert_broken(wnb(db, "audit", "verify"), "record 3 is missing")


def test_audit_verify_names_the_first_of_two_records_whose_contents_were_swapped(db: Path) -> None:
    connection = sqlite3.connect(db)
    try:
        columns = [column[0] for column in connection.execute("SELECT * FROM audit LIMIT 0").description]
        content = [name for name in columns if name != "seq"]
        second = connection.execute(f"SELECT {', '.join(content)} FROM audit WHERE seq = 2").fetchone()
        third = connection.execute(f"SELECT {', '.join(content)} FROM audit WHERE seq = 3").fetchone()
    finally:
        connection.close()
    assignments = ", ".join(f"{name} = ?" for name in content)
    edit(
        db,
        (f"UPDATE audit SET {assignments} WHERE seq = 2", tuple(third)),
        (f"UPDATE audit SET {assignments} WHERE seq = 3", tuple(second)),
    )

    assert_broken(wnb(db, "audit", "verify"), "record 2 does not follow record 1")


def test_audit_verify_finds_a_truncated_tail(db: Path) -> None:
    last = record_count(db)
    edit(db, ("DELETE FROM audit WHERE seq = ?", (last,)))

    assert_broken(wnb(db, "audit", "verify"), f"record {last - 1}", f"record {last} was written last")


def test_audit_export_prints_every_record_as_json_lines_in_chain_order(db: Path) -> None:
    result = wnb(db, "audit", "export")

    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["seq"] for record in records] == list(range(1, record_count(db) + 1))
    assert records[0]["prev_hash"] == "0" * 64
    for before, after in zip(records, records[1:], strict=False):
        assert after["prev_hash"] == before["hash"]
    assert {
        "seq",
        "at",
        "actor",
        "action",
        "subject",
        "ruleset_version",
        "payload",
        "prev_hash",
        "hash",
    } <= set(records[0])
    actions = {record["action"] for record in records}
    assert {
        "context_imported",
        "evaluation",
        "flag_raised",
        "task_created",
        "event_rejected",
        "task_escalated",
        "task_acknowledged",
    } <= actions
    (ack,) = [record for record in records if record["action"] == "task_acknowledged"]
    assert ack["actor"] == "user:nurse.one"
    assert ack["payload"]["note"] == "on it"


def test_every_evaluation_record_carries_the_ruleset_version_facts_and_fired_rules(db: Path, ruleset: Ruleset) -> None:
    engine = open_database(f"sqlite:///{db}")
    try:
        from wnb.store import audit

        with engine.connect() as connection:
            records = [json.loads(line) for line in audit.export_lines(connection)]
    finally:
        engine.dispose()
    evaluations = [record for record in records if record["action"] == "evaluation"]
    assert evaluations
    for record in evaluations:
        assert record["ruleset_version"] == ruleset.version
        assert "fired" in record["payload"]
        assert "facts" in record["payload"] or "no date of birth" in record["payload"]["outcome"]


def test_a_record_names_an_earlier_record_of_its_transaction_by_the_number_the_chain_gives_it(db: Path) -> None:
    from wnb.store import audit
    from wnb.store.db import writing

    stored = record_count(db)
    engine = open_database(f"sqlite:///{db}")
    try:
        with writing(engine) as connection:
            log = audit.AuditLog(connection)
            at = datetime(2026, 3, 20, 9, tzinfo=UTC)
            evaluation = log.append(at, "engine", "evaluation", ["E1"], {"fired": []})
            assert not evaluation.chained  # numbered only when the transaction's records are chained
            with pytest.raises(LookupError):
                _ = evaluation.seq
            log.append(at, "engine", "flag_raised", ["F1"], {"code": "x", "evaluation": evaluation})
            log.finish()
        with engine.connect() as connection:
            raised = audit.records_for(connection, [stored + 2])[0]
            assert audit.verify(connection).ok
    finally:
        engine.dispose()
    assert evaluation.seq == stored + 1
    assert raised["payload"] == {"code": "x", "evaluation": stored + 1}


# Any string json can write, lone surrogates and control characters included.
_texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)


@settings(max_examples=300, deadline=None)
@given(
    seq=st.integers(min_value=0, max_value=2**70),
    actor=_texts,
    action=_texts,
    subject=st.lists(_texts, max_size=4),
    version=st.none() | _texts,
    prev_hash=_texts,
    at=st.datetimes(timezones=st.just(UTC)),
)
def test_the_header_written_out_is_the_canonical_json_of_the_header(
    seq: int, actor: str, action: str, subject: list[str], version: str | None, prev_hash: str, at: datetime
) -> None:
    header = {
        "seq": seq,
        "at": at.isoformat(),
        "actor": actor,
        "action": action,
        "subject": subject,
        "ruleset_version": version,
        "prev_hash": prev_hash,
    }
    assert header_text(seq, at.isoformat(), actor, action, subject, version, prev_hash) == canonical(header)


@settings(max_examples=300, deadline=None)
@given(st.lists(_texts, max_size=4))
def test_a_subject_is_stored_as_json_dumps_writes_it(subject: list[str]) -> None:
    assert stored_list(subject) == json.dumps(subject)
