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
    from wnb.core.hazards import check_hazard_log, describe, evidence_modules, load_hazard_log
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
    rules: Annotated[Path, typer.Option("--rules", help="The candidate ruleset directory.")],
    first: Annotated[str, typer.Option("--from", help="First day of the period (YYYY-MM-DD, UK).")],
    last: Annotated[str, typer.Option("--to", help="Last day of the period, included (YYYY-MM-DD, UK).")],
    as_json: JsonOption = False,
) -> None:
    """Replay the period's stored history under a candidate ruleset (in a scratch database) and compare."""
    from wnb.rule_files import load_ruleset
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
