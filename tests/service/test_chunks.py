"""Ingestion by chunks: what a chunk reads once and writes at its end (wnb/store/people.py, items.py,
pending.py) gives exactly what storing and evaluating one event at a time gives, and a crash inside a chunk
leaves nothing of it."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from wnb.core.items import RawItem
from wnb.core.nhs import is_valid_nhs_number
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.service import Service
from wnb.store import audit
from wnb.store.people import ChunkPeople

ATTENDANCES = [
    "did-not-attend",
    "did-not-attend",
    "late-not-seen",
    "attended",
    "attended",
    "attended-late",
    "cancelled-by-patient",
    "cancelled-by-patient",
    "cancelled-by-provider",
    "booked",
]


def test_numbers(count: int) -> list[str]:
    """Synthetic NHS numbers from the 999 test range that pass Modulus 11."""
    found, candidate = [], 999_000_0000
    while len(found) < count:
        candidate += 1
        if is_valid_nhs_number(str(candidate)):
            found.append(str(candidate))
    return found


test_numbers.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def feed(seed: int, lines: int = 300) -> list[str]:
    """A mixed feed: repeats, supersessions, corrections, withdrawals, stale lines, duplicates and rejects."""
    rng = random.Random(seed)
    people = test_numbers(6)
    born = ["2025-11-20", "2019-05-01", "2012-02-29", "2009-01-15", "1980-06-01", None]
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    sent: list[dict[str, Any]] = []
    out: list[str] = []
    for number in range(lines):
        roll = rng.random()
        if sent and roll < 0.03:
            out.append(json.dumps(rng.choice(sent)))  # a re-sent duplicate
            continue
        if roll < 0.05:
            out.append(json.dumps({"source": "pas", "event_id": f"bad{number}", "nhs_number": "9990000019"}))
            continue
        person = rng.randrange(len(people))
        at = start + timedelta(days=rng.randrange(0, 200), hours=rng.randrange(8, 17))
        recorded = start + timedelta(days=number // 2, minutes=number)
        attendance = "entered-in-error" if roll > 0.985 else rng.choice(ATTENDANCES)
        item = {
            "source": rng.choice(["pas", "pas", "community"]),
            "event_id": f"e{number}",
            "nhs_number": people[person],
            "service": rng.choice(["community-paediatrics", "paediatric-diabetes"]),
            "appointment_id": f"a{person}-{rng.randrange(8)}",  # few per person: outcomes replace each other
            "appointment_at": at.isoformat(),
            "attendance": attendance,
            "recorded_at": (recorded - timedelta(days=30) if roll > 0.97 else recorded).isoformat(),
        }
        if born[person] and rng.random() < 0.8:
            item["date_of_birth"] = born[person]
        if rng.random() < 0.2:
            item["priority"] = rng.choice(["routine", "urgent", "two-week-wait"])
        if rng.random() < 0.15:
            item["outcome"] = rng.choice(["discharged", "another-appointment"])
        sent.append(item)
        out.append(json.dumps(item))
    return out


def context(people: list[str]) -> list[RawItem]:
    records = [
        {"nhs_number": people[1], "statuses": [{"kind": "child-protection-plan", "start": "2025-01-01"}]},
        {"nhs_number": people[2], "statuses": [{"kind": "child-in-need", "start": "2025-06-01"}]},
        {"nhs_number": people[4], "care_and_support_needs": True},
        {"nhs_number": people[5], "date_of_birth": "2016-08-08", "complex_health_needs": True},
    ]
    return [RawItem(n, json.dumps(r), r) for n, r in enumerate(records, start=1)]


class ProcessDied(BaseException):
    """Stands for the process being killed: no `except Exception` of wnb's (a row's reject, a chunk tried item by
    item) may catch it, as none could catch a kill."""


class TickingClock:
    """A second later at every call, from the same start: two runs see the same times."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls, self.fail_at = 0, fail_at

    def __call__(self) -> datetime:
        self.calls += 1
        if self.calls == self.fail_at:
            raise ProcessDied("the process died here")
        return datetime(2026, 8, 3, 9, tzinfo=UTC) + timedelta(seconds=self.calls)


