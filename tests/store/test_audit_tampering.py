"""An insider who can write the database, but not read the audit key nor the write-once checkpoints, tampers
with the audit log; `verify` finds every tampering and names it, on SQLite and PostgreSQL.

The insider knows how wnb hashes (wnb.store.audit.record_hash is public), so they can recompute every hash and the
head; they cannot make a record's or the head's MAC, nor a checkpoint's signature.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, delete, insert, select, update

from tests.conftest import ROOT, FixedClock
from wnb.core.items import RawItem
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.ingest import read_file
from wnb.service import Service
from wnb.service.audit_checkpoints import CheckpointWriter
from wnb.store import audit
from wnb.store.audit_keys import AuditKeys
from wnb.store.tables import AuditHeadRow, AuditRow

STORES = ("sqlite", "postgres")
FIXTURES = ROOT / "fixtures"
_audit = AuditRow.__table__  # type: ignore[attr-defined]
_head = AuditHeadRow.__table__  # type: ignore[attr-defined]
SWEEP = datetime(2026, 3, 18, 9, 0, tzinfo=UTC)


@pytest.fixture
def wnb(db_url: str, ruleset: Ruleset, clock: FixedClock) -> Iterator[Service]:
    """wnb over the database, with the sample feeds ingested and a sweep run: a log of many records."""
    engine = open_database(db_url)
    service = Service(engine, ruleset, clock)
    service.import_context(read_file(FIXTURES / "context.ndjson"), origin="context.ndjson")
    service.ingest(read_file(FIXTURES / "feed-1-pas-2026-03.ndjson"), origin="feed-1")
    service.sweep(SWEEP)
    yield service
    engine.dispose()


@pytest.fixture
def insider(db_url: str) -> Iterator[Engine]:
    """A plain connection to the database: no wnb, no audit key."""
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def checkpoints(wnb: Service, tmp_path: Path) -> CheckpointWriter:
    """Checkpoints written by wnb into a folder the insider cannot change (write-once storage)."""
    folder = tmp_path / "worm"
    folder.mkdir()
    return CheckpointWriter(wnb.db, Ed25519PrivateKey.generate(), folder)


def verify(service: Service, writer: CheckpointWriter | None = None, keys: AuditKeys | None = None) -> str:
    """The problem `verify` finds (with the checkpoints written so far, if any); fails if it finds none."""
    found = tuple(
        audit.Checkpoint(checkpoint.seq, checkpoint.hash, checkpoint.at, checkpoint.name)
        for checkpoint in ([writer.last] if writer and writer.last else [])
    )
    with service.db.connect() as connection:
        result = audit.verify(connection, keys=keys, checkpoints=found)
    assert not result.ok, "the tampering was not found"
    assert result.problem is not None
    return result.problem


def records(insider: Engine) -> list[dict[str, Any]]:
    with insider.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(select(_audit).order_by(_audit.c.seq))]


def last_seq(insider: Engine) -> int:
    return records(insider)[-1]["seq"]


def rewrite(insider: Engine, chain: list[dict[str, Any]], recompute_from: int | None = None) -> None:
    """Replace the whole log by `chain`, its hashes recomputed from record `recompute_from` on (as the insider
    can), and move the head to its end; MACs stay as they were, since the insider cannot make new ones."""
    if recompute_from is not None:
        previous = audit.GENESIS
        for record in chain:
            if record["seq"] >= recompute_from:
                record["prev_hash"] = previous
                record["hash"] = audit.record_hash(record)
            previous = record["hash"]
    with insider.begin() as connection:
        connection.execute(delete(_audit))
        connection.execute(insert(_audit), chain)
        last = chain[-1]
        connection.execute(update(_head).values(seq=last["seq"], hash=last["hash"]))


def test_an_untouched_log_verifies_with_every_mac_and_the_checkpoints(
    wnb: Service, checkpoints: CheckpointWriter
) -> None:
    checkpoints.take(SWEEP)
    with wnb.db.connect() as connection:
        result = audit.verify(connection, checkpoints=(checkpoints.last,) if checkpoints.last else ())
    assert result.ok, result.problem
    assert result.keyed and result.unkeyed == 0 and result.checkpoints == 1
    assert result.records > 100


def test_a_changed_record_is_named(wnb: Service, insider: Engine) -> None:
    with insider.begin() as connection:
        connection.execute(update(_audit).where(_audit.c.seq == 3).values(actor="user:mallory"))

    assert verify(wnb) == "record 3 was changed: its content does not match its hash"


def test_a_deleted_record_is_named(wnb: Service, insider: Engine) -> None:
    with insider.begin() as connection:
        connection.execute(delete(_audit).where(_audit.c.seq == 3))

    assert verify(wnb) == "record 3 is missing (next found is 4): deleted"


def test_two_reordered_records_are_named(wnb: Service, insider: Engine) -> None:
    chain = records(insider)
    second, third = chain[1], chain[2]
    chain[1], chain[2] = {**third, "seq": 2}, {**second, "seq": 3}
    rewrite(insider, chain)

    problem = verify(wnb)
    assert problem.startswith("record 2 does not follow record 1")
    assert "reordered" in problem


def test_records_renumbered_after_a_deletion_are_named(wnb: Service, insider: Engine) -> None:
    chain = [record for record in records(insider) if record["seq"] != 3]
    for record in chain[2:]:
        record["seq"] -= 1
    rewrite(insider, chain)

    problem = verify(wnb)
    assert problem.startswith("record 3 does not follow record 2: it holds record 4 renumbered")


def test_a_record_changed_and_every_hash_and_the_head_recomputed_is_named(wnb: Service, insider: Engine) -> None:
    chain = records(insider)
    chain[2]["actor"] = "user:mallory"
    rewrite(insider, chain, recompute_from=3)

    problem = verify(wnb)
    assert problem.startswith("record 3 is not authenticated by audit key 'test'")
    assert "recomputed" in problem


def test_a_record_deleted_and_the_rest_renumbered_and_recomputed_is_named(wnb: Service, insider: Engine) -> None:
    chain = [record for record in records(insider) if record["seq"] != 3]
    for record in chain[2:]:
        record["seq"] -= 1
    rewrite(insider, chain, recompute_from=3)

    problem = verify(wnb)
    assert problem.startswith("record 3 is not authenticated by audit key 'test'")
    assert "renumbered" in problem


def test_a_tail_cut_off_with_the_head_moved_is_named(wnb: Service, insider: Engine) -> None:
    chain = records(insider)[:-3]
    rewrite(insider, chain)

    problem = verify(wnb)
    assert problem.startswith(f"the head (record {chain[-1]['seq']}) is not authenticated by audit key 'test'")
    assert "truncated" in problem


def test_a_tail_cut_back_to_an_old_head_copied_with_its_mac_is_found_by_the_checkpoint(
    wnb: Service, insider: Engine, checkpoints: CheckpointWriter
) -> None:
    with insider.connect() as connection:
        old_head = dict(connection.execute(select(_head)).one()._mapping)  # the insider kept a copy of the head
    wnb.sweep(datetime(2026, 3, 25, 9, 0, tzinfo=UTC))  # more records, escalations of a week later
    checkpoints.take(SWEEP)
    assert checkpoints.last is not None and checkpoints.last.seq > old_head["seq"]
    with insider.begin() as connection:
        connection.execute(delete(_audit).where(_audit.c.seq > old_head["seq"]))
        connection.execute(update(_head).values(old_head))

    problem = verify(wnb, checkpoints)
    assert problem.startswith(f"the log was truncated: it ends at record {old_head['seq']} but checkpoint")
    assert f"saw record {checkpoints.last.seq}" in problem


def test_the_emptied_log_and_head_are_named(wnb: Service, insider: Engine) -> None:
    with insider.begin() as connection:
        connection.execute(delete(_audit))
        connection.execute(delete(_head))

    assert verify(wnb) == "event E1 has no audit record: the log was emptied"


def test_the_emptied_log_is_named_by_the_checkpoint_too(
    wnb: Service, insider: Engine, checkpoints: CheckpointWriter
) -> None:
    checkpoints.take(SWEEP)
    with insider.begin() as connection:
        connection.execute(delete(_audit))
        connection.execute(delete(_head))

    assert verify(wnb, checkpoints).startswith("the log was emptied: it ends at record 0 but checkpoint")


def test_a_flag_whose_records_were_deleted_is_named(wnb: Service, insider: Engine) -> None:
    chain = [record for record in records(insider) if record["action"] != "flag_raised" or record["seq"] < 3]
    for seq, record in enumerate(chain, start=1):
        record["seq"] = seq
    with insider.connect() as connection:
        flags = connection.execute(select(_audit.c.subject).where(_audit.c.action == "flag_raised")).scalars().all()
    rewrite(insider, chain, recompute_from=1)

    problem = verify(wnb, keys=AuditKeys())  # even without the key (an auditor): a flag no record names
    assert problem.startswith("flag F") and problem.endswith("has no audit record: its records were deleted")
    assert any(problem.split()[1] == subject[0] for subject in flags)


def test_an_auditor_without_the_key_finds_a_recomputed_log_by_the_checkpoint(
    wnb: Service, insider: Engine, checkpoints: CheckpointWriter
) -> None:
    checkpoints.take(SWEEP)
    chain = records(insider)
    chain[2]["actor"] = "user:mallory"
    rewrite(insider, chain, recompute_from=3)

    problem = verify(wnb, checkpoints, keys=AuditKeys())
    assert checkpoints.last is not None
    assert problem.startswith(f"record {checkpoints.last.seq} differs from checkpoint {checkpoints.last.name}")


def test_macs_stripped_and_every_hash_recomputed_are_found_by_the_checkpoint(
    wnb: Service, insider: Engine, checkpoints: CheckpointWriter
) -> None:
    checkpoints.take(SWEEP)
    chain = [{**record, "key_id": None, "mac": None} for record in records(insider)]
    rewrite(insider, chain, recompute_from=1)
    with insider.begin() as connection:
        connection.execute(update(_head).values(key_id=None, mac=None))

    assert checkpoints.last is not None
    assert verify(wnb, checkpoints).startswith(f"record {checkpoints.last.seq} differs from checkpoint")


def test_a_record_whose_mac_was_stripped_after_keyed_ones_is_named(wnb: Service, insider: Engine) -> None:
    chain = records(insider)
    chain[4].update(key_id=None, mac=None)
    rewrite(insider, chain, recompute_from=5)

    assert verify(wnb).startswith("record 5 has no MAC, yet the log carries MACs since record 1")


def test_a_checkpoint_is_refused_for_a_log_that_does_not_verify(
    wnb: Service, insider: Engine, checkpoints: CheckpointWriter
) -> None:
    from wnb.core.errors import WnbError

    checkpoints.take(SWEEP)
    wnb.sweep(datetime(2026, 3, 25, 9, 0, tzinfo=UTC))
    with insider.begin() as connection:
        connection.execute(update(_audit).where(_audit.c.seq == last_seq(insider)).values(actor="user:mallory"))

    with pytest.raises(WnbError, match="no checkpoint written: the audit log is NOT intact: record .* was changed"):
        checkpoints.take(SWEEP)


def test_an_event_entered_in_error_with_nothing_to_correct_has_its_record_too(wnb: Service, insider: Engine) -> None:
    entered_in_error = {
        "source": "pas",
        "event_id": "eie-1",
        "nhs_number": "9990000018",
        "date_of_birth": "2019-05-01",
        "service": "audiology",
        "appointment_id": "eie-a1",
        "appointment_at": "2026-03-02T10:00:00+00:00",
        "attendance": "entered-in-error",
        "recorded_at": "2026-03-02T11:00:00+00:00",
    }
    assert wnb.ingest_one(RawItem(1, "", entered_in_error), origin="test") == "accepted"

    (record,) = [record for record in records(insider) if record["action"] == "event_not_evaluated"]
    assert record["subject"][1] == "9990000018"
    with wnb.db.connect() as connection:
        assert audit.verify(connection).ok
