#!/usr/bin/env python
"""Ingestion benchmark: a synthetic year of a large trust through the real path, beside two baselines.

    .venv/bin/python bench/ingest.py            # 300,000 events, 50,000 children (several minutes)
    .venv/bin/python bench/ingest.py --quick    # 20,000 events, 3,500 children (smoke run)
    .venv/bin/python bench/ingest.py --quick --profile   # cProfile of the real ingest, top entries

Steps (each measured phase runs in a fresh subprocess; its peak memory is that process's ru_maxrss,
read by the parent with os.wait4):

1. generate `events.ndjson` and `context.ndjson` deterministically from --seed (bench/synthetic.py);
2. real run, exactly what `wnb context import` + `wnb ingest` do: Service.import_context over the context
   file, then Service.ingest over wnb.ingest.read_file of the events file (its default chunk), into a fresh
   SQLite file (open_database: WAL, synchronous=NORMAL, BEGIN IMMEDIATE);
3. baseline "raw inserts": every row the real run wrote (event, reject, follow_up, flag, task, task_history,
   link, audit, audit_head, person_context) copied out of the real database and inserted, with no logic,
   into a fresh database of the same schema (open_database), with SQLAlchemy Core executemany, in the same
   transactions as the real run: the context import in one, then one per chunk of the events file, as
   Service.ingest commits them (its default chunk, which `wnb ingest` uses; rows are assigned to the chunk
   whose commit they preceded, by their timestamps);
4. baseline "matcher": every fact document the real run evaluated (audit `evaluation` payload["facts"])
   through the durable-rules matcher `wnb.matcher.durable.evaluate`, through each rule compiled to a plain Python
   closure, and (for information) through the pure-Python interpreter `wnb.core.interpreter.explain` that the real
   run also calls; the three must agree on every document.

Results are printed and written to OUT/report.json; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import bisect
import cProfile
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

TARGET_EVENTS_PER_SECOND = 3000
TARGET_RAW_RATIO = 5.0
TARGET_PEAK_MB = 500

# Every table the real run writes, in the order the raw baseline inserts a chunk's rows.
# (table name, primary key column, timestamp column that says when the row was written)
TIMED_TABLES = [
    ("event", "id", "received_at"),
    ("reject", "id", "received_at"),
    ("follow_up", "id", None),  # no timestamp: the first missed event of its appointment created it
    ("flag", "id", "raised_at"),
    ("task", "id", "created_at"),
    ("task_history", "id", "at"),
    ("link", "id", "linked_at"),
    ("audit", "seq", "at"),
]
# Written once by the context import (group 0), whole.
WHOLE_TABLES = ["person_context", "audit_head"]
ALL_TABLES = ["person_context", *(name for name, _, _ in TIMED_TABLES), "audit_head"]
# Tables of the HTTP service that file ingestion never writes (the bench sets no e-mail addresses): skipped.
SERVICE_TABLES = ["api_key", "user_account", "idempotency", "outbox"]


def schema_tables() -> dict[str, Any]:
    """Every table of wnb's schema, by name; refuses to run if the schema has one this bench does not know."""
    from sqlmodel import SQLModel

    import wnb.store.tables  # noqa: F401  (registers the tables)

    tables = dict(SQLModel.metadata.tables)
    unknown = sorted(set(tables) - set(ALL_TABLES) - set(SERVICE_TABLES))
    if unknown:
        raise SystemExit(
            f"wnb's schema has tables this benchmark does not know: {', '.join(unknown)}; "
            "add them to TIMED_TABLES or WHOLE_TABLES in bench/ingest.py"
        )
    return tables


