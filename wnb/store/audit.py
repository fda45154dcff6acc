"""The append-only, hash-chained audit log (ARCHITECTURE.md §6): append, verify, export.

Each record's hash is SHA-256 over a canonical JSON form of its content and the previous record's hash,
so a record changed, removed or moved breaks the chain at the first place it was touched. Someone who can
write the database could recompute every hash, so each record and the chain's head also carry an HMAC with
a key kept outside the database (wnb/store/audit_keys.py), and signed checkpoints of the head kept on write-once
storage (wnb/service/audit_checkpoints.py) show a log cut short or rewritten however well its hashes were redone.
Records written before wnb had audit keys keep their form: an `audit_rekeyed` record ends them.
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

from sqlalchemy import Connection, Table, select

from wnb.core.errors import WnbError
from wnb.store.audit_keys import AuditKeys, keys_for
from wnb.store.sql import JsonText, Sql
from wnb.store.tables import AuditHeadRow, AuditRow, EventRow, FlagRow, TaskRow

GENESIS = "0" * 64
REKEYED = "audit_rekeyed"  # the record after which every record carries a MAC
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


def _header_text(
    seq: Any, at: str, actor: Any, action: Any, subject: Any, version: Any, prev_hash: Any, key_id: Any = None
) -> str:
    """canonical() of a record's header; written out directly (twice as fast) when its values have the types
    append() gives them, each string encoded by the very function the canonical encoder uses.

    A record written with an audit key has its key's id in the header (so stripping the key changes the hash);
    one written before wnb had audit keys has no such field, and its hash is what it always was.
    """
    if (
        type(seq) is int
        and (key_id is None or type(key_id) is str)
        and type(actor) is str
        and type(action) is str
        and type(prev_hash) is str
        and (version is None or type(version) is str)
        and type(subject) is list
        and all(type(item) is str for item in subject)
    ):
        key = "" if key_id is None else f'"key_id":{_string(key_id)},'
        return (
            f'{{"action":{_string(action)},"actor":{_string(actor)},"at":{_string(at)},{key}'
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
    if key_id is not None:
        header["key_id"] = key_id
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
        record.get("key_id"),
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
    records and makes their HMACs (one each, with the audit key: no record is read back), writes them and the
    new head, then runs what waited for their numbers (`after_chain`). The head
    is held for that step alone, so replicas evaluate their chunks at the same time and take turns to chain.
    """

    def __init__(self, connection: Connection, keys: AuditKeys | None = None) -> None:
        self._connection = connection
        self._keys = keys  # default: the keys of the connection's engine, looked up when the records are chained
        self._switch = False  # append `audit_rekeyed` even with no record of the caller's (switch_to_keys)
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

    def _lock_head(self, sql: Sql) -> tuple[int, str, str | None]:
        # Replicas: on PostgreSQL the head row stays locked from here until commit, so concurrent transactions
        # chain their records one after another (SQLite's write lock already does this).
        lock = "" if sql.sqlite else " FOR UPDATE"
        row = sql.fetch_one(_head, f"SELECT seq, hash, key_id FROM audit_head WHERE id = 1{lock}")
        if row is None:
            sql.insert(_head, {"id": 1, "seq": 0, "hash": GENESIS})
            return 0, GENESIS, None
        return row.seq, row.hash, row.key_id

    def _to_chain(self, seq: int, head_key: str | None, key_id: str | None) -> list[_Appended]:
        """The records to chain: the caller's, after an `audit_rekeyed` record when this write is the first
        with a key on a log that has records without one."""
        if key_id is None:
            if head_key is not None:
                raise WnbError(
                    f"the audit log is authenticated with audit key {head_key!r}: set WNB_AUDIT_KEY "
                    "(or its file in WNB_SECRETS_DIR) to write to it"
                )
            return self._appended
        if head_key is not None or seq == 0:  # already keyed, or a new log: keyed from its first record
            return self._appended
        at = self._appended[0].at if self._appended else datetime.now(UTC)
        payload = {"key_id": key_id, "records_before": seq, "reason": "records from here on carry an HMAC"}
        subject = [f"audit-key:{key_id}"]
        rekeyed = _Appended(
            AuditRef("rekeyed"), at, "system", REKEYED, subject, _stored_list(subject), None, canonical(payload), []
        )
        return [rekeyed, *self._appended]

    def finish(self) -> None:
        """Chain and write the records appended, the chain's new head, then the writes that waited for them.

        Call once, last, in the same transaction, just before it commits: from here to the commit the
        chain's head is held (PostgreSQL: its row is locked; SQLite: the transaction holds the write lock).
        """
        if self._appended or self._switch:
            keys = self._keys or keys_for(self._connection)
            key_id = keys.writing_key()
            sql = Sql(self._connection)
            seq, prev_hash, head_key = self._lock_head(sql)
            records = []
            for appended in self._to_chain(seq, head_key, key_id):
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
                    "key_id": key_id,
                }
                record["hash"] = prev_hash = record_hash(record, payload_text)
                record["mac"] = None if key_id is None else keys.record_mac(key_id, prev_hash)
                record["payload"] = JsonText(payload_text)
                record["subject"] = JsonText(appended.stored_subject)
                appended.ref._seq = seq
                records.append(record)
            if records:
                sql.copy_many(_audit, records)
                head_mac = None if key_id is None else keys.head_mac(key_id, seq, prev_hash)
                sql.execute(
                    "UPDATE audit_head SET seq = :seq, hash = :hash, key_id = :key_id, mac = :mac WHERE id = 1",
                    {"seq": seq, "hash": prev_hash, "key_id": key_id, "mac": head_mac},
                )
            self._appended = []
            self._switch = False
        after, self._after = self._after, []
        for write in after:
            write()


