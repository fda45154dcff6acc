"""Rows a transaction inserts or changes, given their ids at once and written together at its end.

Ingestion stores a thousand events per transaction, each an INSERT and perhaps an UPDATE of the event it
supersedes; one executemany per table and column set costs a fraction of that many single statements. The
rows are in no table until `flush()`, so the caller keeps what it needs to read back (the chunk's people,
the current outcome of each appointment) itself, and flushes before the transaction commits.

A link names the evaluation that made it by its audit sequence number, which the chain gives only when the
transaction ends (`AuditLog.finish`): such a value is an `AuditRef` here. The flush before the chain holds
those rows back (`flush(hold=True)`); `flush_last()`, run by the audit log right after the chain, writes
them with their numbers. A flush mid-transaction writes them at once with 0 in place of the number, and the
number follows as an update.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table

from wnb.store.audit import AuditRef
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
        self._waiting: set[tuple[str, int]] = set()  # (table, id) of pending rows holding an AuditRef

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
        if _refers(values):
            self._waiting.add((table.name, pk))
        return pk

    def update(self, table: Table, pk: int, **values: Any) -> None:
        """Set columns of a row: of the pending row itself, or of a stored row at `flush()`."""
        pending = self._inserts.get(table.name, {}).get(pk)
        if pending is not None:
            pending.update(values)
            if _refers(values):
                self._waiting.add((table.name, pk))
            return
        self._tables[table.name] = table
        self._updates.setdefault(table.name, {}).setdefault(pk, {}).update(values)

    def flush(self, hold: bool = False) -> None:
        """Write every pending row and change: one statement per table and set of columns.

        A value whose audit record is not chained yet holds its row back when `hold` (the flush just before
        `AuditLog.finish`), or else is written as 0 and stays pending as a change (a withdrawal is about to
        read the tables); a change waiting for such a value always stays pending.
        """
        held: dict[str, dict[int, dict[str, Any]]] = {}
        for name, rows in self._inserts.items():
            ready = []
            for pk, row in rows.items():
                if (name, pk) in self._waiting:
                    row, unknown = _known(row)
                    if unknown and hold:
                        held.setdefault(name, {})[pk] = rows[pk]
                        continue
                    if unknown:
                        self._updates.setdefault(name, {}).setdefault(pk, {}).update(unknown)
                        row.update(dict.fromkeys(unknown, 0))
                    self._waiting.discard((name, pk))
                ready.append(row)
            for batch in _by_columns(ready).values():
                self._sql.copy_many(self._tables[name], batch)  # the links are written under the chain's lock
        waiting: dict[str, dict[int, dict[str, Any]]] = {}
        for name, changes in self._updates.items():
            ready = []
            for pk, values in changes.items():
                if _refers(values):
                    values, unknown = _known(values)
                    if unknown:
                        waiting.setdefault(name, {})[pk] = changes[pk]
                        continue
                ready.append({**values, "_pk": pk})
            for columns, batch in _by_columns(ready).items():
                assignments = ", ".join(f"{column} = :{column}" for column in columns if column != "_pk")
                self._sql.execute_many(f"UPDATE {name} SET {assignments} WHERE id = :_pk", batch)
        self._inserts, self._updates = held, waiting
        for name in list(self._free):
            if name not in held:  # SQLite's reservation holds only until these rows are in the table
                del self._free[name]
                self._last.pop(name, None)

    def flush_last(self) -> None:
        """The flush after `AuditLog.finish`: every value is known now, and nothing may stay unwritten."""
        self.flush()
        if self._inserts or self._updates:
            raise LookupError("rows refer to an audit record that was not chained in this transaction")


def _refers(values: dict[str, Any]) -> bool:
    return AuditRef in map(type, values.values())  # every row of a chunk passes here: no Python-level loop


def _known(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, AuditRef]]:
    """The values with each chained AuditRef as its number; and the references not chained yet."""
    known, unknown = dict(values), {}
    for column, value in values.items():
        if type(value) is AuditRef:
            if value.chained:
                known[column] = value.seq
            else:
                unknown[column] = value
    return known, unknown


def _by_columns(rows: Any) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    grouped: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(tuple(row), []).append(row)
    return grouped
