#!/usr/bin/env python
"""Do two versions of wnb store exactly the same rows? Ingest a feed with a ticking clock, then diff databases.

A speed change to ingestion must not change what it stores. With the real clock every `received_at` (and so
every audit hash) differs between runs; with a clock that ticks a fixed step per call from a fixed start, two
runs of the same feed through the same logic write byte-identical tables.

    # the code under test (this checkout)
    .venv/bin/python bench/compare_runs.py run bench/out/quick after.db
    # the code before the change, from an exported copy of its wnb/ package (run from outside that
    # directory: PYTHONPATH comes before the editable install of this checkout)
    git archive main wnb | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before .venv/bin/python bench/compare_runs.py run bench/out/quick before.db
    .venv/bin/python bench/compare_runs.py diff before.db after.db

`run DIR DB` imports DIR/context.ndjson and ingests DIR/events.ndjson (bench/synthetic.py's files) exactly
as `wnb context import` and `wnb ingest` do, into a fresh SQLite file. `diff A B` compares every table of the
two files row by row (in rowid order, every column, the audit chain's hashes included) and exits non-zero at
any difference, naming the first one of each table.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


class TickingClock:
    """The same instants in every run: a fixed step later at each call."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        self.now, self.step = start, step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def run(feed: Path, db: Path, rules: Path, chunk: int | None) -> None:
    import wnb
    from wnb.ingest import read_file

    try:  # what `wnb ingest` reads through, where this version of wnb has it
        from wnb.ingest.ahead import read_checked as read_events
    except ImportError:
        read_events = read_file  # type: ignore[assignment]
    from wnb.ingest.ndjson import read as read_ndjson
    from wnb.ruleset import load_ruleset
    from wnb.service import Service
    from wnb.store.db import open_database

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    print(f"wnb from {Path(wnb.__file__).parent}", file=sys.stderr)
    engine = open_database(f"sqlite:///{db}")
    clock = TickingClock(datetime(2026, 11, 26, tzinfo=UTC), timedelta(milliseconds=10))
    service = Service(engine, load_ruleset(rules), clock)
    started, cpu = time.perf_counter(), time.process_time()
    service.import_context(read_ndjson(feed / "context.ndjson"), origin="context.ndjson")
    events = feed / "events.ndjson"
    counts = service.ingest(read_events(events), origin=events.name, **({"chunk": chunk} if chunk else {}))
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"{dict(counts)} in {time.perf_counter() - started:.1f} s wall, {time.process_time() - cpu:.1f} s CPU "
        f"in this process, {children.ru_utime + children.ru_stime:.1f} s in its helper processes (reader, matcher)",
        file=sys.stderr,
    )
    engine.dispose()


def _rows(connection: sqlite3.Connection, table: str) -> Iterator[tuple[Any, ...]]:
    yield from connection.execute(f'SELECT * FROM "{table}" ORDER BY rowid')


def diff(first: Path, second: Path) -> int:
    """0 when every table holds the same rows; 1 otherwise, after naming the first difference of each table."""
    a, b = sqlite3.connect(f"file:{first}?mode=ro", uri=True), sqlite3.connect(f"file:{second}?mode=ro", uri=True)
    listing = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    tables_a, tables_b = [r[0] for r in a.execute(listing)], [r[0] for r in b.execute(listing)]
    if tables_a != tables_b:
        print(f"different tables: {tables_a} vs {tables_b}")
        return 1
    differences = 0
    for table in tables_a:
        digest_a, digest_b, count, first_bad = hashlib.sha256(), hashlib.sha256(), 0, None
        for row_a, row_b in _zip_longest(_rows(a, table), _rows(b, table)):
            digest_a.update(repr(row_a).encode())
            digest_b.update(repr(row_b).encode())
            count += 1
            if row_a != row_b and first_bad is None:
                first_bad = (count, row_a, row_b)
        same = digest_a.digest() == digest_b.digest() and first_bad is None
        print(f"{table:16} {count:>9,} rows  {'same' if same else 'DIFFERENT'}")
        if not same:
            differences += 1
            if first_bad:
                print(f"    first difference at row {first_bad[0]}:\n    {first_bad[1]!r}\n    {first_bad[2]!r}")
    print("identical" if not differences else f"{differences} table(s) differ")
    return 1 if differences else 0


def _zip_longest(left: Iterator[Any], right: Iterator[Any]) -> Iterator[tuple[Any, Any]]:
    missing = object()
    while True:
        row_a, row_b = next(left, missing), next(right, missing)
        if row_a is missing and row_b is missing:
            return
        yield (None if row_a is missing else row_a), (None if row_b is missing else row_b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser("run", help="ingest DIR's context and events into a fresh SQLite file DB")
    ingest.add_argument("feed", type=Path)
    ingest.add_argument("db", type=Path)
    ingest.add_argument("--rules", type=Path, default=REPO / "rules" / "default")
    ingest.add_argument("--chunk", type=int, default=None, help="lines per transaction (default: Service's)")
    compare = commands.add_parser("diff", help="compare every table of two SQLite files")
    compare.add_argument("first", type=Path)
    compare.add_argument("second", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        run(args.feed, args.db, args.rules, args.chunk)
    else:
        sys.exit(diff(args.first, args.second))


if __name__ == "__main__":
    main()
