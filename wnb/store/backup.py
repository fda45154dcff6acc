"""Back up and restore a wnb database while the service runs: SQLite's online backup, PostgreSQL's pg_dump.

A backup is written under a temporary name and renamed when complete, so a half-written file never looks
like a backup; a restore goes only into an empty database, so it never mixes with or overwrites live data.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL, Connection, create_engine, func, inspect, make_url, select
from sqlmodel import SQLModel

from wnb.core.errors import WnbError

# A file of this name is being written; it becomes the backup only once complete.
PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True)
class BackupFile:
    """A finished backup: where it is, its size and how it was taken."""

    path: Path
    size: int
    method: str


def _url(url: str) -> URL:
    try:
        return make_url(url)
    except Exception:  # SQLAlchemy raises ArgumentError; say which setting was wrong
        raise WnbError(f"WNB_DATABASE_URL {url!r} is not a database URL") from None


def _kind(parsed: URL) -> str:
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise WnbError(f"cannot back up or restore a {backend} database: only sqlite and postgresql")
    return backend


def _sqlite_path(parsed: URL) -> Path:
    if not parsed.database or parsed.database == ":memory:":
        raise WnbError("an in-memory SQLite database has nothing to back up or restore")
    return Path(parsed.database)


def _new_file(target: Path) -> Path:
    """The temporary name to write `target` under; refuses to replace a file that exists."""
    if target.exists():
        raise WnbError(f"{target}: already exists; choose a new name (a backup never replaces a file)")
    if not target.parent.is_dir():
        raise WnbError(f"{target.parent}: no such folder")
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    partial.unlink(missing_ok=True)  # left by a backup that was interrupted
    return partial


def backup(url: str, target: Path) -> BackupFile:
    """Copy the database at `url` into the new file `target`, consistent as of one moment."""
    parsed = _url(url)
    partial = _new_file(target)
    try:
        if _kind(parsed) == "sqlite":
            method = "sqlite online backup"
            _sqlite_copy(_sqlite_path(parsed), partial, must_exist=True)
        else:
            method = "pg_dump custom format"
            _run(_client("pg_dump"), parsed, ["--format=custom", "--no-owner", "--no-privileges", f"--file={partial}"])
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupFile(target, target.stat().st_size, method)


def restore(source: Path, url: str) -> None:
    """Load the backup `source` into the database at `url`, which must be empty (a new file or database)."""
    if not source.is_file():
        raise WnbError(f"{source}: no such backup file")
    parsed = _url(url)
    if _kind(parsed) == "sqlite":
        target = _sqlite_path(parsed)
        for path in (target, Path(f"{target}-wal")):
            if path.exists() and path.stat().st_size > 0:
                raise WnbError(f"{path}: already exists; restore into a new file, then move it into place")
        if not target.parent.is_dir():
            raise WnbError(f"{target.parent}: no such folder")
        partial = target.with_name(target.name + PARTIAL_SUFFIX)
        partial.unlink(missing_ok=True)
        try:
            _sqlite_copy(source, partial, must_exist=True)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return
    _refuse_unless_empty(url)
    try:
        _run(
            _client("pg_restore"),
            parsed,
            ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", str(source)],
        )
    except WnbError as error:
        raise WnbError(f"{source}: {error}") from None


def _sqlite_copy(source: Path, target: Path, must_exist: bool) -> None:
    if must_exist and not source.is_file():
        raise WnbError(f"{source}: no such SQLite database file")
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        if not reader.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").fetchone():
            raise WnbError(f"{source}: not a wnb database (it has no audit table)")
        writer = sqlite3.connect(target)
        try:
            reader.backup(writer)  # page by page, from one consistent read snapshot
            # One self-contained file (no -wal beside it); wnb switches it back to WAL when it opens it.
            writer.execute("PRAGMA journal_mode=DELETE")
            checked = writer.execute("PRAGMA quick_check").fetchone()[0]
            if checked != "ok":
                raise WnbError(f"{source}: the copy failed SQLite's integrity check: {checked}")
        finally:
            writer.close()
    except sqlite3.DatabaseError as error:
        raise WnbError(f"{source}: cannot read it as a SQLite database: {error}") from None
    finally:
        reader.close()


def _refuse_unless_empty(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
    except Exception as error:  # the driver's own error types; show its first line only
        raise WnbError(f"cannot connect to the database to restore into: {str(error).splitlines()[0]}") from None
    finally:
        engine.dispose()
    if tables:
        raise WnbError(
            f"database {make_url(url).database!r} already has {len(tables)} tables; restore into a new, "
            "empty database (createdb) and point WNB_DATABASE_URL at it"
        )


def _client(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise WnbError(f"{name} not found on PATH; install the PostgreSQL client (Debian: postgresql-client)")
    return found


def _run(program: str, parsed: URL, arguments: list[str]) -> None:
    """Run a PostgreSQL client against the database of `parsed`; the password goes by environment, not argv."""
    environment = dict(os.environ)
    if parsed.password is not None:
        environment["PGPASSWORD"] = str(parsed.password)
    libpq = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    done = subprocess.run(
        [program, f"--dbname={libpq}", *arguments], env=environment, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise WnbError(f"{Path(program).name} failed (exit {done.returncode}): {lines[-1] if lines else 'no message'}")


def row_counts(connection: Connection, names: tuple[str, ...] = ("event", "flag", "task")) -> dict[str, int]:
    """How many rows each named table holds: what `wnb db restore` reports of a restored database."""
    tables = SQLModel.metadata.tables
    return {name: connection.execute(select(func.count()).select_from(tables[name])).scalar_one() for name in names}
