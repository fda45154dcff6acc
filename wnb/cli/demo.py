"""`wnb demo`: the sample feeds of fixtures/, moved to this week, through the real pipeline into a fresh SQLite
file, with an account for each role; `--serve` then serves that file on loopback as `wnb serve` would."""

from __future__ import annotations

import os
import secrets
import shlex
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wnb.cli.common import guarded, out, parse_now, say
from wnb.core.errors import WnbError

if TYPE_CHECKING:
    from rich.table import Table
    from sqlalchemy import Engine

    from wnb.core.items import RawItem
    from wnb.core.policy import Principal
    from wnb.service import Service

DEMO_FILE = Path("wnb-demo.db")
LOOPBACK = "127.0.0.1"
_QUARTER_HOUR = timedelta(minutes=15)
SWEEP_CLOCK = time(9)  # with --today alone, the sweep runs at 09:00 UK time, as a working day starts

TODAY_FEED = "demo-today.ndjson"  # the outcomes of the demo's own day, timed by run_demo
Account = tuple[str, str]  # (user name, password); the user name is the role's name


def fixtures_dir() -> Path:
    here = Path("fixtures")
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "fixtures"


def demo_url() -> str:
    """The demo database's URL, absolute, so `wnb serve` opens the same file from any folder."""
    return f"sqlite:///{DEMO_FILE.resolve()}"


def create_accounts(db: Engine) -> list[Account]:
    """An account for each role a person holds, named after the role, with a new password (stored hashed)."""
    from wnb.core.domain import Role
    from wnb.store.accounts import create_user

    accounts = []
    for role in Role:
        if role is not Role.CLINIC_SYSTEM:  # a client system's role: it holds an API key, not a password
            password = secrets.token_urlsafe(12)
            create_user(db, role.value, role.value, password)
            accounts.append((role.value, password))
    return accounts


def todays_outcomes(fixtures: Path, now: datetime) -> list[RawItem]:
    """The demo day's own outcomes (fixtures/demo-today.ndjson): each appointment 90 minutes before `now`,
    recorded 15 minutes before it, so the work they raise falls due from now on, whatever the time of day."""
    import json

    from wnb.core.items import RawItem

    items = []
    for line, text in enumerate((fixtures / TODAY_FEED).read_text(encoding="utf-8").splitlines(), start=1):
        data = json.loads(text)
        data["appointment_at"] = (now - timedelta(minutes=90)).isoformat()
        data["recorded_at"] = (now - _QUARTER_HOUR).isoformat()
        items.append(RawItem(line, json.dumps(data), data))
    return items


def work_the_past(service: Service, now: datetime) -> int:
    """What the sample's staff did before the demo's day: every open task due before `now` is completed by the
    demo account of the role that owns it, noted so; the work left open is today's, none of it overdue."""
    from wnb.core.domain import Role
    from wnb.core.policy import Kind, Principal
    from wnb.store import listing

    with service.db.connect() as connection:
        overdue = [task for task in listing.tasks(connection) if datetime.fromisoformat(task["due_at"]) < now]
    for task in overdue:
        owner = Principal(Kind.USER, task["owner_role"], Role(task["owner_role"]), via="demo")
        service.act_on_task(task["id"], "complete", owner, note=PAST_NOTE, at=now)
    return len(overdue)


PAST_NOTE = "done before the demo's day (the sample's history, completed by wnb demo)"


def release_default_ruleset(db: Engine, folder: Path, now: datetime) -> str:
    """The default ruleset through the registry as a trust would put it live, by the demo's accounts: proposed by
    the safeguarding lead (checked, its scenarios run, backtested over the still empty history), approved by the
    clinical safety officer, activated by the admin; so `wnb rules history` and the Rulesets page show it."""
    from dataclasses import replace

    from wnb.rule_files import read_files
    from wnb.service.proposals import backtest_and_store, prepare
    from wnb.store import rulesets
    from wnb.store.accounts import person_named

    def person(role: str) -> Principal:
        return replace(person_named(db, role), via="demo")

    candidate = prepare(read_files(folder), str(folder), now)
    note = "the default ruleset, as wnb ships it"
    lead = person("safeguarding-lead")
    proposal = backtest_and_store(db, candidate, lead, note, None, None, now, False, "the demo does not run them")
    version = proposal.release.version
    reason = "demo: the scenarios pass and the hazard log is complete"
    rulesets.decide(db, version, person("clinical-safety-officer"), True, reason, now)
    rulesets.activate(db, version, person("admin"), now, now, production=False)
    return (
        f"ruleset {version[:12]} proposed by safeguarding-lead, approved by clinical-safety-officer, "
        "activated by admin (wnb rules history)"
    )


