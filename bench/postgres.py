#!/usr/bin/env python
"""PostgreSQL benchmark: the synthetic year of bench/ingest.py through 1, 2 and 3 replicas, beside raw inserts.

    .venv/bin/python bench/postgres.py --quick         # 20,000 events, 3,500 children
    .venv/bin/python bench/postgres.py                 # 300,000 events, 50,000 children (long)
    .venv/bin/python bench/postgres.py --replicas 1 2  # only these replica counts

A replica is a separate Python process running the real service path (`Service.ingest` over
`wnb.ingest.read_file`, the default chunk) on one fresh PostgreSQL database per replica count, opened with
`wnb.store.db.open_database`. Events are partitioned by child (NHS number) across the replicas, so each
child's events keep their order. Every replica starts (imports wnb, loads the ruleset, connects) and says it
is ready; when all are, the parent tells them all to go, and the figure is event lines over the wall time
from that moment to the exit of the last (a replica is a long-running server, so its start-up is no part of
ingesting; on 2 busy CPUs starting three processes at once took about 5 s). A chunk whose transaction fails on a conflict
with another replica (a unique or serialisation error) is rolled back and sent again, as a client would
resend; the report counts these resends. Then:

- each run's flags and tasks must equal the 1-replica run's, and its audit chain must verify;
- baseline "raw inserts": every row the 1-replica run wrote, inserted with no logic into a fresh database
  in the same transactions (bench/ingest.py's raw worker, unchanged);
- a profile: one more run with the most replicas, replica 0 under cProfile counting CPU time (top functions):
  on a shared machine, wall time would charge each function with the time the replica waited for a CPU;
- where the time goes, from the server's side: while the replicas run, the parent samples what their
  PostgreSQL backends are doing every 50 ms (pg_stat_activity: working, waiting for a lock and which,
  idle in a transaction while the replica computes, between transactions);
- the CPU each event costs: the replicas' own CPU time (os.wait4) plus that of their PostgreSQL backends
  (/proc/<pid>/stat, read by each replica just before it disconnects; only when the server runs on this
  machine), and how busy the machine's CPUs were during the run (/proc/stat): with every CPU busy, more
  replicas cannot go faster, and CPUs / (CPU per event) is the ceiling.

Databases are named wnb_bench_<hex> and dropped at the end (--keep keeps them). PostgreSQL at
--server (default postgresql+psycopg://postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import io
import json
import os
import pstats
import random
import secrets
import subprocess
import sys
import threading
import time
import zlib
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from ingest import code_fingerprint, log, own_peak_mb, prepare_data  # noqa: E402
from ingest import run_phase as run_ingest_phase  # noqa: E402

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
MAX_RESENDS = 200


# ======================================================================================================
# workers: each runs in its own process, prints one JSON object on stdout
# ======================================================================================================


def worker_context(spec: dict[str, Any]) -> dict[str, Any]:
    """`wnb context import FILE` into the fresh database (and its schema, by open_database)."""
    from wnb.database import open_database
    from wnb.ingest.ndjson import read as read_ndjson
    from wnb.rule_files import load_ruleset
    from wnb.service import Service

    engine = open_database(spec["db"])
    path = Path(spec["context"])
    t0 = time.perf_counter()
    counts = Service(engine, load_ruleset(spec["rules"])).import_context(read_ndjson(path), origin=path.name)
    engine.dispose()
    return {"counts": dict(counts), "call_seconds": time.perf_counter() - t0}


def _is_conflict(error: BaseException) -> bool:
    """A failure another replica caused (unique key, serialisation, deadlock): the chunk may be sent again."""
    import psycopg.errors
    from sqlalchemy.exc import DBAPIError

    if isinstance(error, DBAPIError):
        error = error.orig or error
    return isinstance(
        error,
        psycopg.errors.UniqueViolation | psycopg.errors.SerializationFailure | psycopg.errors.DeadlockDetected,
    )


# Every replica names the whole feed as its origin, as replicas behind a load balancer receive parts of one feed:
# a bad row's reject is then the same, whichever replica refuses it (a reject's fingerprint includes the origin).
FEED = "events.ndjson"


def worker_replica(spec: dict[str, Any]) -> dict[str, Any]:
    """One replica: Service.ingest over its share of the events, one chunk (one transaction) at a time."""
    started = time.perf_counter()
    from wnb.database import open_database
    from wnb.ingest import read_file
    from wnb.rule_files import load_ruleset
    from wnb.service import Service

    engine = open_database(spec["db"], create=False)
    backends = _backend_pids(engine)
    service = Service(engine, load_ruleset(spec["rules"]))
    chunk = inspect.signature(Service.ingest).parameters["chunk"].default
    with engine.connect():
        pass  # connected, so the start is over: ready, and wait for the parent's word to go
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    path = Path(spec["events"])
    counts: dict[str, int] = {}
    commits: list[str] = []
    resends = 0
    # CPU time, not wall time: waits for the server show in the activity sampling, and on a busy machine wall time
    # would charge each function with the time the process spent waiting for a CPU.
    profiler = cProfile.Profile(time.process_time) if spec.get("profile") else None
    ingest_started_at = datetime.now(UTC).isoformat()
    t0, c0 = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    items = iter(read_file(path))
    while batch := list(islice(items, chunk)):
        for attempt in range(1, MAX_RESENDS + 1):
            try:
                done = service.ingest(batch, origin=FEED, chunk=chunk)  # one transaction
                break
            except Exception as error:
                if not _is_conflict(error) or attempt == MAX_RESENDS:
                    raise
                resends += 1
                time.sleep(random.uniform(0, 0.02))
        commits.append(datetime.now(UTC).isoformat())
        for status, number in done.items():
            counts[status] = counts.get(status, 0) + number
    if profiler:
        profiler.disable()
    call, cpu = time.perf_counter() - t0, time.process_time() - c0
    server_cpu = _process_cpu_seconds(backends)  # before dispose: the backends exit when their connections close
    engine.dispose()
    if spec.get("commits"):
        Path(spec["commits"]).write_text(json.dumps({"ingest_started_at": ingest_started_at, "commits": commits}))
    result: dict[str, Any] = {
        "counts": counts,
        "call_seconds": call,
        "call_cpu_seconds": cpu,
        "process_seconds": time.perf_counter() - started,
        "transactions": len(commits),
        "chunk": chunk,
        "resends": resends,
        "server_cpu_seconds": server_cpu,
        "backends": len(backends),
    }
    if profiler:
        result["profile_text"] = _profile_text(profiler, spec.get("profile_top", 15))
        profiler.dump_stats(spec["profile"])
    return result


def _backend_pids(engine: Any) -> list[int]:
    """The process ids of the PostgreSQL backends of every connection `engine` opens (filled as it opens them)."""
    from sqlalchemy import event

    pids: list[int] = []

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        pids.append(int(dbapi_connection.info.backend_pid))

    return pids


def _process_cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU seconds of these processes so far (/proc/<pid>/stat); None when one cannot be read
    (PostgreSQL on another machine, or a backend gone)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return total / os.sysconf("SC_CLK_TCK")


def _profile_text(profiler: cProfile.Profile, top: int) -> str:
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(top)
    text.write("\n--- the same, by own time (tottime) ---\n")
    stats.sort_stats("tottime").print_stats(top)
    shown = text.getvalue()
    import sysconfig

    prefixes = {p + "/" for p in sys.path if p.endswith("site-packages")}
    prefixes |= {sysconfig.get_paths()["stdlib"] + "/", str(REPO) + "/"}
    for prefix in sorted(prefixes, key=len, reverse=True):
        shown = shown.replace(prefix, "")
    return shown


def worker_effects(spec: dict[str, Any]) -> dict[str, Any]:
    """The run's flags and tasks (without ids or times of writing), row counts, and the audit verification."""
    from sqlalchemy import func, select
    from sqlmodel import SQLModel

    from wnb.database import open_database
    from wnb.store import audit, listing

    engine = open_database(spec["db"], create=False)
    with engine.connect() as connection:
        flags = sorted(
            json.dumps([f["nhs_number"], f["code"], f["level"], f["status"], f["rule_ids"], sorted(f["event_ids"])])
            for f in listing.flags(connection, include_closed=True)
        )
        tasks = sorted(
            json.dumps(
                [
                    t["nhs_number"],
                    t["service"],
                    t["code"],
                    t["owner_role"],
                    t["status"],
                    t["due_at"],
                    t["escalation_level"],
                    t["rule_ids"],
                    sorted(t["event_ids"]),
                ],
                default=str,
            )
            for t in listing.tasks(connection, include_closed=True)
        )
        rows = {
            name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in sorted(SQLModel.metadata.tables.items())
        }
        verified = audit.verify(connection)
        size = connection.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one()
    engine.dispose()
    digest = zlib.crc32("\n".join([*flags, "--", *tasks]).encode())
    return {
        "flags": len(flags),
        "tasks": len(tasks),
        "effects_crc": digest,
        "rows": rows,
        "database_bytes": size,
        "audit_ok": verified.ok,
        "audit_records": verified.records,
        "audit_problem": verified.problem,
    }


