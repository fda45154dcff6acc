"""The append-only, hash-chained audit log (ARCHITECTURE.md §6): append, verify, export.

Each record's hash is SHA-256 over a canonical JSON form of its content and the previous record's hash,
so a record changed, removed or moved breaks the chain at the first place it was touched.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
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


class AuditRef:
    """A record appended in this transaction; its sequence number is known once `AuditLog.finish` chains it.

    Numbers are given at the end, under the chain's lock, so that concurrent transactions evaluate at the same
    time and only take turns to chain. What needs a record's number before then holds this reference instead:
    another record's payload (as a top-level value) and a pending row (a link's `audit_seq`).
    """

    __slots__ = ("_seq", "token")

    def __init__(self, token: str) -> None:
        self.token = token  # stands for the number in a payload's canonical text until the chain gives it
        self._seq: int | None = None

    @property
    def chained(self) -> bool:
        return self._seq is not None

    @property
    def seq(self) -> int:
        if self._seq is None:
            raise LookupError("an audit record's sequence number was read before AuditLog.finish chained it")
        return self._seq

    def __repr__(self) -> str:
        return f"AuditRef({self._seq if self._seq is not None else 'not chained yet'})"


@dataclass(slots=True)
class _Appended:
    """A record waiting for its place in the chain: everything but its number, previous hash and own hash."""

    ref: AuditRef
    at: datetime
    actor: str
    action: str
    subject: list[str]
    stored_subject: str
    ruleset_version: str | None
    payload_text: str
    refers_to: list[AuditRef]


class AuditLog:
    """Buffers records appended inside the caller's transaction and chains them from the stored head at the end.

    `append` does the work of a record that needs no place in the chain (its payload's canonical text);
    `finish`, called last, takes the chain's head (locked on PostgreSQL until commit), numbers and hashes the
    records, writes them and the new head, then runs what waited for their numbers (`after_chain`). The head
    is held for that step alone, so replicas evaluate their chunks at the same time and take turns to chain.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._appended: list[_Appended] = []
        self._after: list[Callable[[], None]] = []
        self._nonce = secrets.token_hex(8)  # placeholders no payload can contain by chance
        self._made = 0

    def append(
        self,
        at: datetime,
        actor: str,
        action: str,
        subject: list[str],
        payload: dict[str, Any],
        ruleset_version: str | None = None,
    ) -> AuditRef:
        """Buffer one record; its reference gives its sequence number once `finish` has chained it.

        A top-level payload value may be the reference of an earlier record (an effect names its
        evaluation): the record holds that record's number.
        """
        refers_to: list[AuditRef] = []
        if AuditRef in map(type, payload.values()):
            payload = {key: self._stand_in(value, refers_to) for key, value in payload.items()}
        self._made += 1
        ref = AuditRef(f"wnb-audit-seq-{self._nonce}-{self._made}")
        names = [str(item) for item in subject]
        self._appended.append(
            _Appended(
                ref,
                at.astimezone(UTC),  # stored in UTC, so hash what is stored
                actor,
                action,
                names,
                _stored_list(names),
                ruleset_version,
                canonical(payload),  # serialised once, for the hash and the store
                refers_to,
            )
        )
        return ref

    @staticmethod
    def _stand_in(value: Any, refers_to: list[AuditRef]) -> Any:
        """A reference's number when it has one, else its token, replaced by the number in `finish`."""
        if type(value) is not AuditRef:
            return value
        if value.chained:
            return value.seq
        refers_to.append(value)
        return value.token

    def after_chain(self, write: Callable[[], None]) -> None:
        """Run `write` in `finish`, right after the records are chained: rows that hold their numbers."""
        self._after.append(write)

    def _lock_head(self, sql: Sql) -> tuple[int, str]:
        # Replicas: on PostgreSQL the head row stays locked from here until commit, so concurrent transactions
        # chain their records one after another (SQLite's write lock already does this).
        lock = "" if sql.sqlite else " FOR UPDATE"
        row = sql.fetch_one(_head, f"SELECT seq, hash FROM audit_head WHERE id = 1{lock}")
        if row is None:
            sql.insert(_head, {"id": 1, "seq": 0, "hash": GENESIS})
            return 0, GENESIS
        return row.seq, row.hash

    def finish(self) -> None:
        """Chain and write the records appended, the chain's new head, then the writes that waited for them.

        Call once, last, in the same transaction, just before it commits: from here to the commit the
        chain's head is held (PostgreSQL: its row is locked; SQLite: the transaction holds the write lock).
        """
        if self._appended:
            sql = Sql(self._connection)
            seq, prev_hash = self._lock_head(sql)
            records = []
            for appended in self._appended:
                seq += 1
                payload_text = appended.payload_text
                for ref in appended.refers_to:
                    payload_text = payload_text.replace(f'"{ref.token}"', str(ref.seq))
                record: dict[str, Any] = {
                    "seq": seq,
                    "at": appended.at,
                    "actor": appended.actor,
                    "action": appended.action,
                    "subject": appended.subject,
                    "ruleset_version": appended.ruleset_version,
                    "prev_hash": prev_hash,
                }
                record["hash"] = prev_hash = record_hash(record, payload_text)
                record["payload"] = JsonText(payload_text)
                record["subject"] = JsonText(appended.stored_subject)
                appended.ref._seq = seq
                records.append(record)
            sql.copy_many(_audit, records)
            sql.execute("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1", {"seq": seq, "hash": prev_hash})
            self._appended = []
        after, self._after = self._after, []
        for write in after:
            write()


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