def code_fingerprint(rules: Path) -> str:
    """A short hash of wnb's source and the ruleset, so a report says which code it measured."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted([*(REPO / "wnb").rglob("*.py"), *rules.rglob("*.yaml")]):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# ======================================================================================================
# workers: each runs in its own process, prints one JSON object on stdout
# ======================================================================================================


def worker_context(spec: dict[str, Any]) -> dict[str, Any]:
    """`wnb context import FILE`: Service.import_context over the NDJSON reader, one transaction."""
    started = time.perf_counter()
    from wnb.database import open_database
    from wnb.ingest.ndjson import read as read_ndjson
    from wnb.rule_files import load_ruleset
    from wnb.service import Service

    service = Service(open_database(spec["db"]), load_ruleset(spec["rules"]))
    path = Path(spec["context"])
    t0, c0 = time.perf_counter(), time.process_time()
    counts = service.import_context(read_ndjson(path), origin=f"context:{path.name}")
    call, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "counts": dict(counts),
        "call_seconds": call,
        "call_cpu_seconds": cpu,
        "process_seconds": time.perf_counter() - started,
    }


def worker_ingest(spec: dict[str, Any]) -> dict[str, Any]:
    """`wnb ingest FILE`: Service.ingest over wnb.ingest.ahead.read_checked (a large file's lines checked in a
    second process); notes the moment each chunk committed."""
    started = time.perf_counter()
    try:
        from wnb.ingest.ahead import read_checked
    except ImportError:  # an older wnb (PYTHONPATH=its copy), from before lines were checked ahead
        from wnb.ingest import read_file as read_checked  # type: ignore[assignment]
    from wnb.database import open_database
    from wnb.rule_files import load_ruleset
    from wnb.service import Service

    service = Service(open_database(spec["db"]), load_ruleset(spec["rules"]))
    path = Path(spec["events"])
    total = spec["lines"]
    commits: list[str] = []
    state = {"done": 0, "next": max(5000, total // 20)}
    step = state["next"]
    t0 = 0.0  # set just before the call

    def progress(n: int) -> None:  # called by Service.ingest after each chunk's transaction
        commits.append(datetime.now(UTC).isoformat())
        state["chunk"] = max(state.get("chunk", 0), n)
        state["done"] += n
        if state["done"] >= state["next"] or state["done"] == total:
            elapsed = time.perf_counter() - t0
            log(
                f"[ingest] {state['done']:,}/{total:,} lines, {state['done'] / elapsed:,.0f}/s, "
                f"peak {own_peak_mb() or 0:,.0f} MB"
            )
            state["next"] += step

    ingest_started_at = datetime.now(UTC).isoformat()
    profiler = cProfile.Profile() if spec.get("profile") else None
    if profiler:
        profiler.enable()
    t0, c0 = time.perf_counter(), time.process_time()  # noqa: F841 (t0 is read by progress)
    with closing(read_checked(path)) as items:
        counts = service.ingest(items, origin=path.name, progress=progress)
    call, cpu = time.perf_counter() - t0, time.process_time() - c0
    reader = resource.getrusage(resource.RUSAGE_CHILDREN)  # the reader and matcher processes, ended by now
    if profiler:
        profiler.disable()
    result: dict[str, Any] = {
        "counts": dict(counts),
        "call_seconds": call,
        "call_cpu_seconds": cpu,
        "reader_cpu_seconds": reader.ru_utime + reader.ru_stime,
        "process_seconds": time.perf_counter() - started,
        "chunk": state.get("chunk", 0),
        "transactions": len(commits),
    }
    Path(spec["commits"]).write_text(json.dumps({"ingest_started_at": ingest_started_at, "commits": commits}))
    if profiler:
        profiler.dump_stats(spec["profile"])
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("cumulative").print_stats(spec.get("profile_top", 15))
        text.write("\n--- the same, by own time (tottime) ---\n")
        stats.sort_stats("tottime").print_stats(spec.get("profile_top", 15))
        shown = text.getvalue()
        import sysconfig

        prefixes = {p + "/" for p in sys.path if p.endswith("site-packages")}
        prefixes |= {sysconfig.get_paths()["stdlib"] + "/", str(REPO) + "/"}
        for prefix in sorted(prefixes, key=len, reverse=True):
            shown = shown.replace(prefix, "")
        result["profile_text"] = shown
    return result


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def worker_raw(spec: dict[str, Any]) -> dict[str, Any]:
    """Baseline: the real run's rows inserted with no logic, in the real run's transactions."""
    started = time.perf_counter()
    from sqlalchemy import and_, func, insert, select

    from wnb.database import open_database

    tables = schema_tables()
    events = tables["event"]
    timed = [(name, pk, stamp) for name, pk, stamp in TIMED_TABLES if name in tables]
    source = open_database(spec["source"], create=False)
    target = open_database(spec["target"])
    marks = json.loads(Path(spec["commits"]).read_text())
    boundaries = [datetime.fromisoformat(marks["ingest_started_at"])]
    boundaries += [datetime.fromisoformat(moment) for moment in marks["commits"]]

    # Untimed: which primary-key range of each table each transaction wrote. Group 0 is the context
    # import (everything before the ingest started); group k the k-th chunk Service.ingest committed.
    ranges: dict[str, list[tuple[int, int] | None]] = {}
    with source.connect() as connection:
        for name, pk, stamp in timed:
            table = tables[name]
            if stamp is None:  # follow_up: when the first (non-stale) missed event of its appointment arrived
                query = (
                    select(table.c.id, func.min(events.c.received_at))
                    .join(
                        events,
                        and_(
                            events.c.source == table.c.source,
                            events.c.appointment_id == table.c.appointment_id,
                        ),
                    )
                    .where(
                        events.c.attendance.in_(("did-not-attend", "late-not-seen")),
                        events.c.state != "stale",
                    )
                    .group_by(table.c.id)
                    .order_by(table.c.id)
                )
            else:
                query = select(table.c[pk], table.c[stamp]).order_by(table.c[pk])
            rows = connection.execute(query).all()
            keys = [row[0] for row in rows]
            stamps = [_aware(row[1]) for row in rows]
            if any(later < earlier for earlier, later in zip(stamps, stamps[1:], strict=False)):
                raise SystemExit(f"{name}: timestamps are not in primary-key order; cannot split by chunk")
            if len(rows) != connection.execute(select(func.count()).select_from(table)).scalar_one():
                raise SystemExit(f"{name}: some rows could not be placed in a chunk")
            # rows [cuts[k-1], cuts[k]) were written before the k-th boundary and after the one before it
            cuts = [0, *(bisect.bisect_right(stamps, moment) for moment in boundaries), len(keys)]
            ranges[name] = [(keys[a], keys[b - 1]) if b > a else None for a, b in zip(cuts, cuts[1:], strict=False)]
    groups = len(boundaries) + 1  # the last group should be empty: nothing after the last commit

    inserted = dict.fromkeys(tables, 0)
    insert_seconds = insert_cpu = 0.0
    transactions = 0
    with source.connect() as connection:
        # group 0: the context import's one transaction (person_context, its audit records and the head)
        for group in range(groups):
            batch: list[tuple[Any, list[dict[str, Any]]]] = []
            whole = [tables[name] for name in WHOLE_TABLES if name in tables] if group == 0 else []
            for table in whole[:1]:  # person_context first, as the import writes it
                batch.append((table, [dict(r) for r in connection.execute(select(table)).mappings()]))
            for name, pk, _ in timed:
                span = ranges[name][group]
                if span is not None:
                    table = tables[name]
                    query = select(table).where(table.c[pk].between(*span))
                    batch.append((table, [dict(r) for r in connection.execute(query).mappings()]))
            for table in whole[1:]:  # the audit chain's head last
                batch.append((table, [dict(r) for r in connection.execute(select(table)).mappings()]))
            batch = [(table, rows) for table, rows in batch if rows]
            if not batch:
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            with target.begin() as out:
                for table, rows in batch:
                    out.execute(insert(table), rows)
            insert_seconds += time.perf_counter() - t0
            insert_cpu += time.process_time() - c0
            transactions += 1
            for table, rows in batch:
                inserted[table.name] += len(rows)
            if group % 200 == 0:
                log(f"[raw] transaction {transactions:,}/{groups - 1:,}")
    return {
        "insert_seconds": insert_seconds,
        "insert_cpu_seconds": insert_cpu,
        "transactions": transactions,
        "inserted": inserted,
        "process_seconds": time.perf_counter() - started,
    }


def plain_rules(ruleset: Any) -> list[tuple[str, Callable[[dict[str, Any]], bool]]]:
    """Each rule's trigger and conditions compiled to one plain Python closure (no pydantic, no engine)."""
    from wnb.core.facts import TRIGGERS
    from wnb.core.ruleset import AnyOf, Condition

    symbols = {
        "is": "==",
        "is_not": "!=",
        "at_least": ">=",
        "at_most": "<=",
        "more_than": ">",
        "less_than": "<",
    }

    def source(node: Any) -> str:
        if isinstance(node, Condition):
            op = node.operator
            value = ruleset.resolve(node.raw_value(op))
            if op == "one_of":
                return f"(f[{node.fact!r}] in {tuple(value)!r})"
            if op == "is":  # strict about type, like the matcher and the interpreter: True is not 1
                return f"(f[{node.fact!r}] == {value!r} and type(f[{node.fact!r}]) is {type(value).__name__})"
            return f"(f[{node.fact!r}] {symbols[op]} {value!r})"
        children = node.any if isinstance(node, AnyOf) else node.all
        joiner = " or " if isinstance(node, AnyOf) else " and "
        return "(" + joiner.join(source(child) for child in children) + ")"

    compiled = []
    for rule in ruleset.rules:
        parts = [f"(f[{TRIGGERS[rule.trigger]!r}] is True)", *(source(node) for node in rule.when)]
        compiled.append((rule.id, eval("lambda f: " + " and ".join(parts))))  # noqa: S307 - our own text
    return compiled


