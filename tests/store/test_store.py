"""The store (SQLite and PostgreSQL): writers serialise, readers never wait for them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from wnb.database import open_database
from wnb.store import listing, repo
from wnb.store.db import writing

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


def test_listing_every_flag_works_past_the_parameters_one_postgresql_statement_takes(db_url: str) -> None:
    # `wnb flags --all` of a large trust: PostgreSQL refuses an IN (...) list of more than 65,535 values.
    many, at = 70_000, datetime(2026, 1, 5, 9, tzinfo=UTC)
    db = open_database(db_url)
    with writing(db) as connection:
        connection.execute(
            repo.events.insert(),
            {
                "id": 1,
                "source": "pas",
                "event_id": "e1",
                "nhs_number": "9990000018",
                "service": "paediatrics",
                "appointment_id": "a1",
                "appointment_at": at,
                "attendance": "did-not-attend",
                "recorded_at": at,
                "received_at": at,
                "state": "current",
                "raw": {},
            },
        )
        connection.execute(
            repo.flags.insert(),
            [
                {
                    "id": pk,
                    "nhs_number": "9990000018",
                    "code": "repeat-wnb",
                    "level": "amber",
                    "status": "inactive",
                    "rule_ids": ["WNB-06"],
                    "raised_at": at,
                    "ruleset_version": "v",
                }
                for pk in range(1, many + 1)
            ],
        )
        connection.execute(
            repo.links.insert(),
            [
                {
                    "kind": "flag",
                    "item_id": pk,
                    "source": "pas",
                    "appointment_id": "a1",
                    "event_pk": 1,
                    "audit_seq": 1,
                    "active": True,
                    "linked_at": at,
                }
                for pk in range(1, many + 1)
            ],
        )
    with db.connect() as reader:
        flags = listing.flags(reader, include_closed=True)
    assert len(flags) == many
    assert all(flag["event_ids"] == ["pas/e1"] for flag in flags)
    db.dispose()
