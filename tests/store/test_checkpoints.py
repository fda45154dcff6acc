"""While a file is ingested, another thread copies SQLite's WAL into the database file (wnb/store/db.py
checkpoints_beside), so the commits need not."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine, text

from wnb.database import open_database
from wnb.store.db import checkpoints_beside, writing


def write_rejects(db: Engine, first: int, count: int) -> None:
    with writing(db) as connection:
        connection.execute(
            text(
                "INSERT INTO reject (fingerprint, received_at, last_received_at, received_count, origin, line, "
                "field, reason, raw) VALUES (:fingerprint, :at, :at, 1, 'test', :line, 'x', 'y', :raw)"
            ),
            [
                {
                    "fingerprint": f"f{first + n}",
                    "at": "2026-03-02 10:00:00.000000",
                    "line": first + n,
                    "raw": "z" * 500,
                }
                for n in range(count)
            ],
        )


def test_the_wal_is_copied_into_the_database_file_beside_the_commits(tmp_path: Path) -> None:
    path = tmp_path / "wnb.db"
    db = open_database(f"sqlite:///{path}")
    try:
        write_rejects(db, 0, 20)  # far below wal_autocheckpoint: the commit leaves it in the WAL
        size = path.stat().st_size
        write_rejects(db, 20, 2000)
        assert path.stat().st_size == size  # no commit copied anything
        with checkpoints_beside(db):
            write_rejects(db, 2020, 10)
            deadline = time.monotonic() + 60  # waits for the other thread; asserts nothing about speed
            while path.stat().st_size == size and time.monotonic() < deadline:
                time.sleep(0.02)
        assert path.stat().st_size > size + 500 * 2000  # the rows are in the database file itself
        with db.connect() as connection:
            assert connection.execute(text("SELECT COUNT(*) FROM reject")).scalar_one() == 2030
    finally:
        db.dispose()


def test_an_in_memory_database_has_no_wal_to_copy() -> None:
    db = open_database("sqlite://")
    try:
        with checkpoints_beside(db):
            write_rejects(db, 0, 5)
    finally:
        db.dispose()
