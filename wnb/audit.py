"""The append-only, hash-chained audit log (ARCHITECTURE.md §6): append, verify, export.

Each record's hash is SHA-256 over a canonical JSON form of its content and the previous record's hash,
so a record changed, removed or moved breaks the chain at the first place it was touched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import Connection, select

from wnb.store.sql import JsonText, Sql
from wnb.store.tables import AuditHeadRow, AuditRow

GENESIS = "0" * 64
_audit = AuditRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__ at class creation
_head = AuditHeadRow.__table__  # type: ignore[attr-defined]


def _plain(value: Any) -> Any:
    """What JSON cannot encode itself: times as ISO-8601, enums as their value."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot record a {type(value).__name__} in the audit log")


# json.dumps builds a new encoder on every call made with options; one encoder, made once, does the same.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain)


# How the canonical encoder writes a string (ensure_ascii=False): json's own C function.
_string = encode_basestring


def canonical(value: Any) -> str:
    """One JSON text per value: keys sorted, no spaces; the same after a round trip through the store."""
    return _CANONICAL.encode(value)


def _stored_list(items: list[str]) -> str:
    """The JSON text json.dumps gives a list of strings, as the store writes a JSON column; ids need no escapes."""
    joined = "".join(items)
    if all(items) and joined.isascii() and joined.isalnum():  # every item a non-empty run of ASCII letters/digits
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"
    return json.dumps(items)


def _header_text(seq: Any, at: str, actor: Any, action: Any, subject: Any, version: Any, prev_hash: Any) -> str:
    """canonical() of a record's header; written out directly (twice as fast) when its values have the types
    append() gives them, each string encoded by the very function the canonical encoder uses."""
    if (
        type(seq) is int
        and type(actor) is str
        and type(action) is str
        and type(prev_hash) is str
        and (version is None or type(version) is str)
        and type(subject) is list
        and all(type(item) is str for item in subject)
    ):
        return (
            f'{{"action":{_string(action)},"actor":{_string(actor)},"at":{_string(at)},'
            f'"prev_hash":{_string(prev_hash)},"ruleset_version":{"null" if version is None else _string(version)},'
            f'"seq":{int.__repr__(seq)},"subject":[{",".join(map(_string, subject))}]}}'
        )
    header = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "subject": subject,
        "ruleset_version": version,
        "prev_hash": prev_hash,
    }
    return canonical(header)


def record_hash(record: dict[str, Any], payload_text: str | None = None) -> str:
    """SHA-256 over the canonical JSON of the record's header and then of its payload."""
    header = _header_text(
        record["seq"],
        record["at"].isoformat(),
        record["actor"],
        record["action"],
        record["subject"],
        record["ruleset_version"],
        record["prev_hash"],
    )
    if payload_text is None:
        payload_text = canonical(record["payload"])
    return hashlib.sha256(f"{header}\n{payload_text}".encode()).hexdigest()


class AuditLog:
    """Appends records inside the caller's transaction, continuing the chain from its stored tail."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._tail: tuple[int, str] | None = None
        self._pending: list[dict[str, Any]] = []

    def _load_tail(self) -> tuple[int, str]:
        sql = Sql(self._connection)
        # Replicas: on PostgreSQL the head row stays locked from the first append until commit, so appends of
        # concurrent transactions follow one another in one chain (SQLite's write lock already does this).
        lock = "" if sql.sqlite else " FOR UPDATE"
        row = sql.fetch_one(_head, f"SELECT seq, hash FROM audit_head WHERE id = 1{lock}")
        return (row.seq, row.hash) if row else (0, GENESIS)

    def append(
        self,
        at: datetime,
        actor: str,
        action: str,
        subject: list[str],
        payload: dict[str, Any],
        ruleset_version: str | None = None,
    ) -> int:
        """Write one record and return its sequence number."""
        seq, prev_hash = self._tail or self._load_tail()
        record: dict[str, Any] = {
            "seq": seq + 1,
            "at": at.astimezone(UTC),  # stored in UTC, so hash what is stored
            "actor": actor,
            "action": action,
            "subject": [str(item) for item in subject],
            "ruleset_version": ruleset_version,
            "prev_hash": prev_hash,
        }
        payload_text = canonical(payload)
        record["hash"] = record_hash(record, payload_text)
        record["payload"] = JsonText(payload_text)  # serialised once, for the hash and the store
        record["subject"] = JsonText(_stored_list(record["subject"]))
        if self._tail is None and seq == 0:
            Sql(self._connection).insert(_head, {"id": 1, "seq": 0, "hash": GENESIS})
        self._pending.append(record)
        self._tail = (seq + 1, record["hash"])
        return seq + 1

    def finish(self) -> None:
        """Write the records appended and the chain's new tail; call once, last, in the same transaction.

        The caller's transaction holds the database's write lock (SQLite BEGIN IMMEDIATE), so nobody else
        appends between the first read of the tail and this write.
        """
        if self._pending and self._tail is not None:
            sql = Sql(self._connection)
            sql.insert_many(_audit, self._pending)
            sql.execute(
                "UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1",
                {"seq": self._tail[0], "hash": self._tail[1]},
            )
            self._pending = []


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    problem: str | None = None
    first_bad_seq: int | None = None


def verify(connection: Connection, batch: int = 5000) -> Verification:
    """Recompute the whole chain; name the first record that was changed, removed or moved."""
    expected_seq, prev_hash, count = 1, GENESIS, 0
    for row in _iter_records(connection, batch):
        record = dict(row._mapping)
        seq = record["seq"]
        if seq != expected_seq:
            return Verification(False, count, f"record {expected_seq} is missing (next found is {seq})", expected_seq)
        if record["prev_hash"] != prev_hash:
            return Verification(
                False, count, f"record {seq} does not follow record {seq - 1}: removed or reordered", seq
            )
        if record_hash(record) != record["hash"]:
            return Verification(False, count, f"record {seq} was changed: its content does not match its hash", seq)
        prev_hash, expected_seq, count = record["hash"], seq + 1, count + 1
    head = connection.execute(select(_head.c.seq, _head.c.hash)).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if (head_seq, head_hash) != (expected_seq - 1, prev_hash):
        return Verification(
            False,
            count,
            f"the log ends at record {expected_seq - 1} but record {head_seq} was written last",
            expected_seq,
        )
    return Verification(True, count)


def _iter_records(connection: Connection, batch: int) -> Iterator[Any]:
    last = 0
    while True:
        rows = connection.execute(select(_audit).where(_audit.c.seq > last).order_by(_audit.c.seq).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def export_lines(connection: Connection) -> Iterator[str]:
    """The log as JSON lines, in order."""
    for row in _iter_records(connection, 5000):
        record = dict(row._mapping)
        record["at"] = record["at"].isoformat()
        yield canonical(record)


def records_for(connection: Connection, seqs: list[int]) -> list[dict[str, Any]]:
    rows = connection.execute(select(_audit).where(_audit.c.seq.in_(seqs)).order_by(_audit.c.seq)).all()
    return [dict(row._mapping) for row in rows]