def worker_matcher(spec: dict[str, Any]) -> dict[str, Any]:
    """Baseline: durable-rules vs plain Python closures (and the explain interpreter) on the stored facts."""
    started = time.perf_counter()
    import sqlite3

    from wnb.core.interpreter import explain
    from wnb.matcher import durable
    from wnb.rule_files import load_ruleset

    ruleset = load_ruleset(spec["rules"])
    durable.register(ruleset)  # once per process, as in the real run; not timed
    closures = plain_rules(ruleset)
    every_fact = set(ruleset.fact_types)
    skipped = 0
    connection = sqlite3.connect(spec["source"])
    query = (
        "SELECT json_extract(payload, '$.facts'), json_extract(payload, '$.fired') FROM audit "
        "WHERE action = 'evaluation' AND json_extract(payload, '$.facts') IS NOT NULL ORDER BY seq"
    )
    cursor = connection.execute(query)
    timings = {"durable": 0.0, "plain": 0.0, "explain": 0.0}
    cpu = dict.fromkeys(timings, 0.0)
    documents = fired_total = 0
    mismatches: list[str] = []
    while True:
        rows = cursor.fetchmany(5000)
        if not rows:
            break
        # Only the documents the real run put through the matcher: an evaluation whose event triggers no
        # rule stores just its trigger facts and runs no rule.
        pairs = [(json.loads(facts), json.loads(fired)) for facts, fired in rows]
        facts = [document for document, _ in pairs if every_fact <= document.keys()]
        stored = [fired for document, fired in pairs if every_fact <= document.keys()]
        skipped += len(pairs) - len(facts)
        t0, c0 = time.perf_counter(), time.process_time()
        by_durable = [durable.evaluate(ruleset, document) for document in facts]
        t1, c1 = time.perf_counter(), time.process_time()
        by_plain = [[rule_id for rule_id, test in closures if test(document)] for document in facts]
        t2, c2 = time.perf_counter(), time.process_time()
        by_explain = [[item.rule_id for item in explain(ruleset, document) if item.fired] for document in facts]
        t3, c3 = time.perf_counter(), time.process_time()
        timings["durable"] += t1 - t0
        timings["plain"] += t2 - t1
        timings["explain"] += t3 - t2
        cpu["durable"] += c1 - c0
        cpu["plain"] += c2 - c1
        cpu["explain"] += c3 - c2
        for index, (a, b, c, d) in enumerate(zip(by_durable, by_plain, by_explain, stored, strict=True)):
            if not (a == b == c == d) and len(mismatches) < 5:
                mismatches.append(f"document {documents + index}: durable {a}, plain {b}, explain {c}, stored {d}")
            fired_total += len(a)
        documents += len(facts)
        log(f"[matcher] {documents:,} fact documents")
    return {
        "documents": documents,
        "skipped": skipped,
        "rules": len(ruleset.rules),
        "fired_total": fired_total,
        "seconds": timings,
        "cpu_seconds": cpu,
        "mismatches": mismatches,
        "process_seconds": time.perf_counter() - started,
    }


