"""Statements run straight on the transaction's own DBAPI connection, for the hot path of ingestion.

SQLAlchemy Core costs about 80 µs a statement here against 3–7 µs for the driver itself, and ingesting
one missed appointment runs about twenty statements. The schema still comes from the SQLModel tables;
this module only turns values to and from the column types those tables declare, for SQLite and PostgreSQL.
Statements are written once with `:name` parameters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Boolean, Connection, Date, Table

from wnb.store.tables import UTCDateTime

# Times go to SQLite as SQLAlchemy's DateTime writes them, "2026-03-02 10:00:00.000000" (always six
# fractional digits: the text is compared as text in `due_at <= :now`).


class JsonText(str):
    """JSON already serialised: stored as it is in a JSON column."""


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store; every datetime must be timezone-aware")
    return value.astimezone(UTC).replace(tzinfo=None)


@lru_cache(maxsize=1024)  # an event's received time is written on its row and on its audit records
def _sqlite_time(value: datetime) -> str:
    """A time as SQLAlchemy's DateTime writes it to SQLite (naive UTC, six fractional digits)."""
    if value.tzinfo is UTC:  # the usual case: already UTC, so drop the "+00:00" instead of converting
        return value.isoformat(" ", "microseconds")[:-6]
    return _naive_utc(value).isoformat(" ", "microseconds")


# Conversions by exact type; str, int, bool and None go to the driver as they are.
_COMMON: dict[type, Any] = {dict: json.dumps, list: json.dumps, tuple: json.dumps, JsonText: str}
_SQLITE_CONVERTERS: dict[type, Any] = {**_COMMON, datetime: _sqlite_time, date: date.isoformat}
_SERVER_CONVERTERS: dict[type, Any] = {**_COMMON, datetime: _naive_utc}


