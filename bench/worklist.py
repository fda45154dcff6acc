"""Worklist benchmark (issue 16): the worklist page with 3,000 open tasks for one role, on SQLite and PostgreSQL.

For each store it fills a fresh database through the real ingestion path (`Service.import_context` and
`Service.ingest`): children on a child-protection plan (WNB-01, red) or known to a lead professional (WNB-02,
amber), each with an attended and a missed appointment, so every child leaves one open safeguarding-nurse task
with its flag, its history rows, its links and its events, beside the booking team's and named nurse's tasks
the same rules raise. The overdue safeguarding-nurse tasks are acknowledged (150 of them claimed by the nurse),
as a working team would have them, and the sweep runs once, so nothing escalates while the pages are timed.

Then it starts `wnb serve` on loopback, signs the nurse in through the form, and times GETs of the worklist
(first page by urgency, a later page by due time, a search by NHS number, "assigned to me"; and the lead's view
of the nurses' list, with the choice of whom to assign each task) beside GET
/health/live of the same server in the same run: median of `--repeat` requests each, after a warm-up. It prints
milliseconds, the ratio to the trivial page, and whether each answer came in under 300 ms (issue 16's target).

    .venv/bin/python bench/worklist.py                     # 3,000 tasks, SQLite and PostgreSQL
    .venv/bin/python bench/worklist.py --store sqlite      # one store
    .venv/bin/python bench/worklist.py --tasks 500 --repeat 10

PostgreSQL: `--server` (default postgresql+psycopg://postgres@127.0.0.1:5432); a throwaway database is created
and dropped. Progress lines go to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 300
NURSE, PASSWORD = "bench.nurse", "a long benchmark passphrase"
LEAD = "bench.lead"  # the safeguarding lead, who sees the nurses' list with a choice of whom to assign each task
SECRET = "bench-session-secret-0123456789abcdef"
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
SERVICES = [
    ("paediatric-outpatients", "pas"),
    ("audiology", "pas"),
    ("orthoptics", "pas"),
    ("paediatric-ent", "pas"),
    ("paediatric-dental", "pas"),
    ("community-paediatrics", "community-ehr"),
    ("speech-and-language-therapy", "community-ehr"),
    ("camhs", "community-ehr"),
    ("health-visiting", "community-ehr"),
    ("school-nursing", "community-ehr"),
]
CLAIMED = 150


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def feed(children: int, now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The context records and the events (in arrival order) of `children` synthetic children: half on a
    child-protection plan, half child in need; each attended once and then was not brought, over 20 days."""
    from bench.synthetic import nhs_numbers

    contexts, attended, missed = [], [], []
    for index, nhs_number in enumerate(nhs_numbers(children, first_prefix=999_600_001)):
        born = f"{2009 + index % 16}-{1 + index % 12:02d}-{1 + index % 28:02d}"
        kind = "child-protection-plan" if index % 2 == 0 else "child-in-need"
        contexts.append(
            {
                "nhs_number": nhs_number,
                "date_of_birth": born,
                "statuses": [{"kind": kind, "start": "2025-01-06"}],
                "complex_health_needs": False,
                "care_and_support_needs": False,
                "contacts": {"social_worker": "Duty team, Northshire Children's Services"},
            }
        )
        service, source = SERVICES[index % len(SERVICES)]
        missed_at = now - timedelta(days=20) + timedelta(minutes=(index * 20 * 24 * 60) // children)
        for at, outcome, bucket in (
            (missed_at - timedelta(days=60), "attended", attended),
            (missed_at, "did-not-attend", missed),
        ):
            bucket.append(
                {
                    "source": source,
                    "event_id": f"wl-{index}-{outcome}",
                    "nhs_number": nhs_number,
                    "date_of_birth": born,
                    "service": service,
                    "appointment_id": f"wl-{index}-{outcome}",
                    "appointment_at": _iso(at),
                    "attendance": outcome,
                    "recorded_at": _iso(at + timedelta(minutes=40)),
                }
            )
    return contexts, attended + missed


def fill(url: str, children: int) -> dict[str, Any]:
    """A fresh database at `url` filled through the real ingestion path; what it holds."""
    from wnb.core.domain import Role
    from wnb.core.items import RawItem
    from wnb.core.policy import Kind, Principal
    from wnb.database import open_database
    from wnb.rule_files import load_ruleset
    from wnb.service import Service
    from wnb.store import listing
    from wnb.store.accounts import create_user

    db = open_database(url)
    try:
        create_user(db, NURSE, "safeguarding-nurse", PASSWORD)
        create_user(db, LEAD, "safeguarding-lead", PASSWORD)
        for number in range(1, 9):  # the team the lead assigns to
            create_user(db, f"bench.nurse{number}", "safeguarding-nurse", PASSWORD)
        service = Service(db, load_ruleset(ROOT / "rules" / "default"))
        now = datetime.now(UTC)
        contexts, events = feed(children, now)
        began = time.perf_counter()
        service.import_context((RawItem(n, json.dumps(c), c) for n, c in enumerate(contexts, 1)), origin="context")
        counts = service.ingest((RawItem(n, json.dumps(e), e) for n, e in enumerate(events, 1)), origin="feed")
        ingest_s = time.perf_counter() - began
        progress(f"  ingested {len(events)} events in {ingest_s:.1f} s: {dict(counts)}")
        with db.connect() as connection:
            open_tasks = listing.tasks(connection, role="safeguarding-nurse")
        nurse = Principal(Kind.USER, NURSE, Role.SAFEGUARDING_NURSE)
        began = time.perf_counter()
        overdue = [task["id"] for task in open_tasks if task["due_at"] <= _iso(now + timedelta(hours=1))]
        for number, ref in enumerate(overdue):
            if number < CLAIMED:
                service.assign_task(ref, "claim", nurse)  # claiming acknowledges
            else:
                service.act_on_task(ref, "ack", nurse)
        service.sweep()
        progress(
            f"  acknowledged {len(overdue)} overdue tasks ({CLAIMED} claimed) and swept in {time.perf_counter() - began:.1f} s"
        )
        with db.connect() as connection:
            open_tasks = listing.tasks(connection, role="safeguarding-nurse")
            every = listing.tasks(connection)
        return {
            "open_for_role": len(open_tasks),
            "open_tasks": len(every),
            "events": len(events),
            "ingest_s": ingest_s,
            "search": open_tasks[len(open_tasks) // 2]["nhs_number"],
        }
    finally:
        db.dispose()


# ---- the server and the timing ----


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(url: str, work: Path) -> Iterator[str]:
    """`wnb serve` on a free loopback port over the database at `url`, until the block ends."""
    import httpx

    env = {key: value for key, value in os.environ.items() if not key.startswith("WNB_")}
    env.update(WNB_DATABASE_URL=url, WNB_RULES_DIR=str(ROOT / "rules" / "default"), WNB_SESSION_SECRET=SECRET)
    port = free_port()
    command = [str(BIN / "wnb"), "serve", "--port", str(port), "--sweep-minutes", "600"]
    with (work / f"serve-{port}.log").open("wb") as log:
        server = subprocess.Popen(command, env=env, stderr=log, stdout=log, cwd=work)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None:
                    raise SystemExit(f"wnb serve exited with {server.returncode}; see {log.name}")
                try:
                    if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("wnb serve did not answer /health/live in 60 s")
                time.sleep(0.1)
            yield base
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def signed_in(client: Any, name: str = NURSE) -> None:
    form = client.get("/web/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf, "no CSRF token on the sign-in form"
    answer = client.post("/web/sign-in", data={"csrf": csrf.group(1), "name": name, "password": PASSWORD})
    if answer.status_code != 303:
        raise SystemExit(f"sign-in refused ({answer.status_code}): {answer.text[:300]}")


def pages(search: str) -> dict[str, tuple[str, dict[str, str]]]:
    return {
        "trivial: GET /health/live": ("/health/live", {}),
        "worklist, first page (urgency)": ("/web/", {}),
        "worklist, page 30 by due time": ("/web/", {"sort": "due", "page": "30"}),
        "worklist, search by NHS number": ("/web/", {"q": f"{search[:3]} {search[3:6]} {search[6:]}"}),
        "worklist, assigned to me": ("/web/", {"whose": "mine"}),
        "lead: the nurses' list, to assign": ("/web/", {"role": "safeguarding-nurse"}),
    }


def timed(base: str, search: str, repeat: int) -> dict[str, dict[str, float]]:
    """The median (and slowest) of `repeat` GETs of each page, one after another on one kept-alive connection."""
    import httpx

    figures: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=base, timeout=60) as nurse, httpx.Client(base_url=base, timeout=60) as lead:
        signed_in(nurse)
        signed_in(lead, LEAD)
        for name, (path, params) in pages(search).items():
            client = lead if name.startswith("lead") else nurse
            answer = client.get(path, params=params)  # warm-up: templates, caches, the connection pool
            if answer.status_code != 200:
                raise SystemExit(f"{name} answered {answer.status_code}: {answer.text[:300]}")
            rows = len(re.findall(r'<tr id="task-', answer.text))
            if name.startswith("lead") and answer.text.count('/assign"') != rows:
                raise SystemExit("the lead's page does not offer to assign every task it shows")
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                client.get(path, params=params)
                times.append((time.perf_counter() - started) * 1000)
            figures[name] = {"median_ms": statistics.median(times), "max_ms": max(times), "rows": rows}
    return figures


# ---- the stores ----


@contextmanager
def store_url(store: str, work: Path, server: str) -> Iterator[str]:
    if store == "sqlite":
        yield f"sqlite:///{work / 'worklist.db'}"
        return
    import psycopg

    name = f"wnb_bench_worklist_{os.getpid()}"
    admin = server.replace("+psycopg", "") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(store: str, held: dict[str, Any], figures: dict[str, dict[str, float]], repeat: int) -> None:
    trivial = figures["trivial: GET /health/live"]["median_ms"]
    print(
        f"\n{store}: {held['open_for_role']} open safeguarding-nurse tasks ({held['open_tasks']} open in all, "
        f"{held['events']} events), wnb serve on loopback, median of {repeat}"
    )
    print(f"{'page':34} {'rows':>5} {'median ms':>10} {'max ms':>8} {'× trivial':>10}  under {TARGET_MS} ms")
    for name, figure in figures.items():
        ratio = figure["median_ms"] / trivial
        verdict = "" if name.startswith("trivial") else ("yes" if figure["median_ms"] < TARGET_MS else "NO")
        print(
            f"{name:34} {figure['rows']:>5.0f} {figure['median_ms']:>10.1f} {figure['max_ms']:>8.1f}"
            f" {ratio:>10.1f}  {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--tasks", type=int, default=3000, help="children, so open tasks for the role")
    parser.add_argument("--repeat", type=int, default=25, help="timed requests per page (the median is printed)")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="PostgreSQL server URL (no database)")
    args = parser.parse_args()
    stores = ("sqlite", "postgres") if args.store == "both" else (args.store,)
    with tempfile.TemporaryDirectory(prefix="wnb-bench-worklist-") as folder:
        work = Path(folder)
        for store in stores:
            with store_url(store, work, args.server) as url:
                progress(f"{store}: filling a fresh database with {args.tasks} children ...")
                held = fill(url, args.tasks)
                with serving(url, work) as base:
                    progress(f"{store}: timing the pages ...")
                    figures = timed(base, held["search"], args.repeat)
                report(store, held, figures, args.repeat)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
