#!/usr/bin/env python
"""Every table of a wnb SQLite file as text, so two versions of wnb can be shown to store the same bytes.

    .venv/bin/python bench/dump_tables.py ingest run.db --data bench/out   # the bench year, on a fixed clock
    .venv/bin/python bench/dump_tables.py dump run.db > run.tables          # every row of every table
    diff before.tables after.tables
    .venv/bin/python bench/dump_tables.py diff before.db after.db          # the same, streamed: rows per
                                                                           # table, first difference, exit 1

`ingest` does what bench/ingest.py's real run does (Service.import_context over OUT/context.ndjson, then
Service.ingest over OUT/events.ndjson read as `wnb ingest` reads it, default chunk) into a fresh SQLite file, but
with a clock that starts at a fixed instant and moves 1 ms each time it is read: the real clock would put
different receive times, and so different audit hashes, in every run. Run it with each version of wnb
(PYTHONPATH=<a checkout of the other version> for the other one) on the same data.

`dump` reads the file with the sqlite3 module only (no wnb code): each table by name, each row in rowid order,
as the repr of the values SQLite holds, so a changed type, digit or byte shows.
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from itertools import zip_longest
from pathlib import Path

START = datetime(2026, 3, 1, tzinfo=UTC)


class TickingClock:
    """Starts at START and moves 1 ms every time it is read: the same times in every run of the same feed."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def ingest(database: Path, data: Path, rules: Path) -> None:
    from wnb.ruleset import load_ruleset

    from wnb.database import open_database
    from wnb.ingest import read_file
    from wnb.ingest.ndjson import read as read_ndjson
    from wnb.service import Service

    try:  # as `wnb ingest` reads a file: a large one's lines checked by a second process
        from wnb.ingest.ahead import read_checked as read_events
    except ImportError:  # an older wnb
        read_events = read_file  # type: ignore[assignment]

    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    engine = open_database(f"sqlite:///{database}")
    service = Service(engine, load_ruleset(rules), TickingClock())
    context, events = data / "context.ndjson", data / "events.ndjson"
    started, cpu = time.perf_counter(), time.process_time()
    print(dict(service.import_context(read_ndjson(context), origin=f"context:{context.name}")), file=sys.stderr)
    with closing(read_events(events)) as items:
        print(dict(service.ingest(items, origin=events.name)), file=sys.stderr)
    helpers = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"{time.perf_counter() - started:.1f} s wall, {time.process_time() - cpu:.1f} s CPU in this process, "
        f"{helpers.ru_utime + helpers.ru_stime:.1f} s in its helper processes (reader, matcher)",
        file=sys.stderr,
    )
    engine.dispose()


def dump(database: Path) -> Iterator[str]:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        for name in names:
            for row in connection.execute(f'SELECT * FROM "{name}" ORDER BY rowid'):
                yield f"{name}\t{row!r}"
    finally:
        connection.close()


def diff(first: Path, second: Path) -> int:
    """0 when both files hold the same rows; else 1, after naming the first difference of each table."""
    rows: dict[str, int] = {}
    differing: dict[str, tuple[int, str | None, str | None]] = {}
    missing = None
    for left, right in zip_longest(dump(first), dump(second), fillvalue=missing):
        table = (left or right or "").split("\t", 1)[0]
        rows[table] = rows.get(table, 0) + 1
        if left != right and table not in differing:
            differing[table] = (rows[table], left, right)
    for table, count in rows.items():
        print(f"{table:16} {count:>9,} rows  {'DIFFERENT' if table in differing else 'same'}")
        if table in differing:
            at, left, right = differing[table]
            print(f"    first difference at row {at}:\n    {left}\n    {right}")
    print(f"{len(differing)} table(s) differ" if differing else "identical")
    return 1 if differing else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("ingest", help="the bench data into a fresh SQLite file, on a fixed clock")
    run.add_argument("database", type=Path)
    run.add_argument("--data", type=Path, default=Path("bench/out"), help="folder of events.ndjson and context.ndjson")
    run.add_argument("--rules", type=Path, default=Path(__file__).resolve().parent.parent / "rules" / "default")
    show = commands.add_parser("dump", help="every row of every table, as text")
    show.add_argument("database", type=Path)
    compare = commands.add_parser("diff", help="compare every row of every table of two files")
    compare.add_argument("first", type=Path)
    compare.add_argument("second", type=Path)
    args = parser.parse_args()
    if args.command == "ingest":
        ingest(args.database, args.data, args.rules)
    elif args.command == "diff":
        sys.exit(diff(args.first, args.second))
    else:
        for line in dump(args.database):
            sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