def accounts_table(accounts: list[Account]) -> Table:
    from rich.table import Table

    table = Table(title="Accounts (passwords shown once)", title_justify="left")
    table.add_column("user name and role", overflow="fold")  # folded on a narrow terminal, never cut
    table.add_column("password", overflow="fold")
    for name, password in accounts:
        table.add_row(name, password)
    return table


def _moved_by(weeks: int, today: date) -> str:
    """What became of the sample feeds' dates, in words."""
    when = f"they end in the week of {today:%a %d %b %Y}"
    if weeks == 0:
        return f"sample feeds as dated: {when}"
    later = f"{abs(weeks)} week{'s' if abs(weeks) != 1 else ''} {'later' if weeks > 0 else 'earlier'}"
    return f"sample feeds moved {later}, so {when} (weekdays and times kept; bank holidays may differ)"


def run_demo(today: date, now: datetime) -> None:
    """Build the demo database from the sample feeds moved to the week of `today`, sweep at `now`, and show it."""
    import tempfile

    from wnb.cli.demo_feeds import copy_moved
    from wnb.cli.tables import flags_table, tasks_table
    from wnb.core.wording import local
    from wnb.database import open_database
    from wnb.ingest import read_file
    from wnb.ingest.ndjson import read as read_ndjson
    from wnb.rule_files import load_ruleset
    from wnb.service import Service
    from wnb.settings import load_settings
    from wnb.store import audit, listing
    from wnb.store.quality import context_coverage

    fixtures = fixtures_dir()
    if not (fixtures / "context.ndjson").is_file():
        raise WnbError(f"{fixtures}: sample feeds not found; run the demo from the wnb checkout")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DEMO_FILE}{suffix}").unlink(missing_ok=True)
    db = open_database(demo_url())
    # The demo day's clock: every record is made at `now`, so its history reads in order on that day.
    service = Service(db, load_ruleset(fixtures.parent / "rules" / "default"), clock=lambda: now)
    out.print(f"[bold]wnb demo[/] — ruleset {service.ruleset.short_version}, database {DEMO_FILE}")
    accounts = create_accounts(db)
    say(release_default_ruleset(db, fixtures.parent / "rules" / "default", now))
    with tempfile.TemporaryDirectory(prefix="wnb-demo-") as moved:
        folder = Path(moved)
        say(_moved_by(copy_moved(fixtures, folder, today), today))
        counts = service.import_context(read_ndjson(folder / "context.ndjson"), origin="context.ndjson")
        say(f"context.ndjson: {counts['created']} people")
        for feed in sorted([*folder.glob("feed-*.ndjson"), *folder.glob("feed-*.csv")]):  # named in feed order
            counts = service.ingest(read_file(feed), origin=feed.name)
            shown = ", ".join(
                f"{counts.get(k, 0)} {k}" for k in ("accepted", "superseded", "stale", "duplicate", "rejected")
            )
            say(f"{feed.name}: {shown}")
    say(f"{work_the_past(service, now)} tasks due before {local(now)} completed as the sample's history")
    counts = service.ingest(todays_outcomes(fixtures, now), origin=TODAY_FEED)
    say(f"{TODAY_FEED}: {counts.get('accepted', 0)} outcomes of today, recorded at {local(now - _QUARTER_HOUR)}")
    counts = service.sweep(now)
    say(f"sweep as of {local(now)}: {counts['follow_ups_judged']} follow-ups judged, {counts['escalated']} escalated")
    with db.connect() as connection:
        flags = listing.flags(connection)
        tasks = listing.tasks(connection)
        rejects = listing.rejects(connection)
        verified = audit.verify(connection)
        coverage = context_coverage(connection, now, load_settings().context_stale_days)
    db.dispose()
    out.print(flags_table(flags, f"Active flags ({len(flags)})", service.ruleset.title))
    out.print(tasks_table(tasks, f"Open tasks ({len(tasks)}), soonest due first", now, service.ruleset.title))
    say(f"{len(rejects)} rows rejected to the data-quality queue:")
    for reject in rejects:
        kind = " (stale outcome)" if reject["kind"] == "stale-outcome" else ""
        say(f"  {reject['origin']} line {reject['line']}{kind}: {reject['field']}: {reject['reason']}")
    say(f"audit log: {'intact' if verified.ok else 'BROKEN'}, {verified.records} records")
    people = coverage.people_without_context
    say(
        f"context match rate: {coverage.events_with_context} of {coverage.events} judged events "
        f"({coverage.ratio or 0:.0%}) have the person's safeguarding context; "
        f"{'1 person has' if people == 1 else f'{people} people have'} events but no context "
        "(the data-quality page lists them)"
    )
    out.print(accounts_table(accounts))
    say(f"Explore: {on_demo_database('explain ' + (flags[0]['id'] if flags else 'F1'))}")


