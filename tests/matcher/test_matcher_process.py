"""The rules of a long ingest's evaluations run in a second process (wnb/matcher/process.py): the same outcomes
as running them here, and a matcher process that dies or fails fails its chunk, which leaves nothing."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.matcher.test_engine import DEFAULT, a_document, documents
from tests.service.test_chunks import TickingClock, context, dump, feed, test_numbers
from wnb.core.errors import EngineError
from wnb.core.ruleset import Ruleset
from wnb.database import open_database
from wnb.ingest import read_file
from wnb.matcher.process import MatcherProcess, rules_outcome
from wnb.service import Service
from wnb.store import audit

NOTIFY = {"safeguarding-nurse": ("nurse@example.org",)}


@pytest.fixture(scope="module")
def process() -> Iterator[MatcherProcess]:
    matcher = MatcherProcess(DEFAULT)
    yield matcher
    matcher.close()


@settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(documents(DEFAULT), min_size=1, max_size=8))
def test_the_process_gives_each_document_the_outcome_it_has_here(
    process: MatcherProcess, batch: list[dict[str, Any]]
) -> None:
    assert list(process.outcomes(batch)) == [rules_outcome(DEFAULT, facts) for facts in batch]


def test_a_document_the_matcher_refuses_is_refused_with_the_same_error(process: MatcherProcess) -> None:
    with pytest.raises(EngineError) as here:
        rules_outcome(DEFAULT, a_document(age_years=None))
    outcomes = process.outcomes([a_child := a_document(), a_document(age_years=None), a_child])
    assert next(outcomes) == rules_outcome(DEFAULT, a_child)
    with pytest.raises(EngineError, match=str(here.value)):
        next(outcomes)
    assert process.broken  # it still owes the third outcome: a caller starts another process


def test_a_matcher_process_that_died_fails_the_evaluation_asking_it() -> None:
    matcher = MatcherProcess(DEFAULT)
    try:
        os.kill(matcher.pid, signal.SIGKILL)
        deadline = time.monotonic() + 60  # waits for the kill to land; asserts nothing about speed
        while not matcher.broken and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(EngineError, match="rule matcher process stopped"):
            list(matcher.outcomes([a_document()]))
    finally:
        matcher.close()


def test_a_matcher_process_killed_between_chunks_is_started_again_and_nothing_is_lost(
    tmp_path: Path, ruleset: Ruleset
) -> None:
    path = tmp_path / "feed.ndjson"
    path.write_text("\n".join(feed(1, lines=600)) + "\n")
    pids: list[int] = []
    db = open_database(f"sqlite:///{tmp_path / 'killed.db'}")
    service = Service(db, ruleset, TickingClock(), notify=NOTIFY)
    service.import_context(context(test_numbers(6)), origin="context")

    def kill_the_matcher(lines_done: int) -> None:  # after each chunk's commit
        matcher = service.rules_beside.process  # started for the second chunk
        if matcher is not None and matcher.pid not in pids:
            pids.append(matcher.pid)
            os.kill(matcher.pid, signal.SIGKILL)

    service.ingest(read_file(path), origin="feed.ndjson", chunk=100, progress=kill_the_matcher)
    clean = open_database(f"sqlite:///{tmp_path / 'clean.db'}")
    whole = Service(clean, ruleset, TickingClock(), notify=NOTIFY)
    whole.import_context(context(test_numbers(6)), origin="context")
    whole.ingest(read_file(path), origin="feed.ndjson", chunk=100)
    try:
        assert len(pids) >= 4  # one process per chunk after the first, each killed after its chunk
        assert dump(db) == dump(clean)
        with db.connect() as connection:
            assert audit.verify(connection).ok
    finally:
        db.dispose()
        clean.dispose()


def test_a_long_ingest_with_its_rules_beside_writes_what_one_chunk_writes(tmp_path: Path, ruleset: Ruleset) -> None:
    lines = feed(2, lines=400)
    path = tmp_path / "feed.ndjson"
    path.write_text("\n".join(lines) + "\n")
    dumps = []
    for name, chunk in (("one.db", 1000), ("many.db", 37)):  # one chunk: rules here; many: in the process
        db = open_database(f"sqlite:///{tmp_path / name}")
        service = Service(db, ruleset, TickingClock(), notify=NOTIFY)
        service.import_context(context(test_numbers(6)), origin="context")
        service.ingest(read_file(path), origin="feed.ndjson", chunk=chunk)
        service.sweep(datetime(2026, 12, 1, tzinfo=UTC))
        dumps.append(dump(db))
        db.dispose()
    assert len(dumps[0]["task"]) > 10 and dumps[0] == dumps[1]