@dataclass(frozen=True)
class Checkpoint:
    """A head the chain once had, vouched for by a signed checkpoint file: record `seq` had hash `hash`."""

    seq: int
    hash: str
    at: datetime
    name: str


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    problem: str | None = None
    first_bad_seq: int | None = None
    unkeyed: int = 0  # records written before wnb had audit keys: checked by their hashes alone
    keyed: bool = False  # every MAC was checked with the audit keys (False: no key given)
    checkpoints: int = 0  # checkpoints the chain was compared with
    head: tuple[int, str] = (0, GENESIS)  # the last record's number and hash, once verified


class _Broken(Exception):
    def __init__(self, problem: str, seq: int) -> None:
        super().__init__(problem)
        self.problem, self.seq = problem, seq


# What `verify` checks has an audit record: subjects E12, F3, T40 name rows of these tables.
_RECORDED: dict[str, tuple[str, Table]] = {
    "E": ("event", EventRow.__table__),  # type: ignore[attr-defined]  # SQLModel adds __table__
    "F": ("flag", FlagRow.__table__),  # type: ignore[attr-defined]
    "T": ("task", TaskRow.__table__),  # type: ignore[attr-defined]
}


class _Walk:
    """The chain read in order: each record's number, link, hash and MAC, and the checkpoints at its number."""

    def __init__(self, keys: AuditKeys, checkpoints: tuple[Checkpoint, ...], since: Checkpoint | None) -> None:
        self.keys = keys
        self.checkpoints = checkpoints
        self.at_seq: dict[int, list[Checkpoint]] = {}
        for checkpoint in checkpoints:
            self.at_seq.setdefault(checkpoint.seq, []).append(checkpoint)
        self.expected_seq, self.prev_hash = (since.seq + 1, since.hash) if since else (1, GENESIS)
        self.count = self.unkeyed = 0
        self.keyed_since: int | None = None
        self.seen: dict[str, set[int]] = {prefix: set() for prefix in _RECORDED}

    def start_after(self, connection: Connection, since: Checkpoint) -> None:
        """Carry on from a checkpoint already verified: its record must still be there, unchanged."""
        if since.seq == 0:
            return
        row = connection.execute(select(_audit.c.hash, _audit.c.key_id).where(_audit.c.seq == since.seq)).first()
        if row is None:
            raise _Broken(f"the log was truncated: record {since.seq} of checkpoint {since.name} is gone", since.seq)
        if row.hash != since.hash:
            raise _Broken(f"record {since.seq} differs from checkpoint {since.name}: the log was rewritten", since.seq)
        if row.key_id is not None:
            self.keyed_since = since.seq

    def record(self, record: dict[str, Any]) -> None:
        seq = record["seq"]
        if seq != self.expected_seq:
            raise _Broken(f"record {self.expected_seq} is missing (next found is {seq}): deleted", self.expected_seq)
        if record["prev_hash"] != self.prev_hash:
            raise _Broken(self._not_following(record), seq)
        if record_hash(record) != record["hash"]:
            raise _Broken(f"record {seq} was changed: its content does not match its hash", seq)
        self._check_mac(record)
        for checkpoint in self.at_seq.get(seq, ()):
            if checkpoint.hash != record["hash"]:
                raise _Broken(
                    f"record {seq} differs from checkpoint {checkpoint.name} (taken {checkpoint.at.isoformat()}): "
                    "the log was rewritten after the checkpoint, its hashes recomputed",
                    seq,
                )
        for item in record["subject"]:
            if type(item) is str and item[:1] in self.seen and item[1:].isdigit():
                self.seen[item[0]].add(int(item[1:]))
        self.prev_hash, self.expected_seq, self.count = record["hash"], seq + 1, self.count + 1

    @staticmethod
    def _not_following(record: dict[str, Any]) -> str:
        """Why a record does not link to the one before it, naming the number it was written under if near."""
        seq = record["seq"]
        problem = f"record {seq} does not follow record {seq - 1}"
        for moved in (seq + step for distance in range(1, 17) for step in (distance, -distance)):
            if moved > 0 and record_hash({**record, "seq": moved}) == record["hash"]:
                return f"{problem}: it holds record {moved} renumbered (records were removed, or reordered)"
        return f"{problem}: removed or reordered"

    def _check_mac(self, record: dict[str, Any]) -> None:
        seq, key_id = record["seq"], record["key_id"]
        if key_id is None:
            if self.keyed_since is not None:
                raise _Broken(
                    f"record {seq} has no MAC, yet the log carries MACs since record {self.keyed_since}: "
                    "written or rewritten without the audit key",
                    seq,
                )
            if record["action"] == REKEYED:
                raise _Broken(f"record {seq} ({REKEYED}) has no MAC: rewritten without the audit key", seq)
            self.unkeyed += 1
            return
        if self.keyed_since is None:
            if seq != 1 and record["action"] != REKEYED:
                raise _Broken(
                    f"record {seq} is the first with a MAC but not an {REKEYED} record: records were moved", seq
                )
            self.keyed_since = seq
        if not self.keys.secrets:
            return
        if not self.keys.has(key_id):
            raise _Broken(
                f"record {seq} names audit key {key_id!r}, which WNB_AUDIT_KEY does not hold "
                "(keep retired keys after the current one, so old records still verify)",
                seq,
            )
        if not self.keys.matches(self.keys.record_mac(key_id, record["hash"]), record["mac"]):
            raise _Broken(
                f"record {seq} is not authenticated by audit key {key_id!r}: it was changed, renumbered or "
                "reordered and the hashes recomputed by someone without the key",
                seq,
            )

    def head(self, connection: Connection) -> tuple[int, str]:
        """The stored head must be the last record, with a MAC once the log carries MACs."""
        row = connection.execute(select(_head.c.seq, _head.c.hash, _head.c.key_id, _head.c.mac)).first()
        last = self.expected_seq - 1
        head_seq, head_hash = (row.seq, row.hash) if row else (0, GENESIS)
        if (head_seq, head_hash) != (last, self.prev_hash):
            raise _Broken(
                f"the log ends at record {last} but record {head_seq} was written last: truncated, or the head changed",
                last + 1,
            )
        if self.keyed_since is not None and row is not None:
            if row.key_id is None:
                raise _Broken(
                    f"the head (record {last}) has no MAC: the log was truncated and the head moved without the key",
                    last + 1,
                )
            if self.keys.secrets and not (
                self.keys.has(row.key_id)
                and self.keys.matches(self.keys.head_mac(row.key_id, head_seq, head_hash), row.mac)
            ):
                raise _Broken(
                    f"the head (record {last}) is not authenticated by audit key {row.key_id!r}: the log was "
                    "truncated and the head moved by someone without the key",
                    last + 1,
                )
        return last, self.prev_hash

    def beyond_the_end(self) -> None:
        """No checkpoint may have seen a record the log no longer has."""
        last = self.expected_seq - 1
        for checkpoint in sorted(self.checkpoints, key=lambda checkpoint: -checkpoint.seq):
            if checkpoint.seq > last:
                cut = "emptied" if last == 0 else "truncated"
                raise _Broken(
                    f"the log was {cut}: it ends at record {last} but checkpoint {checkpoint.name} "
                    f"(taken {checkpoint.at.isoformat()}) saw record {checkpoint.seq}",
                    last + 1,
                )

    def every_item_recorded(self, connection: Connection) -> None:
        """Every event, flag and task has at least one audit record naming it."""
        for prefix, (name, table) in _RECORDED.items():
            seen = self.seen[prefix]
            for (item_id,) in connection.execute(select(table.c.id).order_by(table.c.id)):
                if item_id not in seen:
                    how = "the log was emptied" if self.count == 0 else "its records were deleted"
                    raise _Broken(f"{name} {prefix}{item_id} has no audit record: {how}", self.expected_seq)


