"""The audit chain on PostgreSQL: `wnb audit verify` passes on an untouched log and names the first record
changed, removed or cut from the end behind wnb's back (the SQLite-file cases are in test_audit.py)."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import ROOT, FixedClock
from tests.factories import Ran, run_wnb
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.ingest import read_file
from wnb.service import Service
from wnb.store.audit import AuditLog
from wnb.store.db import writing

STORES = ("postgres",)
WNB = Path(sys.executable).parent / "wnb"
FIXTURES = ROOT / "fixtures"


@pytest.fixture
def logged(db_url: str, ruleset: Ruleset, clock: FixedClock) -> str:
    """The sample feeds ingested and a sweep run: a log of many records."""
    engine = open_database(db_url)
    service = Service(engine, ruleset, clock)
    service.import_context(read_file(FIXTURES / "context.ndjson"), origin="context.ndjson")
    service.ingest(read_file(FIXTURES / "feed-1-pas-2026-03.ndjson"), origin="feed-1")
    service.sweep(datetime(2026, 3, 18, 9, 0, tzinfo=UTC))
    engine.dispose()
    return db_url


def verify(url: str) -> Ran:
    return run_wnb(
        ROOT, "audit", "verify", env={"WNB_DATABASE_URL": url, "WNB_RULES_DIR": str(ROOT / "rules" / "default")}
    )


def edit(url: str, statement: str) -> int:
    """Run one statement behind wnb's back; the number of audit records after it."""
    engine = open_database(url, create=False)
    with engine.begin() as connection:
        connection.execute(text(statement))
        count = int(connection.execute(text("SELECT count(*) FROM audit")).scalar_one())
    engine.dispose()
    return count


def test_audit_verify_passes_on_an_untouched_postgres_log(logged: str) -> None:
    count = edit(logged, "SELECT 1")
    result = verify(logged)
    assert result.returncode == 0, result.stderr
    assert f"audit log intact: {count} records verified" in result.stdout


def test_audit_verify_names_a_changed_record_on_postgres(logged: str) -> None:
    edit(logged, "UPDATE audit SET actor = 'user:mallory' WHERE seq = 3")
    result = verify(logged)
    assert result.returncode == 1
    assert "record 3 was changed" in result.stderr


def test_audit_verify_finds_a_truncated_tail_on_postgres(logged: str) -> None:
    last = edit(logged, "SELECT 1")
    edit(logged, f"DELETE FROM audit WHERE seq = {last}")
    result = verify(logged)
    assert result.returncode == 1
    assert f"record {last} was written last" in result.stderr


def test_two_replicas_writing_the_first_records_of_an_empty_log_chain_one_after_the_other(db_url: str) -> None:
    # Replicas starting together on a new database each found no head row to lock and both made it: one failed.
    engine = open_database(db_url)
    first_chained, commit_first = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def write(actor: str, hold: bool) -> None:
        try:
            with writing(engine) as connection:
                log = AuditLog(connection)
                log.append(datetime(2026, 3, 2, tzinfo=UTC), actor, "replica_started", [], {})
                log.finish()
                if hold:
                    first_chained.set()
                    commit_first.wait(10)
        except BaseException as error:  # noqa: BLE001 - the failure is what the test looks for
            errors.append(error)

    first = threading.Thread(target=write, args=("replica-0", True))
    first.start()
    assert first_chained.wait(10)
    second = threading.Thread(target=write, args=("replica-1", False))
    second.start()
    second.join(0.5)  # it waits for the first replica's head row
    commit_first.set()
    first.join(10)
    second.join(10)
    assert errors == []
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT seq, actor FROM audit ORDER BY seq")).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [(1, "replica-0"), (2, "replica-1")]
