"""The `wnb` command line (ARCHITECTURE.md §4): tables for people on a terminal, JSON for scripts.

Every command lives in the module of its kind and is registered here, in the order `wnb --help` lists them;
no command module imports this one. The command modules import the service, store, settings and web stacks
only inside the commands that use them, so `wnb --help` starts at once; `wnb tasks` and `wnb flags` read a SQLite
file at the newest revision with sqlite3 alone (wnb.store.quick), and set structlog up only if it is imported
(tests/cli/test_startup.py checks what they import; bench/cli_startup.py measures their CPU).
"""

from __future__ import annotations

import logging

import typer

from wnb.cli import accounts, audit, database, demo, ingesting, queues, recipients, rules, serving, work
from wnb.cli.common import close_databases, guarded

app = typer.Typer(
    help="wnb: Was-Not-Brought alerts for children's health services. "
    "Reads WNB_DATABASE_URL (default: sqlite file wnb.db here) and WNB_RULES_DIR (default: rules/default).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for command, name in (
    (ingesting.ingest, None),
    (work.sweep, None),
    (work.flags, None),
    (work.tasks, None),
    (queues.rejects, None),
    (queues.outbox, None),
    (work.explain, None),
    (work.chronology, None),
    (demo.demo, None),
    (serving.serve, None),
    (serving.feeds_status, "feeds"),
    (serving.inbox_poll, "inbox"),
    (serving.mllp_listen, "mllp"),
):
    app.command(name)(command)

for group, name in (
    (ingesting.context_app, "context"),
    (recipients.recipients_app, "recipients"),
    (work.task_app, "task"),
    (work.flag_app, "flag"),
    (audit.audit_app, "audit"),
    (rules.rules_app, "rules"),
    (accounts.keys_app, "keys"),
    (accounts.users_app, "users"),
    (database.db_app, "db"),
):
    app.add_typer(group, name=name)


@app.callback()
def _set_up(command: typer.Context) -> None:
    """Logs (JSON lines on stderr, ids only) at WNB_LOG_LEVEL, default WARNING, so tables stay readable; the
    databases the command opens are closed when it ends."""
    command.call_on_close(close_databases)
    from wnb.logs import configure_when_used
    from wnb.quick_settings import log_level

    name = log_level()  # read from WNB_LOG_LEVEL without building the settings, when it can be
    if name is None:
        from wnb.settings import load_settings

        name = guarded(load_settings).log_level or "WARNING"
    level = logging.getLevelName(name)
    configure_when_used(level if isinstance(level, int) else logging.WARNING)
