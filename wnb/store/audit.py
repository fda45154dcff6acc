"""The append-only, hash-chained audit log (ARCHITECTURE.md §6): append and export; the canonical form and
hashes are wnb/core/audit_chain.py, verifying the chain wnb/store/audit_verify.py.

Each record's hash is SHA-256 over a canonical JSON form of its content and the previous record's hash,
so a record changed, removed or moved breaks the chain at the first place it was touched. Someone who can
write the database could recompute every hash, so each record and the chain's head also carry an HMAC with
a key kept outside the database (wnb/store/audit_keys.py), and signed checkpoints of the head kept on write-once
storage (wnb/service/audit_checkpoints.py) show a log cut short or rewritten however well its hashes were redone.
Records written before wnb had audit keys keep their form: an `audit_rekeyed` record ends them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from wnb.core.audit_chain import GENESIS as GENESIS
from wnb.core.audit_chain import REKEYED, canonical, record_hash, stored_list
from wnb.core.errors import WnbError
from wnb.store.audit_keys import AuditKeys, keys_for
from wnb.store.audit_verify import Checkpoint as Checkpoint
from wnb.store.audit_verify import Verification as Verification
from wnb.store.audit_verify import iter_records
from wnb.store.audit_verify import verify as verify
from wnb.store.sql import JsonText, Sql
from wnb.store.tables import AuditHeadRow, AuditRow

_audit = AuditRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__ at class creation
_head = AuditHeadRow.__table__  # type: ignore[attr-defined]


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
                stored_list(names),
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
        head = f"SELECT seq, hash, key_id FROM audit_head WHERE id = 1{lock}"
        row = sql.fetch_one(_head, head)
        if row is None:
            # The first record of an empty log: replicas starting together all find no head row to lock. The one
            # insert that wins makes the others wait for its commit (PostgreSQL), and they then chain after it.
            sql.execute(
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :hash) ON CONFLICT (id) DO NOTHING",
                {"hash": GENESIS},
            )
            row = sql.fetch_one(_head, head)
            assert row is not None, "the audit log's head row is missing after it was made"
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
            AuditRef("rekeyed"), at, "system", REKEYED, subject, stored_list(subject), None, canonical(payload), []
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


def export_lines(connection: Connection) -> Iterator[str]:
    """The log as JSON lines, in order."""
    for row in iter_records(connection, 5000):
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


def evaluation_versions(connection: Connection, before: datetime) -> dict[int, str]:
    """The ruleset version each event was first evaluated under (its first `evaluation` record before `before`),
    by the event's id: what a simulation's baseline replays it under."""
    query = (
        select(_audit.c.subject, _audit.c.ruleset_version)
        .where(_audit.c.action == "evaluation", _audit.c.at < before, _audit.c.ruleset_version.is_not(None))
        .order_by(_audit.c.seq)
    )
    versions: dict[int, str] = {}
    for row in connection.execution_options(stream_results=True, yield_per=1000).execute(query):
        subject = row.subject if isinstance(row.subject, list) else []
        first = str(subject[0]) if subject else ""
        if first.startswith("E") and first[1:].isdigit():
            versions.setdefault(int(first[1:]), str(row.ruleset_version))
    return versions
