"""Verifying the audit chain: every record's number, link, hash and MAC, the head, the signed checkpoints, and
that every event, flag and task has its record. `wnb audit verify` and the restore check run it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select

from wnb.core.audit_chain import GENESIS, REKEYED, record_hash
from wnb.store.audit_keys import AuditKeys, keys_for
from wnb.store.tables import AuditHeadRow, AuditRow, EventRow, FlagRow, TaskRow

_audit = AuditRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__ at class creation
_head = AuditHeadRow.__table__  # type: ignore[attr-defined]


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
        for row in iter_records(connection, batch, after=last):
            walk.record(dict(row._mapping))
        head = walk.head(connection)
        walk.beyond_the_end()
        if since is None:
            walk.every_item_recorded(connection)
    except _Broken as broken:
        return Verification(False, walk.count, broken.problem, broken.seq, walk.unkeyed, bool(keys.secrets))
    return Verification(True, walk.count, None, None, walk.unkeyed, bool(keys.secrets), len(checkpoints), head)


def iter_records(connection: Connection, batch: int, after: int = 0) -> Iterator[Any]:
    last = after
    while True:
        rows = connection.execute(select(_audit).where(_audit.c.seq > last).order_by(_audit.c.seq).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
