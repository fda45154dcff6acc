"""The writer contract (wnb/store/writers.py): a chunk's writer and a single change's do the same to the tables.

The lifecycle (wnb/service/effects.py) writes through either without asking which it has, so each must give
the same rows, the same answers to what it reads back before the end of the transaction, and a link that
names the evaluation's audit record once the chain has numbered it. Both writers, on both stores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select

from wnb.database import open_database
from wnb.store import repo
from wnb.store.audit import AuditLog
from wnb.store.db import writing
from wnb.store.items import ChunkItems
from wnb.store.pending import PendingRows
from wnb.store.writers import ChunkWriter, DirectWriter, Writer

STORES = ("sqlite", "postgres")
AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CHILD = "9990000018"
APPOINTMENT = ("pas", "A-1")


@contextmanager
def chunk_writer(connection: Connection, audit: AuditLog) -> Iterator[Writer]:
    pending = PendingRows(connection)
    yield ChunkWriter(ChunkItems(connection, pending, {CHILD}))
    pending.flush(hold=True)  # as a chunk ends: all but the links, which wait for their numbers
    audit.after_chain(pending.flush_last)


@contextmanager
def direct_writer(connection: Connection, audit: AuditLog) -> Iterator[Writer]:
    yield DirectWriter(connection, audit)


WRITERS = {"chunk": chunk_writer, "direct": direct_writer}


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    engine = open_database(db_url)
    yield engine
    engine.dispose()


def _flag() -> dict[str, Any]:
    return {
        "nhs_number": CHILD,
        "code": "was-not-brought",
        "level": "amber",
        "status": "active",
        "rule_ids": ["WNB-01"],
        "raised_at": AT,
        "ruleset_version": "v",
    }


def _task() -> dict[str, Any]:
    return {
        "nhs_number": CHILD,
        "service": "paediatrics",
        "code": "rebook-appointment",
        "owner_role": "booking-team",
        "first_owner_role": "booking-team",
        "status": "requested",
        "due_at": AT,
        "escalation_level": 0,
        "rule_ids": ["WNB-01"],
        "created_at": AT,
        "ruleset_version": "v",
        "updated_at": AT,
    }


def _link(kind: str, item_id: int, evaluation: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "item_id": item_id,
        "source": APPOINTMENT[0],
        "appointment_id": APPOINTMENT[1],
        "event_pk": 1,
        "audit_seq": evaluation,
        "active": True,
        "linked_at": AT,
    }


def _rows(db: Engine) -> dict[str, list[dict[str, Any]]]:
    with db.connect() as connection:
        return {
            table.name: [dict(row._mapping) for row in connection.execute(select(table).order_by(table.c.id))]
            for table in (repo.flags, repo.tasks, repo.links)
        }


def _write(db: Engine, make: Callable[..., Any]) -> dict[str, Any]:
    """One evaluation's changes through the writer; what it read back on the way, and the stored rows."""
    seen: dict[str, Any] = {}
    with writing(db) as connection:
        audit = AuditLog(connection)
        evaluation = audit.append(AT, "engine", "evaluation", [CHILD], {"facts": {}}, "v")
        with make(connection, audit) as writer:
            flag_id = writer.insert(repo.flags, _flag())
            task_id = writer.insert(repo.tasks, _task())
            writer.insert_link(_link("flag", flag_id, evaluation))
            writer.update(repo.flags, flag_id, {"rule_ids": ["WNB-01", "WNB-02"]})
            seen["linked"] = writer.is_linked("flag", flag_id, *APPOINTMENT)
            seen["task_linked"] = writer.is_linked("task", task_id, *APPOINTMENT)
            seen["flags"] = {code: row.id for code, row in writer.active_flags(CHILD).items()}
            seen["tasks"] = {
                key: row.id for key, row in writer.open_tasks(CHILD, [("paediatrics", "rebook-appointment")]).items()
            }
        audit.finish()
        seen["evaluation"] = evaluation.seq
    seen["rows"] = _rows(db)
    return seen


@pytest.mark.parametrize("kind", WRITERS)
def test_a_writer_reads_back_what_it_wrote_before_the_transaction_ends(db: Engine, kind: str) -> None:
    seen = _write(db, WRITERS[kind])
    assert seen["linked"] and not seen["task_linked"]
    assert seen["flags"] == {"was-not-brought": 1}
    assert seen["tasks"] == {("paediatrics", "rebook-appointment"): 1}


@pytest.mark.parametrize("kind", WRITERS)
def test_a_link_names_the_evaluations_audit_record_once_the_chain_numbers_it(db: Engine, kind: str) -> None:
    seen = _write(db, WRITERS[kind])
    [link] = seen["rows"]["link"]
    assert link["audit_seq"] == seen["evaluation"] != 0
    assert seen["rows"]["flag"][0]["rule_ids"] == ["WNB-01", "WNB-02"]


def test_both_writers_store_the_same_rows(db_url: str, tmp_path: Any) -> None:
    first = open_database(db_url)
    try:
        chunked = _write(first, chunk_writer)
    finally:
        first.dispose()
    other_url = f"sqlite:///{tmp_path / 'other.db'}" if db_url.startswith("sqlite") else None
    if other_url is None:  # PostgreSQL: the session's database again, emptied
        from tests.conftest import _empty

        _empty(db_url)
        other_url = db_url
    second = open_database(other_url)
    try:
        direct = _write(second, direct_writer)
    finally:
        second.dispose()
    assert chunked == direct
