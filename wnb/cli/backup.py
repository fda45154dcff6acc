"""`wnb db backup` and `wnb db restore`: the operations guide's backup and restore in one command each."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wnb.cli import app, guarded, say
from wnb.cli import serve as cli_service  # noqa: F401  (registers its command groups first, so `db` is shared)
from wnb.core.errors import WnbError
from wnb.database import database_url, open_database
from wnb.store import audit
from wnb.store.backup import backup, restore, row_counts


def _db_group() -> typer.Typer:
    """The `wnb db` group: the one already registered (with `wnb db upgrade`), or a new one."""
    for group in app.registered_groups:
        if group.name == "db" and isinstance(group.typer_instance, typer.Typer):
            return group.typer_instance
    created = typer.Typer(help="The database: schema, backups and restores.", no_args_is_help=True)
    app.add_typer(created, name="db")
    return created


db_app = _db_group()


@db_app.command("backup")
def db_backup(
    file: Annotated[Path, typer.Argument(help="The new backup file (never replaces one that exists).")],
) -> None:
    """Copy the database of WNB_DATABASE_URL to FILE while wnb runs (SQLite online backup or pg_dump -Fc)."""

    def run() -> None:
        taken = backup(database_url(), file)
        say(f"backup written: {taken.path} ({taken.size:,} bytes, {taken.method})")

    guarded(run)


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="A file written by `wnb db backup`.")],
) -> None:
    """Restore FILE into the empty database of WNB_DATABASE_URL, then verify its audit chain (exit 1 if broken)."""

    def run() -> None:
        restore(file, database_url())
        engine = open_database(create=False)
        try:
            with engine.connect() as connection:
                counts = {f"{name}s": count for name, count in row_counts(connection).items()}
                verified = audit.verify(connection)
        finally:
            engine.dispose()
        say(f"restored {file}: " + ", ".join(f"{count:,} {name}" for name, count in counts.items()))
        if not verified.ok:
            raise WnbError(f"audit log of the restored database is NOT intact: {verified.problem}")
        say(f"audit log intact: {verified.records} records verified")

    guarded(run)
