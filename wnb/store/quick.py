"""A quick read of a SQLite file for the command line's listings, `wnb tasks` and `wnb flags` (issue 17): the
standard library's sqlite3 and plain SQL, without SQLAlchemy, the SQLModel tables or the migrations, which cost
most of a second of CPU to import for a command that reads two tables.

Only a SQLite file already at the newest revision is read here (`open_at_newest`); any other database, or a
file that is not at that revision, is for wnb.database.open_database, which migrates it. The items are the
dicts wnb.store.listing gives, key for key and in the same order: tests/store/test_quick.py compares the two.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wnb.core.kinds import OPEN_TASK_STATUSES, FlagStatus
from wnb.store.revision import newest_file_revision

_OPEN = OPEN_TASK_STATUSES
_IN_LIST_MAX = 500  # ids per IN (...) list, as wnb.store.repo reads them


def sqlite_file(url: str) -> Path | None:
    """The file of a plain `sqlite:///PATH` URL (relative to the current folder, or `sqlite:////absolute`);
    None for any other URL: another database, memory, a `file:` URI, query options, or escapes to decode."""
    prefix = "sqlite:///"
    path = url.removeprefix(prefix)
    if not url.startswith(prefix) or not path or path.startswith((":memory:", "file:")):
        return None
    if any(character in path for character in "?%#"):
        return None
    return Path(path)


def open_at_newest(url: str) -> sqlite3.Connection | None:
    """A connection to the SQLite file of `url` when it exists and is at the newest revision, else None."""
    path = sqlite_file(url)
    if path is None or not path.is_file():
        return None
    try:  # mode=rw: never creates a file (which wnb.database.open_database would migrate)
        connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        connection.execute("PRAGMA busy_timeout=30000")
        at = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
    except sqlite3.Error:  # no alembic_version table: never migrated
        connection.close()
        return None
    if at != [newest_file_revision()]:
        connection.close()
        return None
    return connection


def _time(stored: str) -> datetime:
    """A time as SQLAlchemy's DateTime stores it on SQLite (naive UTC text), aware, as wnb.store.tables reads it."""
    return datetime.fromisoformat(stored).replace(tzinfo=UTC)


def _links_by_item(connection: sqlite3.Connection, kind: str, ids: list[int]) -> dict[int, list[str]]:
    """Each flag's or task's (kind) linked events as source/event_id, in the order linked."""
    found: dict[int, list[str]] = {}
    for start in range(0, len(ids), _IN_LIST_MAX):
        part = ids[start : start + _IN_LIST_MAX]
        query = (
            "SELECT link.item_id, event.event_id, event.source FROM link JOIN event ON event.id = link.event_pk "
            f"WHERE link.kind = ? AND link.item_id IN ({', '.join('?' * len(part))}) ORDER BY link.id"
        )
        for item_id, event_id, source in connection.execute(query, [kind, *part]):
            found.setdefault(item_id, []).append(f"{source}/{event_id}")
    return found


def _rows(connection: sqlite3.Connection, query: str, values: list[Any]) -> list[sqlite3.Row]:
    cursor = connection.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(query, values).fetchall()


def tasks(
    connection: sqlite3.Connection,
    include_closed: bool = False,
    role: str | None = None,
    nhs_number: str | None = None,
    code: str | None = None,
    assignee: str | None = None,
) -> list[dict[str, Any]]:
    """wnb.store.listing.tasks: tasks soonest due first, open ones (or every one), of a role, a person, a code,
    or assigned to someone; read in one transaction."""
    conditions, values = [], list[Any]()
    for wanted, condition in ((assignee, "assignee = ?"), (code, "code = ?")):
        if wanted:
            conditions.append(condition)
            values.append(wanted)
    if not include_closed:
        conditions.append(f"status IN ({', '.join('?' * len(_OPEN))})")
        values.extend(_OPEN)
    for wanted, condition in ((role, "owner_role = ?"), (nhs_number, "nhs_number = ?")):
        if wanted:
            conditions.append(condition)
            values.append(wanted)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    connection.execute("BEGIN")
    try:
        rows = _rows(
            connection,
            "SELECT id, nhs_number, service, code, owner_role, status, due_at, escalation_level, assignee, rule_ids "
            f"FROM task{where} ORDER BY due_at, id",
            values,
        )
        events = _links_by_item(connection, "task", [row["id"] for row in rows])
    finally:
        connection.execute("ROLLBACK")
    return [
        {
            "id": f"T{row['id']}",
            "nhs_number": row["nhs_number"],
            "service": row["service"],
            "code": row["code"],
            "owner_role": row["owner_role"],
            "status": row["status"],
            "due_at": _time(row["due_at"]).isoformat().replace("+00:00", "Z"),
            "escalation_level": row["escalation_level"],
            "assignee": row["assignee"],
            "rule_ids": list(json.loads(row["rule_ids"])),
            "event_ids": events.get(row["id"], []),
        }
        for row in rows
    ]


def flags(
    connection: sqlite3.Connection, include_closed: bool = False, nhs_number: str | None = None
) -> list[dict[str, Any]]:
    """wnb.store.listing.flags: active flags (or every one), of a person, oldest first; read in one transaction."""
    conditions, values = [], list[Any]()
    if not include_closed:
        conditions.append("status = ?")
        values.append(FlagStatus.ACTIVE.value)
    if nhs_number:
        conditions.append("nhs_number = ?")
        values.append(nhs_number)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    connection.execute("BEGIN")
    try:
        columns = "id, nhs_number, code, level, status, rule_ids, raised_at"
        rows = _rows(connection, f"SELECT {columns} FROM flag{where} ORDER BY id", values)
        events = _links_by_item(connection, "flag", [row["id"] for row in rows])
    finally:
        connection.execute("ROLLBACK")
    return [
        {
            "id": f"F{row['id']}",
            "nhs_number": row["nhs_number"],
            "code": row["code"],
            "level": row["level"],
            "status": row["status"],
            "rule_ids": list(json.loads(row["rule_ids"])),
            "raised_at": _time(row["raised_at"]).isoformat(),
            "event_ids": events.get(row["id"], []),
        }
        for row in rows
    ]
