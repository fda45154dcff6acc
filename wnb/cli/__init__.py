"""The `wnb` command line (ARCHITECTURE.md §4): tables for people on a terminal, JSON for scripts."""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from wnb import notify
from wnb.cli.tables import flags_table, tasks_table
from wnb.core.errors import WnbError
from wnb.core.ruleset import Ruleset
from wnb.core.wording import local, plain_code
from wnb.database import open_database
from wnb.ingest.ahead import read_checked
from wnb.ingest.ndjson import read as read_ndjson
from wnb.logs import configure as configure_logging
from wnb.notify import webhook
from wnb.rule_files import load_ruleset
from wnb.service import Service, utc_now
from wnb.service.explain import explain_item
from wnb.service.parent_letters import young_person_parent_letters
from wnb.service.scenarios import run_scenario, scenario_files
from wnb.settings import load_settings
from wnb.store import audit as audit_log
from wnb.store import listing
from wnb.store.accounts import person_named

app = typer.Typer(
    help="wnb: Was-Not-Brought alerts for children's health services. "
    "Reads WNB_DATABASE_URL (default: sqlite file wnb.db here) and WNB_RULES_DIR (default: rules/default).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
context_app = typer.Typer(help="Safeguarding context of people (child register).", no_args_is_help=True)
task_app = typer.Typer(help="Act on a task: acknowledge, complete or cancel.", no_args_is_help=True)
flag_app = typer.Typer(help="Act on a flag.", no_args_is_help=True)
audit_app = typer.Typer(
    help="The hash-chained audit log: verify, export, signed checkpoints and its keys.", no_args_is_help=True
)
rules_app = typer.Typer(help="Check and test rulesets.", no_args_is_help=True)
app.add_typer(context_app, name="context")
app.add_typer(task_app, name="task")
app.add_typer(flag_app, name="flag")
app.add_typer(audit_app, name="audit")
app.add_typer(rules_app, name="rules")

out = Console()
err = Console(stderr=True)
T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (a list of objects) for scripts.")]
AllOption = Annotated[bool, typer.Option("--all", help="Every status, not only open items.")]
ByOption = Annotated[
    str,
    typer.Option(
        "--by",
        help="Who is acting: the user name of an enabled account, whose role must allow the action (wnb.core.policy); "
        "recorded in the audit log as that person, via the CLI.",
    ),
]


def default_rules_dir() -> Path:
    configured = load_settings().rules_dir
    if configured:
        return configured
    here = Path("rules/default")
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "rules" / "default"


def say(text: str) -> None:
    """One line of plain data: no markup, no highlighting, never wrapped (scripts read these lines)."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]wnb: error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def guarded(call: Callable[[], T]) -> T:
    """Run a command body; wnb's own errors become one clear line on stderr and exit 1."""
    try:
        return call()
    except WnbError as error:
        _fail(str(error))
        raise  # unreachable: _fail exits


def service(rules: Path | None = None) -> Service:
    """The service over WNB_DATABASE_URL and the ruleset in force, notifying as WNB_NOTIFY and WNB_WEBHOOK_URL say."""
    settings = load_settings()
    ruleset = load_ruleset(rules or settings.rules_dir or default_rules_dir())
    return Service(open_database(settings.database_url), ruleset, notify=settings.notify_targets())


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _print_counts(title: str, counts: Counter[str], order: list[str]) -> None:
    shown = ", ".join(f"{counts.get(name, 0)} {name}" for name in order)
    say(f"{title}: {shown}")


@context_app.command("import")
def context_import(file: Annotated[Path, typer.Argument(help="NDJSON person context records.")]) -> None:
    """Import person context records (DOB, statuses, needs, contacts); a bad line goes to `wnb rejects`."""

    def run() -> None:
        if not file.is_file():
            raise WnbError(f"{file}: no such file")
        counts = service().import_context(read_ndjson(file), origin=f"context:{file.name}")
        _print_counts(str(file), counts, ["created", "updated", "rejected"])

    guarded(run)


@app.command()
def ingest(
    files: Annotated[
        list[Path], typer.Argument(help="NDJSON or CSV canonical events, FHIR JSON, or HL7 v2 SIU messages.")
    ],
    format: Annotated[
        str | None, typer.Option("--format", help="ndjson, csv, fhir or hl7 (default: by content).")
    ] = None,
    rules: Annotated[Path | None, typer.Option("--rules", help="Ruleset directory.")] = None,
) -> None:
    """Store and evaluate every event of the files; print counts. Rejected rows go to `wnb rejects`."""

    def run() -> None:
        wnb = service(rules)
        for file in files:
            # A large file's lines are checked in a second process while this one ingests (wnb/ingest/ahead.py).
            with closing(read_checked(file, format)) as items, _progress() as progress:
                bar = progress.add_task(f"ingesting {file.name}", total=_count_lines(file))
                counts = wnb.ingest(items, origin=file.name, progress=partial(progress.advance, bar))
            _print_counts(str(file), counts, ["accepted", "superseded", "stale", "duplicate", "rejected"])

    guarded(run)


def _parse_now(text: str | None) -> datetime:
    if text is None:
        return utc_now()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise WnbError(f"--now {text!r} is not an ISO-8601 time, e.g. 2026-03-02T09:00:00+00:00") from None
    if moment.tzinfo is None:
        raise WnbError(f"--now {text!r} needs a UTC offset, e.g. 2026-03-02T09:00:00+00:00")
    return moment.astimezone(UTC)


@app.command()
def sweep(
    now: Annotated[str | None, typer.Option("--now", help="ISO-8601 instant (default: the clock).")] = None,
) -> None:
    """Run time-based rules (WNB-14) and escalations as of NOW. A second sweep at the same NOW changes nothing."""

    def run() -> None:
        counts = service().sweep(_parse_now(now))
        if counts.get("skipped_another_replica_sweeping"):  # not "0 judged": nothing was looked at
            say("sweep: skipped, another replica is sweeping now (it does the same work)")
            return
        _print_counts("sweep", counts, ["follow_ups_judged", "follow_ups_void", "escalated"])

    guarded(run)


def _emit_json(items: list[dict[str, Any]]) -> None:
    sys.stdout.write(json.dumps(items, indent=2) + "\n")


@app.command()
def flags(
    as_json: JsonOption = False,
    all_: AllOption = False,
    nhs_number: Annotated[str | None, typer.Option("--nhs-number", help="Only this person.")] = None,
) -> None:
    """List active flags (with --all: every flag)."""

    def run() -> None:
        with open_database().connect() as connection:
            items = listing.flags(connection, include_closed=all_, nhs_number=nhs_number)
        if as_json:
            return _emit_json(items)
        out.print(flags_table(items, f"{len(items)} flag{'s' if len(items) != 1 else ''}"))

    guarded(run)


@app.command()
def tasks(
    as_json: JsonOption = False,
    all_: AllOption = False,
    role: Annotated[str | None, typer.Option("--role", help="Only tasks owned by this role.")] = None,
) -> None:
    """List open tasks, soonest due first (with --all: every task)."""

    def run() -> None:
        with open_database().connect() as connection:
            items = listing.tasks(connection, include_closed=all_, role=role)
        if as_json:
            return _emit_json(items)
        out.print(tasks_table(items, f"{len(items)} task{'s' if len(items) != 1 else ''}", utc_now()))

    guarded(run)


def _task_action(action: str, task_id: str, by: str, note: str | None) -> None:
    def run() -> None:
        wnb = service()
        row = wnb.act_on_task(task_id, action, person_named(wnb.db, by), note)
        say(f"task T{row.id} {plain_code(row.code)}: {row.status}")

    guarded(run)


NoteOption = Annotated[str | None, typer.Option("--note", help="A note kept in the task's history.")]
TaskId = Annotated[str, typer.Argument(help="Task id, e.g. T12.")]


@task_app.command("ack")
def task_ack(task_id: TaskId, by: ByOption, note: NoteOption = None) -> None:
    """Acknowledge a requested task: it is yours and will not escalate."""
    _task_action("ack", task_id, by, note)


@task_app.command("complete")
def task_complete(task_id: TaskId, by: ByOption, note: NoteOption = None) -> None:
    """Complete a task, with a note of what was done."""
    _task_action("complete", task_id, by, note)


@task_app.command("cancel")
def task_cancel(task_id: TaskId, by: ByOption, note: NoteOption = None) -> None:
    """Cancel a task that is not needed, with a note of why."""
    _task_action("cancel", task_id, by, note)


@task_app.command("young-person-letters")
def task_young_person_letters(as_json: JsonOption = False) -> None:
    """List open letter-to-parent tasks raised for young people of 16 or 17 before WNB-09 wrote to them instead.

    For the booking team: cancel each (wnb task cancel ID --by NAME --note ...) and write to the young person.
    """

    def run() -> None:
        with open_database().connect() as connection:
            items = young_person_parent_letters(connection)
        if as_json:
            return _emit_json(items)
        title = f"{len(items)} open letter-to-parent task{'s' if len(items) != 1 else ''} of young people (16-17)"
        out.print(tasks_table(items, title, utc_now()))
        if items:
            say("A young person's appointments are theirs: cancel each letter with a note and write to them instead.")

    guarded(run)


@flag_app.command("resolve")
def flag_resolve(
    flag_id: Annotated[str, typer.Argument(help="Flag id, e.g. F3.")],
    by: ByOption,
    reason: Annotated[str, typer.Option("--reason", help="Why the flag is resolved (required).")],
) -> None:
    """Resolve an active flag (it becomes inactive), with a reason."""

    def run() -> None:
        wnb = service()
        row = wnb.resolve_flag(flag_id, person_named(wnb.db, by), reason)
        say(f"flag F{row.id} {plain_code(row.code)}: {row.status}")

    guarded(run)


@app.command()
def rejects(as_json: JsonOption = False, all_: AllOption = False) -> None:
    """The data-quality queue: rejected rows and stale outcomes (kind), with the reason and the raw row."""

    def run() -> None:
        with open_database().connect() as connection:
            items = listing.rejects(connection, include_handled=all_)
        if as_json:
            return _emit_json(items)
        stale = sum(1 for item in items if item["kind"] == "stale-outcome")
        refused = len(items) - stale
        title = f"{refused} rejected row{'s' if refused != 1 else ''}"
        if stale:
            title += f", {stale} stale outcome{'s' if stale != 1 else ''}"
        table = Table(title=title, title_justify="left")
        for column in ("id", "kind", "received (UK time)", "times", "from", "line", "field", "reason", "raw"):
            table.add_column(column, overflow="fold")
        for item in items:
            cells = [
                item["id"],
                item["kind"],
                local(item["received_at"]),
                _times(item),
                item["origin"],
                str(item["line"] or ""),
                item["field"] or "",
                item["reason"],
                ("base64 of the bytes received: " if item["raw_encoding"] == "base64" else "") + item["raw"][:200],
            ]
            table.add_row(*(Text(cell) for cell in cells))
        out.print(table)

    guarded(run)


@app.command()
def outbox(
    as_json: JsonOption = False,
    all_: Annotated[bool, typer.Option("--all", help="Delivered messages too, not only those not delivered.")] = False,
) -> None:
    """Notifications not delivered (pending, sending, uncertain, failed), each with what to do about it."""

    def run() -> None:
        with open_database().connect() as connection:
            items = listing.outbox(connection, include_sent=all_)
        for item in items:  # a webhook URL may carry a token: show its host only
            if webhook.is_webhook(item["recipient"]):
                item["recipient"] = webhook.host_of(item["recipient"])
        if as_json:
            return _emit_json(items)
        table = Table(title=f"{len(items)} notification{'s' if len(items) != 1 else ''}", title_justify="left")
        for column in ("id", "status", "to", "notification", "tries", "last error", "admin task", "what to do"):
            table.add_column(column, overflow="fold")
        for item in items:
            cells = [str(item["id"]), item["status"], item["recipient"], item["notification"], str(item["attempts"])]
            cells += [item["last_error"] or "", item["admin_task"] or "", notify.WHAT_TO_DO.get(item["status"], "")]
            table.add_row(*(Text(cell) for cell in cells))
        out.print(table)
        waiting = Counter(item["status"] for item in items)
        if waiting["uncertain"] or waiting["failed"]:
            say(
                f"{waiting['uncertain']} uncertain, {waiting['failed']} failed: each has an admin task "
                "(`wnb tasks --role admin`); `wnb explain T…` shows what to check, then complete the task"
            )

    guarded(run)


def _times(reject: dict[str, Any]) -> str:
    """How often a rejected row was received: `1`, or `3, last Mon 02 Mar 2026 09:05 GMT`."""
    count = reject["received_count"]
    return str(count) if count == 1 else f"{count}, last {local(reject['last_received_at'])}"


@audit_app.command("export")
def audit_export(
    format: Annotated[
        str, typer.Option("--format", help="json: the records as JSON lines; fhir: AuditEvent and Provenance NDJSON.")
    ] = "json",
) -> None:
    """Write the audit log to standard output, one JSON object a line."""

    def run() -> None:
        if format not in ("json", "fhir"):
            raise WnbError(f"--format {format!r}: use json or fhir")
        from wnb.fhir import export as fhir_export

        lines = fhir_export.export_lines if format == "fhir" else audit_log.export_lines
        with open_database().connect() as connection:
            for line in lines(connection):
                sys.stdout.write(line + "\n")

    guarded(run)


@app.command()
def explain(item_id: Annotated[str, typer.Argument(help="A flag (F12) or task (T34) id.")]) -> None:
    """Show the events, facts and rule conditions that produced a flag or task, in plain words."""

    def run() -> None:
        with open_database().connect() as connection:
            for line in explain_item(connection, item_id):
                say(line)

    guarded(run)


RulesDir = Annotated[Path | None, typer.Argument(help="Ruleset directory (default: WNB_RULES_DIR or rules/default).")]


@rules_app.command("check")
def rules_check(directory: RulesDir = None) -> None:
    """Validate a ruleset directory; print its version (the hash of its content) and rules."""

    def run() -> None:
        ruleset = load_ruleset(directory or default_rules_dir())
        from wnb.matcher import durable

        durable.register(ruleset)
        say(f"{directory or default_rules_dir()}: valid, version {ruleset.short_version}, {len(ruleset.rules)} rules")
        for rule in ruleset.rules:
            raised = f"flag {rule.flag.code} ({rule.flag.level.value})" if rule.flag else "no flag"
            say(f"  {rule.id} on {rule.trigger}: {rule.title} → {raised}, {len(rule.tasks)} tasks")

    guarded(run)


def _results(ruleset: Ruleset, directory: Path) -> Iterator[Any]:
    for path in scenario_files(directory):
        yield run_scenario(ruleset, path)


@rules_app.command("test")
def rules_test(directory: RulesDir = None) -> None:
    """Run the ruleset's scenario files (DIR/scenarios/*.yaml); exit 1 if any fails."""

    def run() -> None:
        folder = directory or default_rules_dir()
        ruleset = load_ruleset(folder)
        passed = failed = 0
        for result in _results(ruleset, folder):
            if result.passed:
                passed += 1
                say(f"PASS {result.path.name}: {result.name}")
            else:
                failed += 1
                say(f"FAIL {result.path.name}: {result.name}")
                for problem in result.problems:
                    say(f"     {problem}")
        say(f"{passed} passed, {failed} failed")
        if failed or not passed:
            raise typer.Exit(1)

    guarded(run)


@rules_app.command("simulate")
def rules_simulate(
    rules: Annotated[Path, typer.Option("--rules", help="The candidate ruleset directory.")],
    first: Annotated[str, typer.Option("--from", help="First day of the period (YYYY-MM-DD, UK).")],
    last: Annotated[str, typer.Option("--to", help="Last day of the period, included (YYYY-MM-DD, UK).")],
    as_json: JsonOption = False,
) -> None:
    """Replay the period's stored history under a candidate ruleset (in a scratch database) and compare."""
    from wnb.service.simulate import period_of, simulate, simulation_tables

    def run() -> None:
        try:
            start, end = period_of(datetime.fromisoformat(first).date(), datetime.fromisoformat(last).date())
        except ValueError as error:
            raise WnbError(f"--from and --to must be dates like 2026-03-01: {error}") from None
        result = simulate(open_database(), load_ruleset(rules), start, end)
        if as_json:
            say(json.dumps(result.as_dict(), indent=2))
            return
        for table in simulation_tables(result, f"{rules} ({result.candidate_version[:12]}), {first} to {last}"):
            out.print(table)

    guarded(run)


@app.command()
def demo(
    now: Annotated[str, typer.Option("--now", help="When the demo's sweep runs.")] = "2026-03-18T09:00:00+00:00",
) -> None:
    """Load the sample feeds of fixtures/ into a fresh database and show the flags and tasks raised."""
    from wnb.cli.demo import run_demo

    guarded(lambda: run_demo(_parse_now(now), out))


@app.callback()
def _configure_logging() -> None:
    """Logs (JSON lines on stderr, ids only) at WNB_LOG_LEVEL, default WARNING, so tables stay readable."""
    level = logging.getLevelName(guarded(load_settings).log_level or "WARNING")
    configure_logging(level if isinstance(level, int) else logging.WARNING)


# The service's commands (serve, inbox, keys, users) register themselves on `app`.
import wnb.cli.audit  # noqa: E402,F401  (wnb audit verify / checkpoint / keygen / new-key)
import wnb.cli.backup  # noqa: E402,F401  (wnb db backup / restore)
from wnb.cli import serve as cli_service  # noqa: E402,F401  (imported last: it uses the helpers above)
