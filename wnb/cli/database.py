"""`wnb db upgrade|backup|restore`: the schema's migrations, and the operations guide's backup and restore."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wnb.cli.common import guarded, open_database, say
from wnb.core.errors import WnbError

if TYPE_CHECKING:
    from sqlalchemy import Engine

db_app = typer.Typer(help="The database's schema (Alembic migrations).", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database at WNB_DATABASE_URL to the newest schema (also done on `wnb serve` start)."""
    from wnb.store.schema import head, upgrade

    def run() -> None:
        engine = open_database(create=False)
        before = upgrade(engine)
        if before == head():
            say(f"database schema already at revision {head()}")
        else:
            say(f"database schema upgraded from revision {before or 'none'} to {head()}")
        _switch_to_audit_keys(engine)

    guarded(run)


def _switch_to_audit_keys(engine: Engine) -> None:
    """With WNB_AUDIT_KEY set on a log written without it: append `audit_rekeyed` now, and checkpoint the switch."""
    from wnb.service.audit_checkpoints import CheckpointWriter, load_private_key
    from wnb.settings import load_settings
    from wnb.store.audit import switch_to_keys
    from wnb.store.db import writing

    with writing(engine) as connection:
        switched = switch_to_keys(connection)
    if not switched:
        return
    say("audit log: records from here on carry an HMAC with WNB_AUDIT_KEY (an audit_rekeyed record marks the switch)")
    settings = load_settings()
    if settings.audit_signing_key is None or settings.audit_checkpoint_dir is None:
        say("take a checkpoint of the switch now: wnb audit checkpoint --to DIR (then ship DIR to write-once storage)")
        return
    private = load_private_key(settings.audit_signing_key.get_secret_value())
    path = CheckpointWriter(engine, private, settings.audit_checkpoint_dir).take(datetime.now(UTC))
    say(f"checkpoint of the switch written: {path}")


@db_app.command("backup")
def db_backup(
    file: Annotated[Path, typer.Argument(help="The new backup file (never replaces one that exists).")],
) -> None:
    """Copy the database of WNB_DATABASE_URL to FILE while wnb runs (SQLite online backup or pg_dump -Fc)."""
    from wnb.database import database_url
    from wnb.store.backup import backup

    def run() -> None:
        taken = backup(database_url(), file)
        say(f"backup written: {taken.path} ({taken.size:,} bytes, {taken.method})")

    guarded(run)


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="A file written by `wnb db backup`.")],
) -> None:
    """Restore FILE into the empty database of WNB_DATABASE_URL, then verify its audit chain (exit 1 if broken)."""
    from wnb.database import database_url
    from wnb.store import audit
    from wnb.store.backup import restore, row_counts

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