class Record(dict[str, Any]):
    """A row as a dict whose columns read as attributes too (row.id, row["id"])."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _kinds(table: Table) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for column in table.columns:
        if isinstance(column.type, UTCDateTime):
            kinds[column.name] = "time"
        elif isinstance(column.type, JSON):
            kinds[column.name] = "json"
        elif isinstance(column.type, Boolean):
            kinds[column.name] = "bool"
        elif isinstance(column.type, Date):
            kinds[column.name] = "date"
    return kinds


_NAMED = re.compile(r"(?<!:):(\w+)")
_POSITIONAL: dict[str, tuple[str, list[str]]] = {}
_KINDS: dict[str, dict[str, str]] = {}
_TEXT: dict[tuple[str, str], str] = {}
_INSERTS: dict[tuple[str, ...], str] = {}
_READERS: dict[tuple[str, tuple[str, ...]], list[tuple[int, Any]]] = {}


def _read_time(value: Any) -> datetime:
    return (datetime.fromisoformat(value) if isinstance(value, str) else value).replace(tzinfo=UTC)


def _read_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _read_date(value: Any) -> Any:
    return date.fromisoformat(value) if isinstance(value, str) else value


# A stored value (not NULL) as the column's type gives it back, by the kind `_kinds` names.
_READ: dict[str, Any] = {"time": _read_time, "json": _read_json, "bool": bool, "date": _read_date}


class Sql:
    """The DBAPI connection under a SQLAlchemy connection, inside the same transaction."""

    def __init__(self, connection: Connection) -> None:
        self.dialect = connection.dialect.name
        self.raw: Any = connection.connection.driver_connection
        self.sqlite = self.dialect == "sqlite"
        self._converters = _SQLITE_CONVERTERS if self.sqlite else _SERVER_CONVERTERS

    def text(self, sql: str) -> str:
        """The statement in the driver's parameter style."""
        key = (self.dialect, sql)
        text = _TEXT.get(key)
        if text is None:
            text = sql if self.sqlite else re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)
            _TEXT[key] = text
        return text

    @staticmethod
    def kinds(table: Table) -> dict[str, str]:
        found = _KINDS.get(table.name)
        if found is None:
            found = _KINDS[table.name] = _kinds(table)
        return found

    def _to_db(self, value: Any) -> Any:
        convert = self._converters.get(type(value))
        return value if convert is None else convert(value)

    def params(self, values: dict[str, Any]) -> dict[str, Any]:
        converters = self._converters
        return {
            key: value if (convert := converters.get(type(value))) is None else convert(value)
            for key, value in values.items()
        }

    @staticmethod
    def _readers(table: Table, names: tuple[str, ...]) -> list[tuple[int, Any]]:
        """(position, conversion) of each column of a result that needs one, worked out once per statement."""
        key = (table.name, names)
        found = _READERS.get(key)
        if found is None:
            kinds = Sql.kinds(table)
            found = _READERS[key] = [(index, _READ[kinds[name]]) for index, name in enumerate(names) if name in kinds]
        return found

    def execute(self, sql: str, values: dict[str, Any] | None = None) -> Any:
        return self.raw.execute(self.text(sql), self.params(values or {}))

    def scalar(self, sql: str, values: dict[str, Any] | None = None) -> Any:
        """The first column of the first row, as the driver gives it (None when there is no row)."""
        row = self.execute(sql, values).fetchone()
        return None if row is None else row[0]

    def fetch_all(self, table: Table, sql: str, values: dict[str, Any] | None = None) -> list[Record]:
        cursor = self.execute(sql, values)
        names = tuple(column[0] for column in cursor.description)
        readers = self._readers(table, names)
        records = []
        for row in cursor.fetchall():
            values_read = list(row)
            for index, read in readers:
                if values_read[index] is not None:
                    values_read[index] = read(values_read[index])
            records.append(Record(zip(names, values_read, strict=True)))
        return records

    def fetch_one(self, table: Table, sql: str, values: dict[str, Any] | None = None) -> Record | None:
        rows = self.fetch_all(table, sql, values)
        return rows[0] if rows else None

    def insert(self, table: Table, values: dict[str, Any]) -> int:
        """Insert one row; its integer primary key."""
        key = (self.dialect, table.name, *values)
        sql = _INSERTS.get(key)
        returning = not self.sqlite and "id" in table.c  # PostgreSQL: only tables with an `id` key return it
        if sql is None:
            columns = ", ".join(values)
            placeholders = ", ".join(f":{name}" for name in values)
            sql = _INSERTS[key] = self.text(
                f"INSERT INTO {table.name} ({columns}) VALUES ({placeholders})" + (" RETURNING id" if returning else "")
            )
        cursor = self.raw.execute(sql, self.params(values))
        if self.sqlite:
            return int(cursor.lastrowid)
        return int(cursor.fetchone()[0]) if returning else 0

    def insert_many(self, table: Table, rows: Iterable[dict[str, Any]]) -> None:
        """Insert rows that all have the same columns, in one executemany."""
        batch = list(rows)
        if not batch:
            return
        columns = list(batch[0])
        self.execute_many(
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(f':{c}' for c in columns)})", batch
        )

    def copy_many(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Insert rows that all have the same columns: PostgreSQL's COPY, SQLite's executemany.

        COPY streams the rows in one statement, in about half the time of an executemany of INSERTs (measured on
        an ingestion chunk's 1,650 audit records): the audit log writes its records, and PendingRows the links,
        while the transaction holds the chain's head (wnb/store/audit.py).
        """
        if self.sqlite:
            self.insert_many(table, rows)
            return
        if not rows:
            return
        columns = list(rows[0])
        converters = self._converters
        with self.raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [
                        value if (convert := converters.get(type(value := row[name]))) is None else convert(value)
                        for name in columns
                    ]
                )

    def execute_many(self, sql: str, rows: Sequence[dict[str, Any]]) -> None:
        """One statement run once per row of values, in one driver call."""
        if not rows:
            return
        if self.sqlite:
            # sqlite3 binds `?` from a tuple in half the time it binds `:name` from a dict.
            positional = _POSITIONAL.get(sql)
            if positional is None:
                positional = _POSITIONAL[sql] = (_NAMED.sub("?", sql), _NAMED.findall(sql))
            text, names = positional
            converters = self._converters
            self.raw.executemany(
                text,
                [
                    tuple(  # a list comprehension inside: cheaper than a generator for a handful of values
                        [
                            value if (convert := converters.get(type(value := row[name]))) is None else convert(value)
                            for name in names
                        ]
                    )
                    for row in rows
                ],
            )
        else:
            with self.raw.cursor() as cursor:
                cursor.executemany(self.text(sql), [self.params(row) for row in rows])

    def reserve_ids(self, table: Table, count: int, after: int = 0) -> list[int]:
        """`count` integer primary keys for rows this transaction will insert itself, later, in this order.

        SQLite gives a new row max(id) + 1 (wnb's tables have no AUTOINCREMENT) and the caller's writing
        transaction holds the write lock, so the ids after the stored ones (and after `after`, the last id
        already reserved and not yet inserted) are the ones SQLite would give; PostgreSQL draws them from
        the column's sequence, as its own INSERT would.
        """
        if self.sqlite:
            first = max(self.scalar(f"SELECT MAX(id) FROM {table.name}") or 0, after) + 1
            return list(range(first, first + count))
        rows = self.raw.execute(
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) FROM generate_series(1, {int(count)})"
        ).fetchall()
        return [int(row[0]) for row in rows]

    def update(self, table: Table, pk: int, values: dict[str, Any]) -> None:
        """Set some columns of the row with integer primary key `pk`."""
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        self.execute(f"UPDATE {table.name} SET {assignments} WHERE id = :_pk", {**values, "_pk": pk})
