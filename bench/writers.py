"""Concurrent writers on one SQLite file: queued on wnb's in-process writer lock, against SQLite's busy handler.

`wnb serve` answers each request on a worker thread, so several evaluations want SQLite's single write lock at
once. Without an in-process lock they take turns through SQLite's busy handler, which sleeps in growing steps
(1, 2, 5, 10 … 100 ms) and retries; with it (wnb/store/db.py `writing`) they queue and start the moment the
writer before them commits. This runs the same synthetic events through `Service.ingest_one_explained` on
`--threads` threads both ways, each in a fresh process on a fresh database, and prints events/s, CPU per event
and p50/p99/max latency side by side.

    .venv/bin/python bench/writers.py [--events 3000] [--threads 8]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(mode: str, events: int, threads: int) -> dict[str, Any]:
    """One measurement in this process: `lock` (wnb as it is) or `busy` (SQLite's busy handler only)."""
    from bench.synthetic import generate
    from wnb.core.items import RawItem
    from wnb.rule_files import load_ruleset
    from wnb.service import Service
    from wnb.store import db as store

    if mode == "busy":
        store._writer_lock = lambda engine: nullcontext()  # the baseline: no in-process queue
    work = Path(tempfile.mkdtemp(prefix="wnb-bench-writers-"))
    generate(events=events * 2, children=max(500, events // 3), seed=7, out=work / "data", progress=False)
    url = f"sqlite:///{work / 'wnb.db'}"
    env = dict(os.environ, WNB_DATABASE_URL=url, WNB_RULES_DIR=str(ROOT / "rules" / "default"))
    wnb = Path(sys.executable).parent / "wnb"
    subprocess.run(
        [str(wnb), "context", "import", str(work / "data" / "context.ndjson")], env=env, check=True, capture_output=True
    )
    service = Service(store.open_database(url), load_ruleset(ROOT / "rules" / "default"))
    items: list[Any] = []
    for index, line in enumerate((work / "data" / "events.ndjson").read_text().splitlines()):
        try:
            items.append(RawItem(index, line, json.loads(line)))
        except json.JSONDecodeError:
            continue
        if len(items) == events:
            break
    latencies: list[float] = []
    position = [0]
    guard = threading.Lock()

    def worker() -> None:
        while True:
            with guard:
                if position[0] >= len(items):
                    return
                item = items[position[0]]
                position[0] += 1
            started = time.perf_counter()
            service.ingest_one_explained(item, "api:bench", "client:bench")
            latencies.append(time.perf_counter() - started)

    before, began = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed, after = time.perf_counter() - began, resource.getrusage(resource.RUSAGE_SELF)
    latencies.sort()
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {
        "rate": len(latencies) / elapsed,
        "cpu_ms": cpu * 1000 / len(latencies),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--mode", choices=["lock", "busy"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run(args.mode, args.events, args.threads)))
        return
    print(
        f"{args.events} synthetic events through Service.ingest_one_explained on {args.threads} threads,"
        " one SQLite file, each way in a fresh process"
    )
    print(f"{'':34} {'events/s':>9} {'CPU ms/event':>13} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for mode, name in (("busy", "SQLite busy handler (baseline)"), ("lock", "in-process writer lock (wnb)")):
        command = [sys.executable, __file__, "--mode", mode, "--events", str(args.events)]
        done = subprocess.run([*command, "--threads", str(args.threads)], capture_output=True, text=True, check=True)
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{name:34} {figures['rate']:>9.0f} {figures['cpu_ms']:>13.2f} {figures['p50_ms']:>8.1f}"
            f" {figures['p99_ms']:>8.1f} {figures['max_ms']:>8.1f}"
        )
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