def items(lines: list[str]) -> Iterator[RawItem]:
    for number, line in enumerate(lines, start=1):
        yield RawItem(number, line, json.loads(line))


def dump(db: Engine) -> dict[str, list[Any]]:
    """Every row of every table, in primary-key order (the audit chain's hashes included)."""
    with db.connect() as connection:
        names = [row[0] for row in connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))]
        return {
            name: [tuple(row) for row in connection.execute(text(f"SELECT * FROM {name} ORDER BY 1"))]
            for name in sorted(names)
        }


def run(tmp_path: Path, ruleset: Ruleset, lines: list[str], chunk: int, name: str) -> Engine:
    db = open_database(f"sqlite:///{tmp_path / name}")
    service = Service(db, ruleset, TickingClock(), notify={"safeguarding-nurse": ("nurse@example.org",)})
    service.import_context(context(test_numbers(6)), origin="context")
    service.ingest(items(lines), origin="feed", chunk=chunk)
    service.sweep(datetime(2026, 12, 1, tzinfo=UTC))
    return db


@pytest.mark.parametrize("seed", [1, 2])
def test_a_chunk_writes_exactly_what_one_event_at_a_time_writes(tmp_path: Path, ruleset: Ruleset, seed: int) -> None:
    lines = feed(seed)
    one_by_one = run(tmp_path, ruleset, lines, chunk=1, name="one.db")
    chunked = run(tmp_path, ruleset, lines, chunk=1000, name="chunked.db")
    try:
        expected, found = dump(one_by_one), dump(chunked)
        assert len(expected["task"]) > 10 and len(expected["link"]) > 20  # the feed raises and repeats things
        assert any(row for row in expected["flag"] if row[4] == "entered-in-error")  # and withdraws some
        assert found == expected
    finally:
        one_by_one.dispose()
        chunked.dispose()


def test_a_crash_inside_a_chunk_leaves_nothing_of_it_and_a_resend_completes_it(
    tmp_path: Path, ruleset: Ruleset
) -> None:
    lines = feed(1)
    clean = run(tmp_path, ruleset, lines, chunk=100, name="clean.db")
    db = open_database(f"sqlite:///{tmp_path / 'crashed.db'}")
    try:
        # The clock is read once per line inside the chunk's transaction: line 250 of the third chunk of 100,
        # after corrections in that chunk have already written its pending rows to the tables.
        crashing = Service(db, ruleset, TickingClock(fail_at=4 + 250), notify={"safeguarding-nurse": ("n@x.org",)})
        crashing.import_context(context(test_numbers(6)), origin="context")
        with pytest.raises(ProcessDied):
            crashing.ingest(items(lines), origin="feed", chunk=100)
        stored = dump(db)
        assert stored["event"] and max(int(row[2][1:]) for row in stored["event"]) < 200  # two chunks, not three
        # Rejects (bad…) and stale outcomes (e…) alike: none of the crashed chunk's is left.
        assert all(int(row[5].removeprefix("bad").removeprefix("e")) < 200 for row in stored["reject"])

        resumed = Service(db, ruleset, TickingClock(), notify={"safeguarding-nurse": ("n@x.org",)})
        resumed.ingest(items(lines), origin="feed", chunk=100)
        resumed.sweep(datetime(2026, 12, 1, tzinfo=UTC))
        with db.connect() as connection:
            assert audit.verify(connection).ok
        after, expected = dump(db), dump(clean)
        for table in ("flag", "task", "follow_up"):
            assert [row[1:4] for row in after[table]] == [row[1:4] for row in expected[table]]
        assert sorted(row[1:3] for row in after["event"]) == sorted(row[1:3] for row in expected["event"])
    finally:
        db.dispose()
        clean.dispose()


def test_an_evaluation_of_a_person_the_chunk_did_not_read_is_refused(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'wnb.db'}")
    try:
        with db.connect() as connection:
            people = ChunkPeople(connection, {test_numbers(1)[0]}, "discharge-review")
            assert people.history(test_numbers(1)[0]) == []
            with pytest.raises(LookupError):
                people.history(test_numbers(2)[1])
    finally:
        db.dispose()
