"""The audit chain on PostgreSQL: `wnb audit verify` passes on an untouched log and names the first record
changed, removed or cut from the end behind wnb's back (the SQLite-file cases are in test_audit.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import ROOT, FixedClock
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.ingest import read_file
from wnb.service import Service

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


def verify(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WNB_DATABASE_URL": url, "WNB_RULES_DIR": str(ROOT / "rules" / "default")}
    return subprocess.run(
        [str(WNB), "audit", "verify"], env=env, capture_output=True, text=True, timeout=120, check=False
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
