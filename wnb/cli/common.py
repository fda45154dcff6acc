"""What every command shares: the consoles, the --json/--all/--by options, one clear error line and exit 1 for
wnb's own errors, the service over the settings, progress bars and counts."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from wnb.core.errors import WnbError

# The service, store and settings stacks cost a second of CPU to import: each helper below imports what it
# needs when a command calls it, so `wnb --help` and the commands that need none of them start at once.
if TYPE_CHECKING:
    import sqlite3

    from rich.progress import Progress
    from sqlalchemy import Engine

    from wnb.core.policy import Principal
    from wnb.core.ruleset import Ruleset
    from wnb.service import Service

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
    from wnb.settings import load_settings

    configured = load_settings().rules_dir
    if configured:
        return configured
    here = Path("rules/default")
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "rules" / "default"


def say(text: str) -> None:
    """One line of plain data: no markup, no highlighting, never wrapped (scripts read these lines)."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def fail(message: str) -> None:
    err.print(f"[bold red]wnb: error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def guarded(call: Callable[[], T]) -> T:
    """Run a command body; wnb's own errors become one clear line on stderr and exit 1."""
    try:
        return call()
    except WnbError as error:
        fail(str(error))
        raise  # unreachable: fail exits


_opened: list[Engine] = []  # the databases this command opened, closed when it ends


def open_database(url: str | None = None, create: bool = True) -> Engine:
    """The database of WNB_DATABASE_URL (or `url`), migrated to the newest schema unless not `create`; its
    connections are closed when the command ends (close_databases)."""
    from wnb import database

    engine = database.open_database(url, create)
    _opened.append(engine)
    return engine


def close_databases() -> None:
    """Closes the connections of the databases the command opened. A process's exit would close them, but a
    command run in another program's process (the tests run them so) must not leave them to the garbage collector."""
    while _opened:
        _opened.pop().dispose()


def quick_database() -> sqlite3.Connection | None:
    """The SQLite file of WNB_DATABASE_URL for a quick read (wnb.store.quick), when it is at the newest revision in
    development mode; else None, and the command opens the database with `open_database` (which migrates it, and
    in production refuses to without the audit key). A listing then starts without the store's SQLAlchemy stack."""
    from wnb.quick_settings import development_database_url
    from wnb.store.quick import open_at_newest

    url = development_database_url()
    return None if url is None else open_at_newest(url)


def code_titles() -> Callable[[str], str]:
    """The words of each flag and task code in the ruleset in force (WNB_RULES_DIR or rules/default), for the
    tables people read; a code it does not title reads as its words. Only its titles are read: a listing does
    not pay for loading the rules."""
    from wnb.core.wording import code_title
    from wnb.rule_files import read_titles
    from wnb.settings import load_settings

    titles = read_titles(load_settings().rules_dir or default_rules_dir())
    return lambda code: titles.get(code) or code_title(code)


def ruleset_in_force() -> Ruleset:
    """The ruleset of WNB_RULES_DIR (or rules/default), loaded and checked."""
    from wnb.rule_files import load_ruleset
    from wnb.settings import load_settings

    return load_ruleset(load_settings().rules_dir or default_rules_dir())


def service(rules: Path | None = None, follow_registry: bool = False) -> Service:
    """The service over WNB_DATABASE_URL and the ruleset in force, notifying as WNB_NOTIFY and WNB_WEBHOOK_URL say.

    The ruleset in force is the registry's active version (on first start, WNB_RULES_DIR's, registered as active,
    not yet approved); `rules`, a directory given on the command line, is used instead of it when given. With
    `follow_registry` (wnb serve), each transaction takes the version active when it starts.
    """
    from wnb.rule_files import load_ruleset
    from wnb.service import Service
    from wnb.service.active_ruleset import ActiveRulesets
    from wnb.settings import load_settings

    settings = load_settings()
    db = open_database(settings.database_url)
    if rules is not None:
        if settings.is_production:
            raise WnbError("--rules is refused in production: events are judged by the registry's active version")
        return Service(db, load_ruleset(rules), notify=settings.notify_targets(), sharing=settings.sharing())
    active = ActiveRulesets(db, settings.rules_dir or default_rules_dir())
    following = active if follow_registry else None
    return Service(
        db, active(datetime.now(UTC)), notify=settings.notify_targets(), rulesets=following, sharing=settings.sharing()
    )


def progress() -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def print_counts(title: str, counts: Counter[str], order: list[str]) -> None:
    shown = ", ".join(f"{counts.get(name, 0)} {name}" for name in order)
    say(f"{title}: {shown}")


def parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise WnbError(f"--now {text!r} is not an ISO-8601 time, e.g. 2026-03-02T09:00:00+00:00") from None
    if moment.tzinfo is None:
        raise WnbError(f"--now {text!r} needs a UTC offset, e.g. 2026-03-02T09:00:00+00:00")
    return moment.astimezone(UTC)


def emit_json(found: list[dict[str, Any]] | dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(found, indent=2) + "\n")


OperatorOption = Annotated[
    str | None,
    typer.Option(
        "--by",
        help="An administrator's user name (an enabled account with the admin role), recorded in the audit log "
        "via the CLI; without it, wnb's operator at this shell (`cli`).",
    ),
]


def operator(by: str | None) -> Principal | str:
    """The person named by --by (an enabled account; its role is checked by wnb.core.policy), else wnb's operator."""
    return person(open_database(), by) if by is not None else "cli"


def person(db: Engine, by: str) -> Principal:
    """The enabled account named by --by, as the principal whose role wnb.core.policy checks."""
    from wnb.store.accounts import person_named

    return person_named(db, by)
