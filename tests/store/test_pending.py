"""PendingRows: ids given before the rows exist are the ones the database would give, nothing pending
reaches a table before flush() or after a rollback, and a row naming an audit record gets its number from
the chain at the end of the transaction."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text

from wnb.database import open_database
from wnb.store import repo
from wnb.store.audit import AuditLog
from wnb.store.db import writing
from wnb.store.pending import PendingRows

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def follow_up(appointment_id: str, status: str = "pending") -> dict[str, Any]:
    return {
        "source": "pas",
        "appointment_id": appointment_id,
        "nhs_number": "9990000018",
        "deadline_at": AT,
        "status": status,
    }


def link(audit_seq: Any) -> dict[str, Any]:
    return {
        "kind": "task",
        "item_id": 1,
        "source": "pas",
        "appointment_id": "a1",
        "event_pk": 1,
        "audit_seq": audit_seq,
        "active": True,
        "linked_at": AT,
    }


def link_seqs(connection: Any) -> list[int]:
    return [row[0] for row in connection.execute(text("SELECT audit_seq FROM link ORDER BY id"))]


def rows_in(connection: Any, table: str) -> list[Any]:
    return list(connection.execute(text(f"SELECT * FROM {table}")))


def rows(db: Engine) -> list[tuple[Any, ...]]:
    with db.connect() as connection:
        query = text("SELECT id, appointment_id, status FROM follow_up ORDER BY id")
        return [tuple(row) for row in connection.execute(query)]


@pytest.fixture
def sqlite_db(tmp_path: Any) -> Iterator[Engine]:
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    yield db
    db.dispose()


def test_ids_given_before_the_insert_are_the_ones_sqlite_gives(sqlite_db: Engine) -> None:
    with writing(sqlite_db) as connection:
        first = repo.insert_row(connection, repo.follow_ups, follow_up("a1"))
        pending = PendingRows(connection)
        given = [pending.insert(repo.follow_ups, follow_up(f"b{n}")) for n in range(300)]  # past one reservation
        pending.flush()
        after = repo.insert_row(connection, repo.follow_ups, follow_up("c1"))
    assert given == list(range(first + 1, first + 301))
    assert after == first + 301
    assert [row[:2] for row in rows(sqlite_db)][1:3] == [(first + 1, "b0"), (first + 2, "b1")]


def test_ids_continue_after_a_flush_in_the_same_transaction(sqlite_db: Engine) -> None:
    with writing(sqlite_db) as connection:
        pending = PendingRows(connection)
        one = pending.insert(repo.follow_ups, follow_up("a1"))
        pending.flush()
        direct = repo.insert_row(connection, repo.follow_ups, follow_up("a2"))
        two = pending.insert(repo.follow_ups, follow_up("a3"))
        pending.flush()
    assert (one, direct, two) == (1, 2, 3)
    assert [row[:2] for row in rows(sqlite_db)] == [(1, "a1"), (2, "a2"), (3, "a3")]


def test_a_change_to_a_pending_row_is_written_with_its_insert(sqlite_db: Engine) -> None:
    with writing(sqlite_db) as connection:
        pending = PendingRows(connection)
        pk = pending.insert(repo.follow_ups, follow_up("a1"))
        pending.update(repo.follow_ups, pk, status="void")
        pending.flush()
    assert rows(sqlite_db) == [(pk, "a1", "void")]


def test_a_change_to_a_stored_row_reaches_the_table_at_flush_and_not_before(sqlite_db: Engine) -> None:
    with writing(sqlite_db) as connection:
        pk = repo.insert_row(connection, repo.follow_ups, follow_up("a1"))
        pending = PendingRows(connection)
        pending.update(repo.follow_ups, pk, status="void")
        pending.update(repo.follow_ups, pk, status="pending", judged_at=AT)  # the last value of each column wins
        assert repo.follow_up_of(connection, "pas", "a1")["judged_at"] is None
        pending.flush()
        stored = repo.follow_up_of(connection, "pas", "a1")
    assert stored is not None and (stored.status, stored.judged_at) == ("pending", AT)


def test_pending_rows_written_before_a_failure_are_rolled_back_with_it(sqlite_db: Engine) -> None:
    with pytest.raises(RuntimeError), writing(sqlite_db) as connection:
        pending = PendingRows(connection)
        pending.insert(repo.follow_ups, follow_up("a1"))
        pending.flush()  # written mid-transaction, as a correction's withdrawal does
        pending.insert(repo.follow_ups, follow_up("a2"))
        raise RuntimeError("the process died here")
    assert rows(sqlite_db) == []


def test_a_row_naming_an_audit_record_waits_for_the_chain_and_is_written_with_its_number(sqlite_db: Engine) -> None:
    with writing(sqlite_db) as connection:
        audit = AuditLog(connection)
        audit.append(AT, "engine", "evaluation", ["E1"], {"n": 1})
        evaluation = audit.append(AT, "engine", "evaluation", ["E2"], {"n": 2})
        pending = PendingRows(connection)
        pending.insert(repo.links, link(evaluation))
        pending.insert(repo.follow_ups, follow_up("a1"))
        pending.flush(hold=True)  # the last flush before the chain: the link waits
        assert (link_seqs(connection), len(rows_in(connection, "follow_up"))) == ([], 1)
        audit.after_chain(pending.flush_last)
        audit.finish()
        assert link_seqs(connection) == [evaluation.seq] == [2]


def test_a_flush_mid_transaction_writes_the_row_now_and_its_audit_number_after_the_chain(sqlite_db: Engine) -> None:
    with writing(sqlite_db) as connection:
        audit = AuditLog(connection)
        evaluation = audit.append(AT, "engine", "evaluation", ["E1"], {"n": 1})
        pending = PendingRows(connection)
        pending.insert(repo.links, link(evaluation))
        pending.flush()  # a correction's withdrawal reads the links next: the row must be there
        assert len(link_seqs(connection)) == 1
        pending.flush(hold=True)
        audit.after_chain(pending.flush_last)
        audit.finish()
        assert link_seqs(connection) == [evaluation.seq] == [1]


def test_a_row_naming_a_record_that_was_never_chained_is_refused(sqlite_db: Engine) -> None:
    with pytest.raises(LookupError), writing(sqlite_db) as connection:
        elsewhere = AuditLog(connection).append(AT, "engine", "evaluation", ["E1"], {"n": 1})  # never finished
        audit = AuditLog(connection)
        pending = PendingRows(connection)
        pending.insert(repo.links, link(elsewhere))
        audit.after_chain(pending.flush_last)
        audit.finish()
    with sqlite_db.connect() as connection:
        assert link_seqs(connection) == []


def test_ids_on_postgresql_come_from_the_column_sequence() -> None:
    pytest.importorskip("psycopg", reason="PostgreSQL needs the psycopg driver")
    server = os.environ.get("WNB_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")
    name = f"wnb_t_{uuid.uuid4().hex[:12]}"
    admin = open_database(f"{server}/postgres", create=False).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
    except Exception as error:  # no server here
        pytest.skip(f"no PostgreSQL at {server}: {error}")
    db = open_database(f"{server}/{name}")
    try:
        with writing(db) as connection:
            first = repo.insert_row(connection, repo.follow_ups, follow_up("a1"))
            pending = PendingRows(connection)
            given = [pending.insert(repo.follow_ups, follow_up(f"b{n}")) for n in range(3)]
            pending.update(repo.follow_ups, first, status="void")
            pending.flush()
            after = repo.insert_row(connection, repo.follow_ups, follow_up("c1"))
        assert given == [first + 1, first + 2, first + 3]
        assert after > max(given)
        assert sorted(rows(db)) == sorted(
            [(first, "a1", "void"), *((pk, f"b{n}", "pending") for n, pk in enumerate(given)), (after, "c1", "pending")]
        )
    finally:
        db.dispose()
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE {name}"))
        admin.dispose()
