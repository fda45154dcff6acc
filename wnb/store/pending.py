"""Rows a transaction inserts or changes, given their ids at once and written together at its end.

Ingestion stores a thousand events per transaction, each an INSERT and perhaps an UPDATE of the event it
supersedes; one executemany per table and column set costs a fraction of that many single statements. The
rows are in no table until `flush()`, so the caller keeps what it needs to read back (the chunk's people,
the current outcome of each appointment) itself, and flushes before the transaction commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table

from wnb.store.sql import Sql

_RESERVE = 256  # ids drawn at a time


class PendingRows:
    """Inserts and updates held in memory until `flush()`, inside the caller's writing transaction."""

    def __init__(self, connection: Connection) -> None:
        self._sql = Sql(connection)
        self._tables: dict[str, Table] = {}
        self._inserts: dict[str, dict[int, dict[str, Any]]] = {}
        self._updates: dict[str, dict[int, dict[str, Any]]] = {}
        self._free: dict[str, list[int]] = {}
        self._last: dict[str, int] = {}

    def _next_id(self, table: Table) -> int:
        free = self._free.get(table.name)
        if not free:
            free = self._sql.reserve_ids(table, _RESERVE, after=self._last.get(table.name, 0))
            free.reverse()
            self._free[table.name] = free
        pk = free.pop()
        self._last[table.name] = pk
        return pk

    def insert(self, table: Table, values: dict[str, Any]) -> int:
        """Give the row its integer primary key now; it is inserted by `flush()`."""
        pk = self._next_id(table)
        self._tables[table.name] = table
        self._inserts.setdefault(table.name, {})[pk] = {"id": pk, **values}
        return pk

    def update(self, table: Table, pk: int, **values: Any) -> None:
        """Set columns of a row: of the pending row itself, or of a stored row at `flush()`."""
        pending = self._inserts.get(table.name, {}).get(pk)
        if pending is not None:
            pending.update(values)
            return
        self._tables[table.name] = table
        self._updates.setdefault(table.name, {}).setdefault(pk, {}).update(values)

    def flush(self) -> None:
        """Write every pending row and change: one statement per table and set of columns."""
        for name, rows in self._inserts.items():
            for columns, batch in _by_columns(rows.values()).items():
                placeholders = ", ".join(f":{column}" for column in columns)
                self._sql.execute_many(f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({placeholders})", batch)
        for name, changes in self._updates.items():
            for columns, batch in _by_columns([{**values, "_pk": pk} for pk, values in changes.items()]).items():
                assignments = ", ".join(f"{column} = :{column}" for column in columns if column != "_pk")
                self._sql.execute_many(f"UPDATE {name} SET {assignments} WHERE id = :_pk", batch)
        self._inserts.clear()
        self._updates.clear()
        self._free.clear()  # SQLite's reservation holds only until these rows are in the table
        self._last.clear()


def _by_columns(rows: Any) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    grouped: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(tuple(row), []).append(row)
    return grouped
