"""The flags, tasks and links one chunk of ingestion raises or repeats, read at once and written at its end.

Applying a decision read the person's active flags, open tasks and links and inserted a row per flag, task,
history entry and link. The chunk now reads those of everyone it may evaluate in three queries, keeps them
as its own writes change them (every write of the chunk to these tables goes through here), and leaves the
rows to PendingRows. A correction's withdrawal, which reads and changes these tables in the database
itself, first calls `write_pending()` and then reports each change it makes (`unlinked`, `closed`).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC
from typing import Any

from sqlalchemy import Connection, Table

from wnb.store import repo
from wnb.store.pending import PendingRows
from wnb.store.sql import Record, Sql

_Link = tuple[str, int, str, str]  # kind, item id, source, appointment id


def stored_values(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """The values as reading them back from the database would give them: times in UTC, JSON copied."""
    kinds, found = Sql.kinds(table), {}
    for name, value in values.items():
        kind = kinds.get(name)
        if value is None or kind is None:
            found[name] = value
        elif kind == "time":
            found[name] = value.astimezone(UTC)
        elif kind == "json":
            is_names = type(value) is list and all(type(item) is str for item in value)
            found[name] = list(value) if is_names else json.loads(json.dumps(value))  # rule ids: a plain copy
        elif kind == "bool":
            found[name] = bool(value)
        else:
            found[name] = value
    return found


_EMPTY: dict[str, dict[str, None]] = {}  # table name → every column, NULL


def as_stored(table: Table, values: dict[str, Any]) -> Record:
    """The whole row as the database would give it back (columns not given are NULL)."""
    empty = _EMPTY.get(table.name)
    if empty is None:  # once per table: iterating a table's columns costs more than the rest of this
        empty = _EMPTY[table.name] = {column.name: None for column in table.columns}
    record = Record(empty)
    record.update(stored_values(table, values))
    return record


class ChunkItems:
    """Active flags, open tasks and active links of the chunk's people, as the database would answer now."""

    def __init__(self, connection: Connection, pending: PendingRows, nhs_numbers: Collection[str]) -> None:
        self._connection = connection
        self._pending = pending
        self._people = set(nhs_numbers)
        self._flags: dict[str, dict[str, Record]] | None = None  # nhs number → code → flag
        self._tasks: dict[str, dict[tuple[str, str], Record]] = {}  # nhs number → (service, code) → task
        self._by_id: dict[tuple[str, int], Record] = {}  # (table, id) → the record above
        self._links: set[_Link] = set()

    def _load(self) -> dict[str, dict[str, Record]]:
        if self._flags is None:
            flags, tasks = repo.people_active_flags(self._connection, self._people), {}
            for nhs_number, rows in repo.people_open_tasks(self._connection, self._people).items():
                tasks[nhs_number] = {(row.service, row.code): row for row in rows}
            self._flags, self._tasks = flags, tasks
            self._by_id = {("flag", row.id): row for found in flags.values() for row in found.values()}
            self._by_id.update({("task", row.id): row for found in tasks.values() for row in found.values()})
            self._links = repo.active_links_of(
                self._connection,
                [pk for kind, pk in self._by_id if kind == "flag"],
                [pk for kind, pk in self._by_id if kind == "task"],
            )
        return self._flags

    def _person(self, nhs_number: str) -> None:
        if nhs_number not in self._people:
            raise LookupError("a decision was applied to a person this chunk did not read")

    def active_flags(self, nhs_number: str) -> dict[str, Record]:
        self._person(nhs_number)
        return dict(self._load().get(nhs_number, {}))

    def open_tasks(self, nhs_number: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Record]:
        """The person's open task of each (service, code) that has one (a person gathers many over a year)."""
        self._person(nhs_number)
        self._load()
        tasks = self._tasks.get(nhs_number, {})
        return {key: row for key in keys if (row := tasks.get(key)) is not None}

    def is_linked(self, kind: str, item_id: int, source: str, appointment_id: str) -> bool:
        self._load()
        return (kind, item_id, source, appointment_id) in self._links

    def insert(self, table: Table, values: dict[str, Any]) -> int:
        """Insert a flag, task, task history or link row (written at flush); its id."""
        pk = self._pending.insert(table, values)
        if table.name in ("flag", "task", "link"):
            self._load()
            row = as_stored(table, {**values, "id": pk})
            if table.name == "link":
                if row.active:
                    self._links.add((row.kind, row.item_id, row.source, row.appointment_id))
            elif table.name == "flag":
                self._note_flag(row)
            else:
                self._note_task(row)
        return pk

    def update(self, table: Table, pk: int, values: dict[str, Any]) -> None:
        """Change columns of a flag or task that ingestion does not move out of active or open."""
        if table.name not in ("flag", "task") or "status" in values:
            raise ValueError(f"ChunkItems cannot follow this change of {table.name}")
        self._load()
        self._pending.update(table, pk, **values)
        row = self._by_id.get((table.name, pk))
        if row is not None:
            row.update(stored_values(table, values))

    def _note_flag(self, row: Record) -> None:
        if row.status == "active" and row.nhs_number in self._people:
            assert self._flags is not None
            self._flags.setdefault(row.nhs_number, {})[row.code] = row
            self._by_id[("flag", row.id)] = row

    def _note_task(self, row: Record) -> None:
        if row.status in repo.OPEN_STATUSES and row.nhs_number in self._people:
            self._tasks.setdefault(row.nhs_number, {})[(row.service, row.code)] = row
            self._by_id[("task", row.id)] = row

    def write_pending(self) -> None:
        """Write every pending row now: the caller is about to read the tables themselves."""
        self._pending.flush()

    def unlinked(self, kind: str, item_id: int, source: str, appointment_id: str) -> None:
        """The caller made this link inactive in the database."""
        self._links.discard((kind, item_id, source, appointment_id))

    def closed(self, kind: str, item_id: int) -> None:
        """The caller moved this flag out of active, or this task out of open, in the database."""
        row = self._by_id.pop((kind, item_id), None)
        if row is None:
            return
        if kind == "flag" and self._flags is not None:
            self._flags.get(row.nhs_number, {}).pop(row.code, None)
        elif kind == "task":
            self._tasks.get(row.nhs_number, {}).pop((row.service, row.code), None)
