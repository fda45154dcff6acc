"""The store (SQLite and PostgreSQL): writers serialise, readers never wait for them."""

from __future__ import annotations

from sqlalchemy import text

from wnb.store import listing
from wnb.store.db import open_database, writing

STORES = ("sqlite", "postgres")  # every test here runs on both stores (conftest.py)


def test_a_read_does_not_wait_for_a_writer_holding_the_lock(db_url: str) -> None:
    db = open_database(db_url)
    with writing(db) as writer:
        writer.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, 'x')"))
        with db.connect() as reader:
            # With the writer's lock held, a reader that asked for the lock would time out (database is locked).
            assert listing.flags(reader, include_closed=True) == []
    db.dispose()


def test_a_writer_sees_what_the_writer_before_it_committed(db_url: str) -> None:
    db = open_database(db_url)
    with writing(db) as first:
        first.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, 'x')"))
    with writing(db) as second:
        assert second.execute(text("SELECT count(*) FROM audit_head")).scalar_one() == 1
    db.dispose()