WORKERS = {"context": worker_context, "replica": worker_replica, "effects": worker_effects}


def worker_main(phase: str, spec_text: str) -> None:
    result = WORKERS[phase](json.loads(spec_text))
    result["own_peak_mb"] = own_peak_mb()
    sys.stdout.write(json.dumps(result) + "\n")


# ======================================================================================================
# the parent
# ======================================================================================================


def launch(phase: str, spec: dict[str, Any], stdin: int | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-X", "faulthandler", str(Path(__file__).resolve()), "--worker", phase, json.dumps(spec)],
        stdin=stdin,
        stdout=subprocess.PIPE,
        cwd=REPO,
    )


def collect(child: subprocess.Popen[bytes], phase: str) -> dict[str, Any]:
    """Wait for a worker; its result with its CPU time and peak memory (os.wait4)."""
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code
    if code != 0:
        raise SystemExit(f"{phase} worker failed (exit {code})")
    result: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def run_one(phase: str, spec: dict[str, Any]) -> dict[str, Any]:
    return collect(launch(phase, spec), phase)


class Databases:
    """Fresh PostgreSQL databases for the run, all dropped at the end unless kept."""

    def __init__(self, server: str, keep: bool) -> None:
        from sqlalchemy import make_url

        self.server = server.rstrip("/")
        self.keep = keep
        self.names: list[str] = []
        admin = make_url(self.server + "/postgres").set(drivername="postgresql")
        self.admin = admin.render_as_string(hide_password=False)

    def _execute(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as connection:
            connection.execute(statement)  # type: ignore[arg-type]

    def create(self, label: str) -> str:
        name = f"wnb_bench_{label}_{secrets.token_hex(4)}"
        self._execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return f"{self.server}/{name}"

    def server_version(self) -> str:
        import psycopg

        with psycopg.connect(self.admin) as connection:
            row = connection.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def drop_all(self) -> None:
        if self.keep:
            log(f"[databases] kept: {', '.join(self.names)}")
            return
        for name in self.names:
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine_cpu_times() -> tuple[int, int]:
    """(busy, all) CPU time of the whole machine so far, in clock ticks (/proc/stat; (0, 0) elsewhere)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


class ActivitySampler:
    """Samples what the run's PostgreSQL backends are doing (pg_stat_activity) every `interval` seconds."""

    HEAD = "SELECT seq, hash FROM audit_head"  # the audit chain's head, taken by AuditLog.finish

    def __init__(self, admin_url: str, database: str, interval: float = 0.05) -> None:
        self.admin_url, self.database, self.interval = admin_url, database, interval
        self.counts: dict[str, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ActivitySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @classmethod
    def classify(cls, state: str | None, wait_type: str | None, wait: str | None, query: str) -> str:
        if state == "idle":
            return "idle between transactions"
        if state == "idle in transaction":
            return "in a transaction, waiting for the replica (Python)"
        if wait_type == "Lock":
            what = "the audit chain's head" if query.startswith(cls.HEAD) else "a lock"
            return f"waiting for {what} (Lock:{wait})"
        if wait_type is None or wait_type == "CPU":
            return "working (on CPU or runnable)"
        if wait_type == "Client":
            return f"waiting for the replica ({wait_type}:{wait})"
        return f"waiting: {wait_type}:{wait}"

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            while not self._stop.wait(self.interval):
                rows = connection.execute(
                    "SELECT state, wait_event_type, wait_event, left(query, 40) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                    (self.database,),
                ).fetchall()
                self.samples += 1
                for state, wait_type, wait, query in rows:
                    key = self.classify(state, wait_type, wait, query or "")
                    self.counts[key] = self.counts.get(key, 0) + 1


def partition(events: Path, replicas: int, folder: Path) -> list[Path]:
    """Split the events file by child (NHS number) into one file per replica, each in arrival order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"events-{replicas}-{index}.ndjson" for index in range(replicas)]
    handles = [path.open("w") for path in paths]
    try:
        with events.open() as lines:
            for number, line in enumerate(lines):
                try:
                    key = str(json.loads(line).get("nhs_number") or number)
                except (ValueError, AttributeError):  # a malformed line: any replica rejects it the same way
                    key = str(number)
                handles[zlib.crc32(key.encode()) % replicas].write(line)
    finally:
        for handle in handles:
            handle.close()
    return paths


def run_replicas(
    databases: Databases,
    args: argparse.Namespace,
    out: Path,
    replicas: int,
    label: str,
    commits: Path | None = None,
    profile: bool = False,
) -> dict[str, Any]:
    """One fresh database; the context import; then `replicas` processes ingesting their partitions at once."""
    url = databases.create(label)
    rules = str(args.rules.resolve())
    context = run_one("context", {"db": url, "rules": rules, "context": str(out / "context.ndjson")})
    parts = partition(out / "events.ndjson", replicas, out / "parts")
    name = url.rsplit("/", 1)[1]
    log(f"[{label}] {replicas} replica(s) ingesting into {name}")
    launched = time.perf_counter()
    children = []
    for index, part in enumerate(parts):
        spec: dict[str, Any] = {"db": url, "rules": rules, "events": str(part)}
        if commits is not None and replicas == 1:
            spec["commits"] = str(commits)
        if profile and index == 0:
            spec.update(profile=str(out / f"replica-{label}.prof"), profile_top=args.profile_top)
        children.append(launch("replica", spec, stdin=subprocess.PIPE))
    for child in children:
        assert child.stdout is not None
        if child.stdout.readline().strip() != b"ready":
            raise SystemExit(f"[{label}] a replica failed to start")
    load = os.getloadavg()
    busy0, all0 = machine_cpu_times()
    with ActivitySampler(databases.admin, name) as activity:
        t0 = time.perf_counter()
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.close()
        results = [collect(child, "replica") for child in children]
        ended = time.perf_counter()
    busy1, all1 = machine_cpu_times()
    wall = ended - t0
    effects = run_one("effects", {"db": url})
    log(f"[{label}] done in {wall:,.1f}s ({effects['flags']:,} flags, {effects['tasks']:,} tasks)")
    return {
        "url": url,
        "replicas": replicas,
        "wall_seconds": wall,
        "start_seconds": t0 - launched,
        "load_before": load,
        "machine_busy": (busy1 - busy0) / (all1 - all0) if all1 > all0 else None,
        "activity": {"samples": activity.samples, "counts": activity.counts},
        "context": context,
        "workers": results,
        **effects,
    }


def report(
    args: argparse.Namespace,
    manifest: dict[str, Any],
    runs: list[dict[str, Any]],
    raw: dict[str, Any],
    profiled: dict[str, Any] | None,
    version: str,
    load_before: tuple[float, ...],
) -> str:
    lines_total = manifest["summary"]["events"]
    first = runs[0]
    raw_rate = lines_total / raw["insert_seconds"]
    one_call = first["workers"][0]["call_seconds"] if first["replicas"] == 1 else None
    loads = " / ".join(f"{x:.1f}" for x in load_before)
    counts: dict[str, int] = {}
    for worker in first["workers"]:
        for status, number in worker["counts"].items():
            counts[status] = counts.get(status, 0) + number
    text = [
        "",
        "wnb PostgreSQL ingestion benchmark",
        "==================================",
        f"machine    {os.cpu_count()} CPUs, PostgreSQL {version} on the same machine; load average "
        f"(1/5/15 min) {loads} before the first run (other work slows wall times; CPU times are beside them)",
        f"code       wnb source + ruleset fingerprint {code_fingerprint(args.rules.resolve())}",
        f"data       {lines_total:,} event lines for {manifest['summary']['children']:,} children + "
        f"{manifest['summary']['adults']:,} adults (bench/synthetic.py, seed {args.seed}); partitioned by NHS number",
        "ingest     "
        + ", ".join(f"{counts.get(k, 0):,} {k}" for k in ("accepted", "superseded", "stale", "duplicate", "rejected")),
        "",
        "replicas   start s   wall s   events/s   x 1 replica   CPU s (replicas)   resent chunks   flags   tasks   "
        "same effects   audit",
    ]
    for run in runs:
        rate = lines_total / run["wall_seconds"]
        cpu = sum(worker["cpu_seconds"] for worker in run["workers"])
        resends = sum(worker["resends"] for worker in run["workers"])
        same = run["effects_crc"] == first["effects_crc"] and run["rows"] == first["rows"]
        audit = "verified" if run["audit_ok"] else f"BROKEN: {run['audit_problem']}"
        text.append(
            f"{run['replicas']:>8}   {run['start_seconds']:7.1f}   {run['wall_seconds']:6.1f}   {rate:8,.0f}   {run_speedup(run, first):>11}   "
            f"{cpu:16.1f}   {resends:>13,}   {run['flags']:>5,}   {run['tasks']:>5,}   "
            f"{'yes' if same else 'NO':>12}   {audit}"
        )
    text += cpu_lines(runs, lines_total)
    rows_written = sum(first["rows"].values())
    text += [
        f"           size of the 1-replica database: {first['database_bytes'] / 1e6:,.1f} MB "
        f"({first['database_bytes'] / lines_total:,.0f} bytes and {rows_written / lines_total:.2f} rows per event line)",
        "           (start: launch of the replica processes until all are connected and ready; wall: from telling them "
        "all to go to the exit of the last; CPU: whole processes; same effects: flags, tasks and "
        "row counts equal to the first run's)",
        "",
        f"baseline: raw inserts of the {sum(raw['inserted'].values()):,} rows the 1-replica run wrote "
        f"(SQLAlchemy Core executemany, no logic, the real run's {raw['transactions']:,} transactions)",
        f"  raw inserts      {raw['insert_seconds']:8.1f} s wall, {raw['insert_cpu_seconds']:.1f} s CPU "
        f"({raw_rate:,.0f} event lines/s)",
    ]
    if one_call is not None:
        text.append(
            f"  1 replica        {one_call:8.1f} s inside Service.ingest: {one_call / raw['insert_seconds']:.1f} x the raw inserts"
        )
    for run in runs:
        rate = lines_total / run["wall_seconds"]
        text.append(f"  {run['replicas']} replica(s)     {rate / raw_rate:8.2f} of the raw-insert rate")
    text += activity_lines(runs)
    if profiled:
        worker = profiled["workers"][0]
        text += [
            "",
            f"profile: replica 0 of {profiled['replicas']}, CPU time under cProfile ({worker['call_cpu_seconds']:.1f} s CPU "
            f"in {worker['call_seconds']:.1f} s, {worker['resends']:,} resent chunks; the run took "
            f"{profiled['wall_seconds']:.1f} s)",
            worker["profile_text"],
        ]
    return "\n".join(text)


def cpu_lines(runs: list[dict[str, Any]], lines_total: int) -> list[str]:
    """CPU per event line (replicas + their PostgreSQL backends), how busy the machine was, and the ceiling."""
    cpus = os.cpu_count() or 1
    text = [
        "",
        "CPU per event line: the replicas' own while ingesting (process_time around the ingest) + their PostgreSQL",
        "backends' (/proc/<pid>/stat); the machine's CPUs busy over the run (/proc/stat, other work on it included);",
        f"ceiling = {cpus} CPUs / CPU per event line: the rate if the run had every CPU of the machine to itself",
        "replicas   load 1 min   machine busy   replicas CPU s   backends CPU s   CPU ms / event   ceiling events/s",
    ]
    for run in runs:
        own = sum(worker["call_cpu_seconds"] for worker in run["workers"])
        server_each = [worker.get("server_cpu_seconds") for worker in run["workers"]]
        server = None if None in server_each else sum(server_each)
        busy = run.get("machine_busy")
        per_event = (own + (server or 0.0)) / lines_total
        text.append(
            f"{run['replicas']:>8}   {run['load_before'][0]:10.1f}   "
            f"{f'{busy:.0%}' if busy is not None else '?':>12}   {own:14.1f}   "
            f"{f'{server:.1f}' if server is not None else '?':>14}   {per_event * 1000:14.3f}   "
            f"{cpus / per_event:16,.0f}"
        )
    return text


def activity_lines(runs: list[dict[str, Any]]) -> list[str]:
    """What the replicas' PostgreSQL backends were doing, as shares of all backend samples of each run."""
    text = ["", "where the time goes, from the server: the replicas' backends in pg_stat_activity every 50 ms"]
    for run in runs:
        counts = run["activity"]["counts"]
        total = sum(counts.values()) or 1
        text.append(f"  {run['replicas']} replica(s), {run['activity']['samples']:,} samples:")
        for key, number in sorted(counts.items(), key=lambda item: -item[1]):
            text.append(f"    {number / total:6.1%}  {key}")
    return text


def run_speedup(run: dict[str, Any], first: dict[str, Any]) -> str:
    return f"{first['wall_seconds'] / run['wall_seconds']:.2f}"


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=None, help="event lines to generate (default 300000)")
    parser.add_argument("--children", type=int, default=None, help="children (default 50000)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--quick", action="store_true", help="20,000 events, 3,500 children")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3], help="replica counts (default 1 2 3)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out" / "postgres", help="work directory")
    parser.add_argument("--rules", type=Path, default=REPO / "rules" / "default", help="ruleset directory")
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"PostgreSQL server URL (default {DEFAULT_SERVER})")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled run")
    parser.add_argument("--profile-top", type=int, default=15, help="entries of the profile to print")
    parser.add_argument("--keep", action="store_true", help="keep the databases (default: drop them)")
    args = parser.parse_args()
    args.events = args.events or (20_000 if args.quick else 300_000)
    args.children = args.children or (3_500 if args.quick else 50_000)
    replica_counts = sorted(set(args.replicas))
    if replica_counts[0] != 1:
        replica_counts.insert(0, 1)  # the baseline and the effects comparison come from the 1-replica run
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    manifest = prepare_data(args, out)
    databases = Databases(args.server, args.keep)
    try:
        version = databases.server_version()
        load_before = os.getloadavg()
        commits = out / "commits.json"
        runs = [
            run_replicas(databases, args, out, count, f"r{count}", commits=commits if count == 1 else None)
            for count in replica_counts
        ]
        raw_target = databases.create("raw")
        raw = run_ingest_phase("raw", {"source": runs[0]["url"], "target": raw_target, "commits": str(commits)})
        profiled = None
        if not args.no_profile:
            profiled = run_replicas(databases, args, out, replica_counts[-1], "profile", profile=True)
        text = report(args, manifest, runs, raw, profiled, version, load_before)
    finally:
        databases.drop_all()
    print(text)
    (out / "report.txt").write_text(text)
    (out / "report.json").write_text(
        json.dumps({"manifest": manifest, "runs": runs, "raw": raw, "profiled": profiled}, indent=2, default=str)
    )


if __name__ == "__main__":
    main()
