"""`wnb demo`: the sample feeds of fixtures/ through the real pipeline into a fresh SQLite file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from wnb.cli.common import guarded, out, parse_now
from wnb.cli.tables import flags_table, tasks_table
from wnb.core.errors import WnbError
from wnb.core.wording import local
from wnb.database import open_database
from wnb.ingest import read_file
from wnb.ingest.ndjson import read as read_ndjson
from wnb.rule_files import load_ruleset
from wnb.service import Service
from wnb.store import audit, listing

DEMO_FILE = Path("wnb-demo.db")


def fixtures_dir() -> Path:
    here = Path("fixtures")
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "fixtures"


def run_demo(now: datetime, console: Console) -> None:
    folder = fixtures_dir()
    rules = folder.parent / "rules" / "default"
    if not (folder / "context.ndjson").is_file():
        raise WnbError(f"{folder}: sample feeds not found; run the demo from the wnb checkout")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DEMO_FILE}{suffix}").unlink(missing_ok=True)
    db = open_database(f"sqlite:///{DEMO_FILE}")
    service = Service(db, load_ruleset(rules))
    console.print(f"[bold]wnb demo[/] — ruleset {service.ruleset.short_version}, database {DEMO_FILE}")
    counts = service.import_context(read_ndjson(folder / "context.ndjson"), origin="context.ndjson")
    console.print(f"context.ndjson: {counts['created']} people", highlight=False, markup=False, soft_wrap=True)
    for feed in sorted([*folder.glob("feed-*.ndjson"), *folder.glob("feed-*.csv")]):  # named in feed order
        counts = service.ingest(read_file(feed), origin=feed.name)
        shown = ", ".join(
            f"{counts.get(k, 0)} {k}" for k in ("accepted", "superseded", "stale", "duplicate", "rejected")
        )
        console.print(f"{feed.name}: {shown}", highlight=False, markup=False, soft_wrap=True)
    counts = service.sweep(now)
    console.print(
        f"sweep as of {local(now)}: {counts['follow_ups_judged']} follow-ups judged, {counts['escalated']} escalated",
        highlight=False,
    )
    with db.connect() as connection:
        flags = listing.flags(connection)
        tasks = listing.tasks(connection)
        rejects = listing.rejects(connection)
        verified = audit.verify(connection)
    console.print(flags_table(flags, f"Active flags ({len(flags)})"))
    console.print(tasks_table(tasks, f"Open tasks ({len(tasks)}), soonest due first", now))
    console.print(
        f"{len(rejects)} rows rejected to the data-quality queue:",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    for reject in rejects:
        kind = " (stale outcome)" if reject["kind"] == "stale-outcome" else ""
        console.print(
            f"  {reject['origin']} line {reject['line']}{kind}: {reject['field']}: {reject['reason']}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    console.print(
        f"audit log: {'intact' if verified.ok else 'BROKEN'}, {verified.records} records",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    first = flags[0]["id"] if flags else "F1"
    console.print(f"Explore: WNB_DATABASE_URL=sqlite:///{DEMO_FILE} .venv/bin/wnb explain {first}", markup=False)


def demo(
    now: Annotated[str, typer.Option("--now", help="When the demo's sweep runs.")] = "2026-03-18T09:00:00+00:00",
) -> None:
    """Load the sample feeds of fixtures/ into a fresh database and show the flags and tasks raised."""
    guarded(lambda: run_demo(parse_now(now), out))
