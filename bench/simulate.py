#!/usr/bin/env python
"""Simulation benchmark: replaying stored history under a ruleset, beside ingesting it in the same run.

    .venv/bin/python bench/simulate.py                 # 5,000 synthetic events (about a minute)
    .venv/bin/python bench/simulate.py --events 20000  # larger

1. generate a synthetic feed (bench/synthetic.py) into a temporary folder;
2. baseline: ingest it into a fresh SQLite file with Service.ingest (what `wnb ingest` does), then one sweep;
3. simulate the same ruleset over the whole period (what `wnb rules simulate` does) and time it.

Prints events per second of both, the ratio, and whether the replay of the same ruleset raised exactly what
was raised (it must: a simulation that differs with no change of rules would be a defect).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synthetic import generate  # noqa: E402
from wnb.database import open_database  # noqa: E402
from wnb.ingest.ndjson import read  # noqa: E402
from wnb.logs import configure  # noqa: E402
from wnb.rule_files import load_ruleset  # noqa: E402
from wnb.service import Service  # noqa: E402
from wnb.service.simulate import simulate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="event lines to generate (default 5000)")
    parser.add_argument("--rules", type=Path, default=ROOT / "rules" / "default", help="ruleset directory")
    args = parser.parse_args()
    configure(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="wnb-bench-simulate-") as folder:
        out = Path(folder)
        generate(events=args.events, children=max(args.events // 6, 10), seed=1, out=out, progress=False)
        ruleset = load_ruleset(args.rules)
        db = open_database(f"sqlite:///{out / 'real.db'}")
        service = Service(db, ruleset)
        service.import_context(read(out / "context.ndjson"), origin="context")
        started = time.perf_counter()
        service.ingest(read(out / "events.ndjson"), origin="events")
        service.sweep()
        ingest_seconds = time.perf_counter() - started
        started = time.perf_counter()
        result = simulate(db, ruleset, datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))
        simulate_seconds = time.perf_counter() - started
        db.dispose()
    ingest_rate = args.events / ingest_seconds
    simulate_rate = result.events_replayed / simulate_seconds
    print(f"events generated:           {args.events}")
    print(f"baseline ingest + sweep:    {ingest_seconds:7.1f} s  {ingest_rate:8.0f} events/s")
    print(
        f"simulate (same ruleset):    {simulate_seconds:7.1f} s  {simulate_rate:8.0f} events/s "
        f"({result.events_replayed} accepted events replayed)"
    )
    print(f"simulate / ingest time:     {simulate_seconds / ingest_seconds:7.2f}x")
    differing = [row.as_dict() for row in result.by_rule if row.differs]
    print(f"same ruleset, same result:  {'yes' if not result.differs else 'NO'}")
    for row in differing:
        print(f"  differs: {row}")
    for item in (result.only_actual + result.only_simulated)[:10]:
        print(f"  one side only: {item}")


if __name__ == "__main__":
    main()
