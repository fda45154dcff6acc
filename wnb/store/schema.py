"""The schema by Alembic migrations: bring a database to the newest revision, once, even with replicas racing."""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, inspect, text

from wnb.store.db import sqlite_setup, writing
from wnb.store.revision import newest_file_revision

# Alembic costs a fifth of a second of CPU to import: every command opens the database through upgrade(), and a
# database already at the newest revision (nearly always) is recognised without it.
if TYPE_CHECKING:
    from alembic.config import Config

# Any 64-bit number wnb alone uses: replicas starting together take turns to migrate.
MIGRATION_LOCK = 0x776E62_6D696772


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the packaged migrations; `connection` is the one to migrate."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "wnb.store:migrations")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head() -> str:
    """The newest revision of the packaged migrations."""
    from alembic.script import ScriptDirectory

    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert found is not None, "the packaged migrations have no head"
    return found


def is_at_newest_revision(connection: Connection) -> bool:
    """Whether the database is at the newest revision, asked of its `alembic_version` table without Alembic."""
    if not inspect(connection).has_table("alembic_version"):
        return False
    at = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return at == [newest_file_revision()]


def current(connection: Connection) -> str | None:
    """The revision a database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> str | None:
    """Migrate to the newest revision; the revision it was at before (or the head when nothing was done)."""
    with engine.connect() as connection:
        if is_at_newest_revision(connection):
            return newest_file_revision()
    from alembic import command

    with writing(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        before = current(connection)
        if before is None and inspect(connection).has_table("audit"):
            # Made by create_all before wnb had migrations: its schema is the first revision's.
            command.stamp(alembic_config(connection), "0001")
            before = "0001"
        if before != head():
            command.upgrade(alembic_config(connection), "head")
        return before


_template_lock = threading.Lock()


@lru_cache(maxsize=1)
def _migrated_in_memory() -> sqlite3.Connection:
    """An in-memory SQLite database at the newest revision, made once in this process."""
    with tempfile.TemporaryDirectory(prefix="wnb-template-") as folder:
        engine = create_engine(f"sqlite:///{folder}/template.db")
        sqlite_setup(engine)
        upgrade(engine)
        engine.dispose()
        template = sqlite3.connect(":memory:", check_same_thread=False)
        with sqlite3.connect(f"{folder}/template.db") as migrated:
            migrated.backup(template)
        migrated.close()
    return template


def new_sqlite_file(path: Path) -> str:
    """The URL of a new SQLite file at `path` at the newest revision, copied from one migrated once per process.

    Scenario runs and simulations make a scratch file each (a proposal runs sixty scenarios), and running the
    migrations for each costs about an eighth of a second; the copy costs a millisecond.
    """
    with _template_lock, sqlite3.connect(path) as copy:
        _migrated_in_memory().backup(copy)
    copy.close()
    return f"sqlite:///{path}"