def table_counts(url: str) -> dict[str, int]:
    """Rows in every table of the schema (in this bench's order)."""
    from sqlalchemy import func, select

    from wnb.database import open_database

    tables = schema_tables()
    with open_database(url, create=False).connect() as connection:
        return {
            name: connection.execute(select(func.count()).select_from(tables[name])).scalar_one()
            for name in ALL_TABLES
            if name in tables
        }


def worker_generate(spec: dict[str, Any]) -> dict[str, Any]:
    from synthetic import generate

    return generate(spec["events"], spec["children"], spec["seed"], Path(spec["out"]))


def worker_counts(spec: dict[str, Any]) -> dict[str, Any]:
    return {"counts": table_counts(spec["db"])}


WORKERS = {
    "generate": worker_generate,
    "counts": worker_counts,
    "context": worker_context,
    "ingest": worker_ingest,
    "raw": worker_raw,
    "matcher": worker_matcher,
}


def own_peak_mb() -> float | None:
    """VmHWM: this process's own peak resident set since exec (ru_maxrss may also count the parent's
    image at fork time; Linux keeps that across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def worker_main(phase: str, spec_text: str) -> None:
    result = WORKERS[phase](json.loads(spec_text))
    result["own_peak_mb"] = own_peak_mb()
    sys.stdout.write(json.dumps(result) + "\n")


# ======================================================================================================
# the parent: generate, run each phase in a fresh process, report
# ======================================================================================================


# Phases that only read, and so may run again if their process dies (durable-rules' C engine has been
# seen to crash a process now and then; the report says so when it happens).
RETRYABLE = {"matcher", "counts"}


def run_phase(phase: str, spec: dict[str, Any], attempt: int = 1) -> dict[str, Any]:
    """Run one worker in a fresh interpreter; add its wall time and its own peak RSS (via wait4)."""
    log(f"[{phase}] starting a fresh process")
    code = code_fingerprint(Path(spec.get("rules", REPO / "rules" / "default")))
    t0 = time.perf_counter()
    child = subprocess.Popen(
        [
            sys.executable,
            "-X",
            "faulthandler",
            str(Path(__file__).resolve()),
            "--worker",
            phase,
            json.dumps(spec),
        ],
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        complete = output.strip().endswith(b"}")
        log(
            f"[{phase}] worker process died (exit {child.returncode}) "
            f"{'after' if complete else 'before'} writing its result"
        )
        if phase in RETRYABLE and attempt < 3:
            result = run_phase(phase, spec, attempt + 1)
            result["crashed_attempts"] = result.get("crashed_attempts", 0) + 1
            return result
        raise SystemExit(f"{phase} worker failed (exit {child.returncode})")
    result = json.loads(output.decode().strip().splitlines()[-1])
    result["wall_seconds"] = wall
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    result["peak_mb"] = usage.ru_maxrss / 1024  # Linux: kilobytes
    result["load_average_after"] = os.getloadavg()
    result["code"] = code
    log(f"[{phase}] done in {wall:,.1f}s, peak {result['peak_mb']:,.0f} MB")
    return result


def prepare_data(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    manifest_path = out / "manifest.json"
    wanted = {
        "events": args.events,
        "children": args.children,
        "seed": args.seed,
        "generator": (BENCH_DIR / "synthetic.py").stat().st_mtime_ns,
    }
    if manifest_path.is_file() and (out / "events.ndjson").is_file() and (out / "context.ndjson").is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("parameters") == wanted:
            log(f"[generate] reusing {out / 'events.ndjson'} (same parameters and seed)")
            return manifest
    log(f"[generate] {args.events:,} events for {args.children:,} children, seed {args.seed}")
    t0 = time.perf_counter()
    summary = run_phase(
        "generate", {"events": args.events, "children": args.children, "seed": args.seed, "out": str(out)}
    )
    manifest = {"parameters": wanted, "summary": summary, "seconds": time.perf_counter() - t0}
    manifest_path.write_text(json.dumps(manifest, indent=2))
    log(f"[generate] done in {manifest['seconds']:.1f}s")
    return manifest


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def report(
    args: argparse.Namespace,
    out: Path,
    manifest: dict[str, Any],
    context: dict[str, Any],
    ingest: dict[str, Any],
    counts: dict[str, int],
    raw: dict[str, Any],
    matcher: dict[str, Any],
    load_before: tuple[float, float, float],
    code: tuple[str, str],
) -> str:
    summary = manifest["summary"]
    lines = summary["events"]
    ingest_wall = ingest["wall_seconds"]
    rate = lines / ingest_wall
    rate_call = lines / ingest["call_seconds"]
    rate_cpu = lines / ingest["cpu_seconds"]
    rate_both = lines / (context["wall_seconds"] + ingest_wall)
    peak = max(context["peak_mb"], ingest["peak_mb"])
    own = max(context["own_peak_mb"] or 0, ingest["own_peak_mb"] or 0)
    real_seconds = context["call_seconds"] + ingest["call_seconds"]
    # the processes checking lines ahead (wnb/ingest/ahead.py) and running the rules (wnb/matcher/process.py)
    reader_cpu = ingest.get("reader_cpu_seconds", 0.0)
    real_cpu = context["call_cpu_seconds"] + ingest["call_cpu_seconds"] + reader_cpu
    raw_seconds, raw_cpu = raw["insert_seconds"], raw["insert_cpu_seconds"]
    ratio, ratio_cpu = real_seconds / raw_seconds, real_cpu / raw_cpu
    durable, plain, interp = (matcher["seconds"][k] for k in ("durable", "plain", "explain"))
    docs = max(matcher["documents"], 1)
    rows_total = sum(counts.values())
    width = max(len(name) for name in counts)
    loads = " / ".join(f"{x:.1f}" for x in load_before)
    load_after = " / ".join(f"{x:.1f}" for x in ingest["load_average_after"])
    return "\n".join(
        [
            "",
            "wnb ingestion benchmark",
            "=======================",
            f"machine    {os.cpu_count()} CPUs; load average (1/5/15 min) {loads} before, {load_after} after the ingest "
            "(other work on the machine slows wall times; CPU times are given beside them)",
            f"code       wnb source + ruleset fingerprint {context['code']} (context import), {ingest['code']} (ingest)"
            + (
                ""
                if len({context["code"], ingest["code"], code[1]}) == 1
                else f", {code[1]} at the end: the code changed during the run (each process ran the code it "
                "started with)"
            ),
            f"data       {lines:,} event lines ({summary['people_with_events']:,} people with events) for "
            f"{summary['children']:,} children + {summary['adults']:,} adults; seed {args.seed}; {out}",
            "           outcome mix %: " + ", ".join(f"{k} {v}" for k, v in summary["outcome_mix_percent"].items()),
            "           other lines: "
            + ", ".join(f"{k} {v:,}" for k, v in summary["lines_by_kind"].items())
            + f", duplicates {summary['duplicates_written']:,}, invalid {summary['invalid_written']:,}",
            f"           context: {summary['people']:,} records; plan/looked-after "
            f"{summary['children_with_plan_or_looked_after']:,}, child-in-need/early-help "
            f"{summary['children_in_need_or_early_help']:,}, complex health needs {summary['complex_health_needs']:,}, "
            f"adults with care needs {summary['adults_with_care_needs']:,}",
            "ingest     "
            + ", ".join(
                f"{ingest['counts'].get(k, 0):,} {k}"
                for k in ("accepted", "superseded", "stale", "duplicate", "rejected")
            ),
            "context    "
            + ", ".join(f"{context['counts'].get(k, 0):,} {k}" for k in ("created", "updated", "rejected")),
            "",
            "real run (one fresh process per command, fresh SQLite file)",
            f"  context import   {context['wall_seconds']:8.1f} s wall, {context['cpu_seconds']:.1f} s CPU "
            f"({context['call_seconds']:.1f} s in Service.import_context), peak {context['peak_mb']:,.0f} MB",
            f"  ingest           {ingest_wall:8.1f} s wall, {ingest['cpu_seconds']:.1f} s CPU "
            f"(of which {reader_cpu:.1f} s in its reader and matcher processes; {ingest['call_seconds']:.1f} s in Service.ingest; {ingest['transactions']:,} transactions of up to "
            f"{ingest['chunk']:,} lines), peak {ingest['peak_mb']:,.0f} MB",
            f"  end to end       {rate:8,.0f} events/s   target >= {TARGET_EVENTS_PER_SECOND:,}/s: "
            f"{verdict(rate >= TARGET_EVENTS_PER_SECOND)}",
            f"                   (wall time of the ingest process, start to exit; {rate_call:,.0f}/s inside "
            f"Service.ingest; {rate_cpu:,.0f}/s per CPU-second; {rate_both:,.0f}/s with the context import added)",
            f"  peak memory      {peak:8,.0f} MB         target < {TARGET_PEAK_MB} MB: "
            f"{verdict(max(peak, own) < TARGET_PEAK_MB)}",
            f"                   (largest ru_maxrss of the two processes, read with os.wait4; their own VmHWM: {own:,.0f} MB)",
            "",
            f"rows written per table ({rows_total:,} in all; {rows_total / lines:.2f} per event line)",
            *(f"  {name:<{width}} {count:>10,}" for name, count in counts.items()),
            "",
            f"baseline 1: raw inserts of the same {sum(raw['inserted'].values()):,} rows (SQLAlchemy Core executemany, "
            f"no logic, the real run's {raw['transactions']:,} transactions)",
            f"  raw inserts      {raw_seconds:8.1f} s wall, {raw_cpu:.1f} s CPU "
            f"({lines / raw_seconds:,.0f} event lines/s; peak {raw['peak_mb']:,.0f} MB)",
            f"  real run         {real_seconds:8.1f} s wall, {real_cpu:.1f} s CPU (Service.import_context + "
            "Service.ingest, with the reader and matcher processes)",
            f"  real / raw       {ratio:8.1f} x wall ({ratio_cpu:.1f} x CPU)   target <= {TARGET_RAW_RATIO:g}x: "
            f"{verdict(ratio <= TARGET_RAW_RATIO)}",
            "",
            f"baseline 2: the {matcher['documents']:,} fact documents the real run put through the matcher, "
            f"{matcher['rules']} rules ({matcher['fired_total']:,} rule firings; {matcher['skipped']:,} trigger-only "
            "evaluations, where no rule can fire, left out)",
            f"  durable-rules    {durable:8.2f} s   {1e6 * durable / docs:7.1f} us/document (wnb.matcher.durable.evaluate)",
            f"  plain Python     {plain:8.2f} s   {1e6 * plain / docs:7.1f} us/document (one compiled closure per rule)",
            f"  durable / plain  {durable / plain:8.1f} x",
            f"  explain          {interp:8.2f} s   {1e6 * interp / docs:7.1f} us/document "
            "(wnb.core.interpreter.explain: the interpreter the real run also calls per evaluation)",
            *(
                [f"  NOTE             the matcher process crashed {matcher['crashed_attempts']} time(s) and was re-run"]
                if matcher.get("crashed_attempts")
                else []
            ),
            "  agreement        "
            + (
                "every document: durable = plain = explain = the stored decision"
                if not matcher["mismatches"]
                else "DISAGREE: " + "; ".join(matcher["mismatches"])
            ),
            f"  share of ingest  {100 * (durable + interp) / ingest['call_seconds']:8.1f} % of the Service.ingest time "
            "would be durable + explain, at these isolated speeds (from its second chunk on, the real run has them "
            "run in its matcher process)",
            "",
        ]
    )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=None, help="event lines to generate (default 300000)")
    parser.add_argument("--children", type=int, default=None, help="children (default 50000); adults are 5%% more")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="work directory (default bench/out)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20,000 events, 3,500 children")
    parser.add_argument("--rules", type=Path, default=REPO / "rules" / "default", help="ruleset directory")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only the real run, with the ingest under cProfile; print the top entries",
    )
    parser.add_argument("--profile-top", type=int, default=15, help="entries to print with --profile")
    args = parser.parse_args()
    args.events = args.events or (20_000 if args.quick else 300_000)
    args.children = args.children or (3_500 if args.quick else 50_000)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    code_before = code_fingerprint(args.rules.resolve())
    manifest = prepare_data(args, out)
    load_before = os.getloadavg()
    real_db, raw_db = out / "real.db", out / "raw.db"
    remove_database(real_db)
    common = {"rules": str(args.rules.resolve()), "db": sqlite_url(real_db)}
    context = run_phase("context", {**common, "context": str(out / "context.ndjson")})
    ingest_spec = {
        **common,
        "events": str(out / "events.ndjson"),
        "lines": manifest["summary"]["events"],
        "commits": str(out / "commits.json"),
    }
    if args.profile:
        ingest_spec.update(profile=str(out / "ingest.prof"), profile_top=args.profile_top)
    ingest = run_phase("ingest", ingest_spec)
    if args.profile:
        print(f"\nwnb source + ruleset fingerprint {code_before}")
        print(
            f"cProfile of Service.ingest over {manifest['summary']['events']:,} lines "
            f"({ingest['call_seconds']:.1f} s under the profiler; stats in {out / 'ingest.prof'})"
        )
        print(ingest["profile_text"])
        return
    counts = run_phase("counts", {"db": sqlite_url(real_db)})["counts"]
    remove_database(raw_db)
    raw = run_phase(
        "raw",
        {"source": sqlite_url(real_db), "target": sqlite_url(raw_db), "commits": str(out / "commits.json")},
    )
    copied = run_phase("counts", {"db": sqlite_url(raw_db)})["counts"]
    if copied != counts:
        raise SystemExit(f"raw baseline copied {copied}, the real run wrote {counts}")
    matcher = run_phase("matcher", {"rules": str(args.rules.resolve()), "source": str(real_db)})
    code = (code_before, code_fingerprint(args.rules.resolve()))
    text = report(args, out, manifest, context, ingest, counts, raw, matcher, load_before, code)
    print(text)
    (out / "report.txt").write_text(text)
    (out / "report.json").write_text(
        json.dumps(
            {
                "manifest": manifest,
                "context": context,
                "ingest": ingest,
                "rows": counts,
                "raw": raw,
                "matcher": matcher,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