def verify(
    connection: Connection,
    batch: int = 5000,
    keys: AuditKeys | None = None,
    checkpoints: tuple[Checkpoint, ...] = (),
    since: Checkpoint | None = None,
) -> Verification:
    """Recompute the whole chain and name the first thing wrong: a record changed, removed, moved or
    renumbered, a MAC that the audit keys do not give, a head that is not the last record, a checkpoint the
    chain no longer matches, an event, flag or task no record names.

    Without keys (an external auditor's run) the MACs are not checked: hashes, head and checkpoints are.
    `since`, a checkpoint already verified, starts there (for the next checkpoint) and skips the last check.
    Refuses in production without the audit key.
    """
    keys = keys or keys_for(connection)
    keys.check_can_verify()
    walk = _Walk(keys, checkpoints, since)
    try:
        if since is not None:
            walk.start_after(connection, since)
        last = since.seq if since else 0
        for row in _iter_records(connection, batch, after=last):
            walk.record(dict(row._mapping))
        head = walk.head(connection)
        walk.beyond_the_end()
        if since is None:
            walk.every_item_recorded(connection)
    except _Broken as broken:
        return Verification(False, walk.count, broken.problem, broken.seq, walk.unkeyed, bool(keys.secrets))
    return Verification(True, walk.count, None, None, walk.unkeyed, bool(keys.secrets), len(checkpoints), head)


def _iter_records(connection: Connection, batch: int, after: int = 0) -> Iterator[Any]:
    last = after
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


def switch_to_keys(connection: Connection, keys: AuditKeys | None = None) -> bool:
    """Append the `audit_rekeyed` record now, if the log has records and none with a key yet (call in a
    writing transaction); the first keyed write would append it otherwise. True when it was appended."""
    before = connection.execute(select(_head.c.seq)).scalar_one_or_none()
    log = AuditLog(connection, keys)
    log._switch = True
    log.finish()
    after = connection.execute(select(_head.c.seq)).scalar_one_or_none()
    return after != before


def records_for(connection: Connection, seqs: list[int]) -> list[dict[str, Any]]:
    rows = connection.execute(select(_audit).where(_audit.c.seq.in_(seqs)).order_by(_audit.c.seq)).all()
    return [dict(row._mapping) for row in rows]
