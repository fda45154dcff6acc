"""Alembic migrations: from nothing they build exactly the schema of the SQLModel tables, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

from tests.conftest import ROOT
from tests.factories import run_wnb
from wnb.database import open_database
from wnb.store.rejects import fingerprint
from wnb.store.revision import newest_file_revision
from wnb.store.schema import alembic_config, current, head
from wnb.store.tables import UTCDateTime

STORES = ("sqlite", "postgres")
FIRST_REJECT_TABLE = """CREATE TABLE reject (id INTEGER NOT NULL PRIMARY KEY, received_at DATETIME NOT NULL,
    origin VARCHAR NOT NULL, line INTEGER, source VARCHAR, event_id VARCHAR, field VARCHAR, reason TEXT NOT NULL,
    raw TEXT NOT NULL, handled_at DATETIME, handled_by VARCHAR)"""


def _differences(url: str) -> list[Any]:
    engine = create_engine(url)
    with engine.connect() as connection:
        found = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    return list(found)


def test_migrations_from_nothing_build_exactly_the_models_schema(db_url: str) -> None:
    open_database(db_url).dispose()
    assert _differences(db_url) == []


def test_a_migrated_database_is_at_the_newest_revision(db_url: str) -> None:
    engine = open_database(db_url)
    with engine.connect() as connection:
        assert current(connection) == head()
    engine.dispose()


def test_the_newest_migration_file_holds_alembics_head() -> None:
    # Opening a database compares its revision with this, without importing Alembic (wnb.store.schema.upgrade).
    assert newest_file_revision() == head()


def test_wnb_db_upgrade_migrates_a_new_database_and_then_says_it_is_current(tmp_path: Path) -> None:
    env = {"WNB_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    first = run_wnb(ROOT, "db", "upgrade", env=env)
    assert first.returncode == 0, first.stderr
    assert f"upgraded from revision none to {head()}" in first.stdout
    again = run_wnb(ROOT, "db", "upgrade", env=env)
    assert again.returncode == 0, again.stderr
    assert f"already at revision {head()}" in again.stdout
    engine = create_engine(env["WNB_DATABASE_URL"])
    assert "event" in inspect(engine).get_table_names()
    engine.dispose()


def test_a_database_made_before_migrations_is_adopted_and_upgraded_keeping_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    SQLModel.metadata.create_all(old)
    with old.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE outbox DROP COLUMN claimed_at")  # added by revision 0002
        connection.exec_driver_sql("ALTER TABLE outbox DROP COLUMN admin_task_id")  # added by revision 0009
        connection.exec_driver_sql("DROP TABLE reject")  # its fingerprint, count and last time came with 0003
        connection.exec_driver_sql(FIRST_REJECT_TABLE)
        connection.exec_driver_sql("DROP TABLE web_session")  # server-side sessions came with 0005
        connection.exec_driver_sql("DROP TABLE sign_in_failure")  # and so did counted sign-in failures
        connection.exec_driver_sql("ALTER TABLE api_key DROP COLUMN sources")  # the key bindings came with 0004
        connection.exec_driver_sql("ALTER TABLE api_key DROP COLUMN writes_context")
        for table in ("audit", "audit_head"):  # audit key ids and MACs came with 0008
            connection.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN key_id")
            connection.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN mac")
        connection.exec_driver_sql("DROP INDEX ix_task_assignee")  # a task's assignee came with 0010
        connection.exec_driver_sql("ALTER TABLE task DROP COLUMN assignee")
        connection.exec_driver_sql("ALTER TABLE task_history DROP COLUMN assignee")
        connection.exec_driver_sql("ALTER TABLE user_account DROP COLUMN email")  # and so did accounts' addresses
        connection.exec_driver_sql("DROP TABLE ruleset_version")  # the ruleset registry came with 0011
        for column in ("acknowledged_at", "waiting_until", "waiting_reason"):  # waiting on someone came with 0012
            connection.exec_driver_sql(f"ALTER TABLE task DROP COLUMN {column}")
        connection.exec_driver_sql("DROP TABLE recipient")  # the recipient directory came with 0013
        connection.exec_driver_sql("DROP TABLE ruleset_report")  # its reports and the pages' jobs came with 0014
        connection.exec_driver_sql("DROP TABLE ruleset_job")
        connection.exec_driver_sql("DROP INDEX ix_task_role")  # the worklist's index came with 0015
        connection.exec_driver_sql("DROP TABLE communication")  # messages sent from tasks came with 0017
        connection.exec_driver_sql("ALTER TABLE api_key DROP COLUMN recipient")  # and so did partners' recipients
        connection.exec_driver_sql("DROP INDEX uq_task_open")  # and `awaiting-acknowledgement` in the open index
        connection.exec_driver_sql(
            "CREATE UNIQUE INDEX uq_task_open ON task (nhs_number, service, code) "
            "WHERE status IN ('requested', 'accepted')"
        )
        connection.exec_driver_sql("INSERT INTO audit_head (id, seq, hash) VALUES (1, 7, 'h')")
    old.dispose()
    engine = open_database(url)
    with engine.connect() as connection:
        assert current(connection) == head()
        assert connection.exec_driver_sql("SELECT seq FROM audit_head").scalar_one() == 7
    assert _differences(url) == []
    engine.dispose()


def _at(minute: int) -> datetime:
    return datetime(2026, 3, 2, 9, minute, tzinfo=UTC)


def test_upgrading_to_reject_fingerprints_merges_copies_of_a_row_into_the_oldest_keeping_it_open(db_url: str) -> None:
    engine = open_database(db_url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0002")  # as a database was before rejects had fingerprints
    reject = sa.table(
        "reject",
        *(sa.column(name) for name in ("id", "origin", "line", "source", "event_id", "field", "reason", "raw")),
        *(sa.column(name, UTCDateTime()) for name in ("received_at", "handled_at")),
        sa.column("handled_by"),
    )
    bad = {"origin": "api:pas", "source": "pas", "event_id": "e1", "raw": '{"event_id": "e1"}', "field": "nhs_number"}
    other = {**bad, "raw": '{"event_id": "e2"}', "event_id": "e2"}
    handled = {"handled_at": _at(30), "handled_by": "dq.officer"}
    rows = [
        {"id": 1, **bad, "line": 0, "reason": "old reason", "received_at": _at(1), **handled},
        {"id": 2, **other, "line": 1, "reason": "other", "received_at": _at(2), **handled},
        {"id": 3, **bad, "line": 4, "reason": "new reason", "received_at": _at(3), "handled_at": None},
        {"id": 4, **other, "line": 1, "reason": "other", "received_at": _at(4), **handled, "handled_by": "dq.lead"},
        {"id": 5, **bad, "origin": "pas.ndjson", "line": 7, "reason": "r", "received_at": _at(5), "handled_at": None},
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(reject), [{"handled_by": None, **row} for row in rows])
        command.upgrade(alembic_config(connection), "head")
    with engine.connect() as connection:
        query = "SELECT id, received_count, last_received_at, reason, handled_by, fingerprint FROM reject ORDER BY id"
        merged = [tuple(row) for row in connection.exec_driver_sql(query)]
    engine.dispose()
    assert [(row[0], row[1], row[3], row[4]) for row in merged] == [
        (1, 2, "new reason", None),  # one copy still open: the merged row is open
        (2, 2, "other", "dq.lead"),  # every copy handled: the latest handling is kept
        (5, 1, "r", None),  # another origin: another row
    ]
    assert [str(row[2])[:16] for row in merged] == ["2026-03-02 09:03", "2026-03-02 09:04", "2026-03-02 09:05"]
    assert merged[0][5] == fingerprint("api:pas", "pas", '{"event_id": "e1"}')
    assert len({row[5] for row in merged}) == 3
    assert _differences(db_url) == []


def test_outbox_rows_undelivered_before_revision_0009_get_one_admin_task_each_after_the_upgrade(db_url: str) -> None:
    from wnb.notify import open_undelivered_tasks

    engine = open_database(db_url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0003")  # before outbox rows knew their admin task
    outbox = sa.table(
        "outbox",
        *(sa.column(name) for name in ("id", "dedupe_key", "recipient", "subject", "body", "status", "attempts")),
        sa.column("last_error"),
        *(sa.column(name, UTCDateTime()) for name in ("next_attempt_at", "created_at")),
    )
    old = {"recipient": "sg@trust.example", "subject": "s", "body": "b", "attempts": 1, "last_error": "e"}
    times = {"next_attempt_at": _at(0), "created_at": _at(0)}
    with engine.begin() as connection:
        connection.execute(
            sa.insert(outbox),
            [
                {"id": 1, "dedupe_key": "flag:F1:raised:sg@trust.example", "status": "uncertain", **old, **times},
                {"id": 2, "dedupe_key": "flag:F2:raised:sg@trust.example", "status": "failed", **old, **times},
                {"id": 3, "dedupe_key": "flag:F3:raised:sg@trust.example", "status": "sent", **old, **times},
            ],
        )
        command.upgrade(alembic_config(connection), "head")
    assert _differences(db_url) == []
    assert len(open_undelivered_tasks(engine, _at(5))) == 2
    assert open_undelivered_tasks(engine, _at(6)) == []
    with engine.connect() as connection:
        linked = connection.exec_driver_sql("SELECT id, admin_task_id FROM outbox ORDER BY id").all()
        services = connection.exec_driver_sql("SELECT service, code FROM task ORDER BY id").all()
    engine.dispose()
    assert [row[1] is not None for row in linked] == [True, True, False]
    assert [tuple(row) for row in services] == [
        ("outbox:1", "notification-uncertain"),
        ("outbox:2", "notification-failed"),
    ]


def test_upgrading_to_raw_encodings_reads_the_rejects_stored_before_as_text(db_url: str) -> None:
    engine = open_database(db_url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0003")  # as a database was before raw encodings
        connection.exec_driver_sql(
            "INSERT INTO reject (fingerprint, received_at, last_received_at, received_count, origin, reason, raw) "
            "VALUES ('f', '2026-03-02 09:00:00', '2026-03-02 09:00:00', 1, 'pas.ndjson', 'bad', '{oops')"
        )
        command.upgrade(alembic_config(connection), "head")
    with engine.connect() as connection:
        kept = connection.exec_driver_sql("SELECT raw, raw_encoding FROM reject").one()
    engine.dispose()
    assert tuple(kept) == ("{oops", "text")
    assert _differences(db_url) == []


def test_upgrading_to_stale_outcomes_marks_every_queued_row_a_reject_and_downgrading_drops_the_stale_ones(
    db_url: str,
) -> None:
    engine = open_database(db_url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0003")  # as a database was before the queue had kinds
        row = {"origin": "api:pas", "source": "pas", "raw": "{}", "reason": "r", "received_count": 1}
        connection.execute(
            sa.text(
                "INSERT INTO reject (fingerprint, received_at, last_received_at, received_count, origin, source, "
                "reason, raw) VALUES ('f1', :at, :at, :received_count, :origin, :source, :reason, :raw)"
            ),
            {**row, "at": _at(1).replace(tzinfo=None)},
        )
        command.upgrade(alembic_config(connection), "head")
        kinds = [tuple(found) for found in connection.exec_driver_sql("SELECT fingerprint, kind FROM reject")]
        connection.exec_driver_sql(
            "INSERT INTO reject (fingerprint, kind, received_at, last_received_at, received_count, origin, reason, "
            "raw) SELECT 'f2', 'stale-outcome', received_at, last_received_at, 1, origin, reason, raw FROM reject"
        )
        command.downgrade(alembic_config(connection), "0003")
        left = [found[0] for found in connection.exec_driver_sql("SELECT fingerprint FROM reject")]
        command.upgrade(alembic_config(connection), "head")
    assert kinds == [("f1", "reject")]
    assert left == ["f1"]
    assert _differences(db_url) == []
    engine.dispose()