def on_demo_database(command: str) -> str:
    """The shell line that runs `wnb <command>` on the demo database from any folder."""
    program = sys.argv[0] if Path(sys.argv[0]).name == "wnb" else "wnb"
    return f"WNB_DATABASE_URL={shlex.quote(demo_url())} {program} {command}"


def serve_demo(port: int | None) -> None:
    """Serve the demo database on loopback, by the code `wnb serve` runs, as WNB_DATABASE_URL would name it."""
    from wnb.cli.serving import serve
    from wnb.settings import load_settings

    os.environ["WNB_DATABASE_URL"] = demo_url()
    os.environ["WNB_RULES_DIR"] = str(fixtures_dir().parent / "rules" / "default")
    port = load_settings().port if port is None else port
    say(f"Serving the demo at http://{LOOPBACK}:{port}/web/ — sign in with an account above; Ctrl+C stops.")
    say(f"Later, {on_demo_database('serve')} serves it again.")
    sys.stdout.flush()
    serve(host=LOOPBACK, port=port)


def say_how_to_open_the_pages() -> None:
    from wnb.settings import load_settings

    page = f"http://{LOOPBACK}:{load_settings().port}/web/"
    say(f"Pages: {on_demo_database('serve')}, then open {page} and sign in with an account above")
    say("  (or `wnb demo --serve`: a fresh demo, served at once)")


def _refuse_in_production() -> None:
    from wnb.settings import load_settings

    if load_settings().is_production:
        raise WnbError(
            "refusing to serve the demo in production mode (WNB_MODE=production): it serves sample children "
            "to accounts whose passwords it prints; run it without WNB_MODE=production"
        )


def _today(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise WnbError(f"--today {text!r} is not a date, e.g. 2026-03-18") from None


def demo(
    today: Annotated[
        str | None,
        typer.Option(
            "--today",
            help="The day the demo is set on: the sample feeds move by whole weeks to end in its week "
            "(default: today in UK time, or the day of --now).",
        ),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="When the demo's sweep runs (default: now, or 09:00 UK time on --today)."),
    ] = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="Then serve the demo database on 127.0.0.1 (refused in production).")
    ] = False,
    port: Annotated[int | None, typer.Option("--port", help="With --serve: TCP port (default WNB_PORT).")] = None,
) -> None:
    """Load the sample feeds of fixtures/, moved to this week, into a fresh database with an account for each
    role, and show the flags and tasks raised; --serve then serves the pages and the API on loopback."""
    from wnb.core.calendar import london_date, london_time_on

    def run() -> None:
        if serve:
            _refuse_in_production()  # before anything is written
        day = _today(today) if today is not None else None
        moment = parse_now(now) if now is not None or day is None else london_time_on(day, SWEEP_CLOCK)
        run_demo(day or london_date(moment), moment)
        if serve:
            serve_demo(port)
        else:
            say_how_to_open_the_pages()

    guarded(run)
