"""`wnb rules check|test|simulate`: a ruleset checked, its scenarios run, and replayed over stored history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wnb.cli.common import JsonOption, default_rules_dir, guarded, open_database, out, say
from wnb.core.errors import WnbError

if TYPE_CHECKING:
    from wnb.core.ruleset import Ruleset

rules_app = typer.Typer(help="Check and test rulesets.", no_args_is_help=True)


RulesDir = Annotated[Path | None, typer.Argument(help="Ruleset directory (default: WNB_RULES_DIR or rules/default).")]


@rules_app.command("check")
def rules_check(directory: RulesDir = None) -> None:
    """Validate a ruleset directory and its hazard log; print its version (the hash of its content) and rules."""
    from wnb.matcher import durable
    from wnb.rule_files import load_ruleset

    def run() -> None:
        ruleset = load_ruleset(directory or default_rules_dir())

        durable.register(ruleset)
        _check_titles(ruleset)
        summary = _check_hazard_log(directory or default_rules_dir(), ruleset)
        say(f"{directory or default_rules_dir()}: valid, version {ruleset.short_version}, {len(ruleset.rules)} rules")
        for rule in ruleset.rules:
            raised = (
                f"flag {rule.flag.code} “{ruleset.title(rule.flag.code)}” ({rule.flag.level.value})"
                if rule.flag
                else "no flag"
            )
            controls = f"; controls {', '.join(rule.hazards)}" if rule.hazards else ""
            say(f"  {rule.id} on {rule.trigger}: {rule.title} → {raised}, {len(rule.tasks)} tasks{controls}")
        if summary:
            say(summary)

    guarded(run)


def _check_titles(ruleset: Ruleset) -> None:
    """Every flag and task code a rule uses has its words in ruleset.yaml's `titles:` (when the map is given):
    each missing one is a line on stderr, and exit 1."""
    from rich.markup import escape

    from wnb.cli.common import err
    from wnb.core.ruleset import SETTINGS_FILE, untitled_codes

    missing = untitled_codes(ruleset)
    for code in missing:
        err.print(
            f"[bold red]wnb: error:[/] {escape(f'{ruleset.directory}/{SETTINGS_FILE}: titles: no title for {code}')}",
            highlight=False,
            soft_wrap=True,
        )
    if missing:
        raise typer.Exit(1)


def _check_hazard_log(folder: Path, ruleset: Ruleset) -> str | None:
    """Hold the ruleset's hazard log to its rules, scenarios and wnb's tests (wnb.core.hazards): each error is a line
    on stderr and exit 1, each warning a line on stderr; the log's one-line summary when it passes."""
    from datetime import UTC

    from rich.markup import escape

    from wnb.cli.common import err
    from wnb.core.calendar import london_date
    from wnb.core.hazard_check import check_hazard_log
    from wnb.core.hazards import describe, evidence_modules, load_hazard_log
    from wnb.rule_files import read_files, read_suite

    files = read_files(folder)
    log = load_hazard_log(files, str(folder))
    findings = check_hazard_log(ruleset, files, log, read_suite(evidence_modules(log)), london_date(datetime.now(UTC)))
    for error in findings.errors:
        err.print(f"[bold red]wnb: error:[/] {escape(error)}", highlight=False, soft_wrap=True)
    if not findings.passed:
        raise typer.Exit(1)
    for warning in findings.warnings:
        err.print(f"[yellow]wnb: warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    return describe(log) if log else None


def _results(ruleset: Ruleset, directory: Path) -> Iterator[Any]:
    from wnb.service.scenarios import run_scenario, scenario_files

    for path in scenario_files(directory):
        yield run_scenario(ruleset, path)


@rules_app.command("test")
def rules_test(directory: RulesDir = None) -> None:
    """Run the ruleset's scenario files (DIR/scenarios/*.yaml); exit 1 if any fails."""
    from wnb.rule_files import load_ruleset

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
    first: Annotated[str, typer.Option("--from", help="First day of the period (YYYY-MM-DD, UK).")],
    last: Annotated[str, typer.Option("--to", help="Last day of the period, included (YYYY-MM-DD, UK).")],
    rules: Annotated[Path | None, typer.Option("--rules", help="A local candidate ruleset directory.")] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="A version of the registry (its hash or a unique prefix).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Replay the period's stored history under a candidate ruleset (in a scratch database) and compare: a local
    directory (--rules) or a version of the registry (--version)."""
    from wnb.cli.tables import simulation_tables
    from wnb.rule_files import load_ruleset
    from wnb.service.simulate import period_of, simulate

    def run() -> None:
        if (rules is None) == (version is None):
            raise WnbError("give the candidate as --rules DIR or as --version VERSION (one of them)")
        try:
            start, end = period_of(datetime.fromisoformat(first).date(), datetime.fromisoformat(last).date())
        except ValueError as error:
            raise WnbError(f"--from and --to must be dates like 2026-03-01: {error}") from None
        db = open_database()
        if rules is not None:
            candidate, named = load_ruleset(rules), str(rules)
        else:
            from wnb.core.ruleset import load_files
            from wnb.store import rulesets

            release = rulesets.find(db, str(version))
            candidate = load_files(rulesets.files_of(db, release.version), f"version {release.short}")
            named = f"version {release.short}"
        result = simulate(db, candidate, start, end)
        if as_json:
            say(json.dumps(result.as_dict(), indent=2))
            return
        for table in simulation_tables(result, f"{named} ({result.candidate_version[:12]}), {first} to {last}"):
            out.print(table)

    guarded(run)


# ---- the registry (issue 15): propose, approve or reject, activate, history, diff ----

Version = Annotated[str, typer.Argument(help="A ruleset version: its full hash or a unique prefix (6 or more).")]
PersonBy = Annotated[str, typer.Option("--by", help="The user name of the person acting (an enabled account).")]
Reason = Annotated[str, typer.Option("--reason", help="Why: recorded with the decision and in the audit log.")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password of --by from standard input (required).")
]


def _day(text: str, option: str) -> Any:
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise WnbError(f"{option} {text!r} must be a date like 2026-03-01") from None


def _release_dict(release: Any) -> dict[str, Any]:
    """A version as scripts read it: every field, times in UTC ISO-8601."""
    from dataclasses import asdict

    found = asdict(release)
    found["status"] = release.status.value
    found["approved"] = release.is_approved
    for name, value in found.items():
        if isinstance(value, datetime):
            found[name] = value.isoformat()
    return found


@rules_app.command("propose")
def rules_propose(
    directory: Annotated[Path, typer.Argument(help="The candidate ruleset directory.")],
    by: PersonBy,
    note: Annotated[str | None, typer.Option("--note", help="What changes and why.")] = None,
    first: Annotated[
        str | None, typer.Option("--from", help="First day of the backtest (default: a year ago).")
    ] = None,
    last: Annotated[
        str | None, typer.Option("--to", help="Last day of the backtest, included (default: today).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Store a ruleset as a proposed version: checked, its scenarios passing, backtested against the active one."""
    from datetime import UTC

    from wnb.cli.common import emit_json
    from wnb.service.proposals import propose
    from wnb.settings import load_settings
    from wnb.store.accounts import person_named

    def run() -> None:
        if (first is None) != (last is None):
            raise WnbError("give both --from and --to, or neither (the last 12 months)")
        period = (_day(first, "--from"), _day(last, "--to")) if first and last else None
        db = open_database()
        run_tests = load_settings().propose_tests
        principal = person_named(db, by)
        proposal = propose(db, directory, principal, note, period, default_rules_dir(), datetime.now(UTC), run_tests)
        if as_json:
            emit_json([{**_release_dict(proposal.release), "evidence": proposal.evidence}])
            return
        backtest = proposal.evidence["backtest"]
        differing = [row["key"] for row in backtest["by_rule"] if row["differs"]]
        say(f"proposed version {proposal.release.version}")
        say(f"  compared against the active version {str(proposal.release.compared_against)[:12]}")
        say(f"  {len(proposal.evidence['scenarios'])} scenarios passed")
        say(f"  system controls: {proposal.evidence['system_controls']['summary']}")
        say(
            f"  backtest {backtest['from'][:10]} to {backtest['to'][:10]}: {backtest['events_replayed']} events "
            f"replayed; rules that differ: {', '.join(differing) or 'none'}"
        )
        say(f"next: a clinical-safety-officer runs `wnb rules approve {proposal.release.short} --by NAME ...`")

    guarded(run)


def _decide(version: str, by: str, reason: str, password_stdin: bool, approved: bool) -> None:
    import sys
    from dataclasses import replace
    from datetime import UTC

    from wnb.settings import load_settings
    from wnb.store import rulesets
    from wnb.store.signin import Limits, check_password

    def run() -> None:
        if not password_stdin:
            raise WnbError("give the password of --by on standard input with --password-stdin")
        password = sys.stdin.readline().rstrip("\n")
        settings = load_settings()
        limits = Limits(lock_failures=settings.signin_lock_failures, lock_minutes=settings.signin_lock_minutes)
        db = open_database()
        now = datetime.now(UTC)
        person = check_password(db, by, password, "cli", now, limits, via="cli")
        if person is None:
            raise WnbError(f"--by {by!r}: wrong user name or password, or the account is disabled")
        decided = rulesets.decide(db, version, replace(person, via="cli"), approved, reason, now)
        say(f"{decided.status.value} version {decided.version} by {by}: {decided.reason}")

    guarded(run)


@rules_app.command("approve")
def rules_approve(version: Version, by: PersonBy, reason: Reason, password_stdin: PasswordStdin = False) -> None:
    """Approve a proposed version as a clinical-safety-officer who did not propose it (password checked)."""
    _decide(version, by, reason, password_stdin, approved=True)


@rules_app.command("reject")
def rules_reject(version: Version, by: PersonBy, reason: Reason, password_stdin: PasswordStdin = False) -> None:
    """Reject a proposed version as a clinical-safety-officer who did not propose it (password checked)."""
    _decide(version, by, reason, password_stdin, approved=False)


@rules_app.command("activate")
def rules_activate(
    version: Version,
    by: PersonBy,
    at: Annotated[
        str | None, typer.Option("--at", help="When it comes into force (ISO-8601 with offset; default now).")
    ] = None,
) -> None:
    """Activate a version now, or schedule it (--at later), as an admin; a retired version again is a rollback."""
    from wnb.cli.common import parse_now
    from wnb.settings import load_settings
    from wnb.store import rulesets
    from wnb.store.accounts import person_named

    def run() -> None:
        db = open_database()
        now = parse_now(None)
        when = parse_now(at) if at is not None else now
        step = rulesets.activate(db, version, person_named(db, by), max(when, now), now, load_settings().is_production)
        release = step.release
        if release.status.value == "scheduled":
            say(f"scheduled version {release.version} from {release.active_from}")
        else:
            say(f"activated version {release.version}")
        if step.retired is not None:
            say(f"  retired version {step.retired.version}")
        if step.unscheduled is not None:
            say(f"  no longer scheduled: version {step.unscheduled.version}")
        if step.is_rollback:
            say("  a rollback: marked for review")
        if not release.is_approved:
            say("  warning: this version is not approved by a clinical-safety-officer")

    guarded(run)


@rules_app.command("history")
def rules_history(as_json: JsonOption = False) -> None:
    """Every version of the registry: status, proposer, approver, reasons and times (UK local time)."""
    from rich.table import Table

    from wnb.cli.common import emit_json
    from wnb.core.wording import local_short
    from wnb.store import rulesets

    def run() -> None:
        found = rulesets.history(open_database())
        if as_json:
            emit_json([_release_dict(release) for release in found])
            return
        table = Table(title="Ruleset versions (UK local time)", title_justify="left")
        for column in ("version", "status", "proposed", "decided", "active", "reason or note"):
            table.add_column(column, overflow="fold")
        for release in found:
            status = release.status.value
            if release.status.value == "active" and not release.is_approved:
                status = "active, not yet approved"
            if release.rollback:
                status += " (rollback: review)"
            decided = ""
            if release.approved_by and release.approved_at:
                decided = f"approved by {release.approved_by} {local_short(release.approved_at)}"
            elif release.rejected_by and release.rejected_at:
                decided = f"rejected by {release.rejected_by} {local_short(release.rejected_at)}"
            active = ""
            if release.active_from:
                active = f"from {local_short(release.active_from)} by {release.activated_by}"
                if release.retired_at:
                    active += f", retired {local_short(release.retired_at)}"
            proposed = f"{release.proposed_by} {local_short(release.proposed_at)}"
            table.add_row(release.short, status, proposed, decided, active, release.reason or release.note or "")
        out.print(table)

    guarded(run)


@rules_app.command("diff")
def rules_diff(first: Version, second: Version) -> None:
    """What two stored versions differ in: parameters side by side, then each changed file as a unified diff."""
    from rich.markup import escape
    from rich.table import Table

    from wnb.service.proposals import diff

    def run() -> None:
        found = diff(open_database(), first, second)
        if found.same:
            say(f"versions {found.first[:12]} and {found.second[:12]} have the same parameters and files")
            return
        if found.parameters:
            table = Table(title="Parameters (ruleset.yaml)", title_justify="left")
            for column in ("parameter", found.first[:12], found.second[:12]):
                table.add_column(column, overflow="fold")
            for name, old, new in found.parameters:
                table.add_row(escape(name), escape(str(old)), escape(str(new)))
            out.print(table)
        for text in found.files:
            say(text.rstrip("\n"))

    guarded(run)


@rules_app.command("report")
def rules_report(
    version: Version,
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the report (FILE.html).")],
) -> None:
    """Write the safety case report of a version (printable HTML), stored in the registry with its SHA-256; the
    same stored record always gives the same bytes."""
    from datetime import UTC

    from wnb.service.safety_reports import make_report

    def run() -> None:
        report = make_report(open_database(), version, "cli", datetime.now(UTC))
        out_file.write_bytes(report.html.encode("utf-8"))
        again = "stored" if report.stored else "the same bytes as stored before"
        say(f"report of version {report.release.version} written to {out_file}: sha256 {report.sha256} ({again})")

    guarded(run)
