"""A large file's lines checked in a second process (wnb/ingest/ahead.py): the same rows as checking them in
the ingesting process, and a reader process that dies or fails ends the ingest with whole chunks only."""

from __future__ import annotations

import json
import os
import pickle
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.service.test_chunks import TickingClock, context, dump, feed, test_numbers
from wnb.core.errors import InvalidEvent, WnbError
from wnb.core.items import CheckedItem, RawItem
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.ingest import read_file
from wnb.ingest.ahead import AHEAD_FROM_BYTES, CheckedAhead, read_checked
from wnb.ingest.hl7 import MessageProblem
from wnb.service import Service
from wnb.store import audit

NOTIFY = {"safeguarding-nurse": ("nurse@example.org",)}


def write_feed(path: Path, lines: list[str]) -> Path:
    # A truncated line and a line that is not an object: rejected by the reader itself, not by the model.
    path.write_text("\n".join([*lines[:10], '{"source": "pas", "event_id"', "[1, 2]", *lines[10:]]) + "\n")
    return path


def ingested(tmp_path: Path, ruleset: Ruleset, name: str, items: object, chunk: int = 100) -> Engine:
    db = open_database(f"sqlite:///{tmp_path / name}")
    service = Service(db, ruleset, TickingClock(), notify=NOTIFY)
    service.import_context(context(test_numbers(6)), origin="context")
    service.ingest(items, origin="feed.ndjson", chunk=chunk)  # type: ignore[arg-type]
    service.sweep(datetime(2026, 12, 1, tzinfo=UTC))
    return db


@pytest.mark.parametrize("seed", [1, 2])
def test_a_file_checked_ahead_writes_exactly_what_checking_it_here_writes(
    tmp_path: Path, ruleset: Ruleset, seed: int
) -> None:
    path = write_feed(tmp_path / "feed.ndjson", feed(seed, lines=400))
    here = ingested(tmp_path, ruleset, "here.db", read_file(path))
    ahead = ingested(tmp_path, ruleset, "ahead.db", CheckedAhead(path, "ndjson", batch=7))
    try:
        expected, found = dump(here), dump(ahead)
        assert len(expected["reject"]) > 5 and len(expected["task"]) > 10
        assert found == expected
    finally:
        here.dispose()
        ahead.dispose()


def test_the_reader_process_dying_fails_the_ingest_with_whole_chunks_stored_and_a_resend_completes_it(
    tmp_path: Path, ruleset: Ruleset
) -> None:
    lines = feed(1, lines=3000)
    path = write_feed(tmp_path / "feed.ndjson", lines)
    db = open_database(f"sqlite:///{tmp_path / 'killed.db'}")
    committed: list[int] = []
    try:
        service = Service(db, ruleset, TickingClock(), notify=NOTIFY)
        service.import_context(context(test_numbers(6)), origin="context")
        reader = CheckedAhead(path, "ndjson", batch=10)

        def kill_the_reader(lines_done: int) -> None:  # after each chunk's commit
            if not committed:
                os.kill(reader.pid, signal.SIGKILL)
            committed.append(lines_done)

        with pytest.raises(WnbError, match="stopped .* before the end of the file"):
            service.ingest(reader, origin="feed.ndjson", chunk=100, progress=kill_the_reader)
        assert len(committed) < 30  # it did not get to the end (what the pipe held was still ingested)
        # Exactly the committed chunks' lines are stored: what ingesting those lines alone stores.
        stored = dump(db)
        done = sum(committed)
        assert done == 100 * len(committed)
        prefix = tmp_path / "prefix.ndjson"
        prefix.write_text("\n".join(path.read_text().splitlines()[:done]) + "\n")
        alone = open_database(f"sqlite:///{tmp_path / 'alone.db'}")
        other = Service(alone, ruleset, TickingClock(), notify=NOTIFY)
        other.import_context(context(test_numbers(6)), origin="context")
        other.ingest(read_file(prefix), origin="feed.ndjson", chunk=100)
        assert stored == dump(alone)
        alone.dispose()

        Service(db, ruleset, TickingClock(), notify=NOTIFY).ingest(
            CheckedAhead(path, "ndjson", batch=10), origin="feed.ndjson", chunk=100
        )
        clean = ingested(tmp_path, ruleset, "clean.db", read_file(path))
        after, expected = dump(db), dump(clean)
        clean.dispose()
        for table in ("flag", "task", "follow_up"):
            assert [row[1:4] for row in after[table]] == [row[1:4] for row in expected[table]]
        assert sorted(row[1:3] for row in after["event"]) == sorted(row[1:3] for row in expected["event"])
        with db.connect() as connection:
            assert audit.verify(connection).ok
    finally:
        db.dispose()


def test_an_error_in_the_reader_process_fails_the_ingest_naming_it(tmp_path: Path) -> None:
    path = write_feed(tmp_path / "feed.ndjson", feed(1, lines=20))
    with pytest.raises(WnbError, match="unknown format 'xml'"):
        list(CheckedAhead(path, "xml"))


def test_a_large_file_is_checked_ahead_and_a_small_one_here(tmp_path: Path) -> None:
    small = write_feed(tmp_path / "small.ndjson", feed(1, lines=50))
    assert all(isinstance(item, RawItem) for item in read_checked(small))
    lines = feed(1, lines=400)
    large = write_feed(tmp_path / "large.ndjson", lines * (AHEAD_FROM_BYTES // len("\n".join(lines)) + 1))
    items = read_checked(large)
    first = next(items)
    items.close()
    assert isinstance(first, CheckedItem)
    with pytest.raises(WnbError, match="no such file"):
        read_checked(tmp_path / "missing.ndjson")  # refused at once, not at the first item


def test_a_rejected_line_crosses_the_pipe_whole() -> None:
    problem = MessageProblem("MSH-10", "no message control id")
    problem.identity = {"source": "PAS", "event_id": None}
    line = RawItem(3, "MSH|...", problem)
    copy = pickle.loads(pickle.dumps(CheckedItem(3, problem, item=line)))
    assert type(copy.event) is MessageProblem and isinstance(copy.event, InvalidEvent)
    assert (copy.event.field, copy.event.reason, copy.event.identity, str(copy.event)) == (
        "MSH-10",
        "no message control id",
        {"source": "PAS", "event_id": None},
        "MSH-10: no message control id",
    )
    assert copy.item is not None and copy.item.text == "MSH|..." and json.dumps(copy.item.line) == "3"
