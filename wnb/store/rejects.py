"""The data-quality queue's writes: a refused row is queued once, however often it is sent.

Events, flags, tasks and e-mails are idempotent through unique keys; a reject is too, through its
fingerprint. A client that resends a batch after a replica died, or an inbox file dropped twice, adds no
second reject: the stored one counts the receipt, moves its last-received time, takes the latest reason,
and is opened again if someone had marked it handled (the row is still arriving, so it is not dealt with).
One statement, insert-if-absent, on SQLite and PostgreSQL alike: two replicas refusing the same row at once
give one reject counted twice, never a unique violation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from wnb.store.sql import Sql

# Changing what goes into a fingerprint needs a migration that recomputes the stored ones (as 0003 did first).
_UPSERT = (
    "INSERT INTO reject (fingerprint, received_at, last_received_at, received_count, origin, line, source, "
    "event_id, field, reason, raw, raw_encoding) VALUES (:fingerprint, :received_at, :received_at, 1, :origin, "
    ":line, :source, :event_id, :field, :reason, :raw, :raw_encoding) "
    "ON CONFLICT (fingerprint) DO UPDATE SET received_count = reject.received_count + 1, "
    "last_received_at = excluded.last_received_at, field = excluded.field, reason = excluded.reason, "
    "handled_at = NULL, handled_by = NULL "
    "RETURNING id, received_count"
)


def fingerprint(origin: str, source: str | None, raw: str) -> str:
    """SHA-256 (hex) of where a row came from, the source it names and its raw text: the same row, the same value.

    The line is left out on purpose: a resent file or batch may carry the row at another place.
    """
    return hashlib.sha256(json.dumps([origin, source, raw]).encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Kept:
    """The queued reject's id and how many times its row has been received (1: first time)."""

    id: int
    received_count: int


def keep(
    connection: Connection,
    at: datetime,
    origin: str,
    line: int | None,
    source: str | None,
    event_id: str | None,
    field: str | None,
    reason: str,
    raw: str,
    raw_encoding: str = "text",
) -> Kept:
    """Queue the refused row, or count it again on the reject it already has (in the caller's transaction).

    Every text must be storable (wnb.core.limits: no U+0000, valid Unicode);
    `raw` as wnb.core.limits.storable_raw gives it.
    """
    values = {
        "fingerprint": fingerprint(origin, source, raw),
        "received_at": at,
        "origin": origin,
        "line": line,
        "source": source,
        "event_id": event_id,
        "field": field,
        "reason": reason,
        "raw": raw,
        "raw_encoding": raw_encoding,
    }
    row = Sql(connection).execute(_UPSERT, values).fetchone()
    return Kept(int(row[0]), int(row[1]))


STALE_OUTCOME = "stale-outcome"
# A stale event is stored once (its event id is reserved), so its item is too; a retried transaction that
# stores it again finds the item there and leaves it.
_INSERT_STALE = (
    "INSERT INTO reject (fingerprint, kind, received_at, last_received_at, received_count, origin, line, source, "
    "event_id, field, reason, raw) VALUES (:fingerprint, :kind, :received_at, :received_at, 1, :origin, :line, "
    ":source, :event_id, :field, :reason, :raw) ON CONFLICT (fingerprint) DO NOTHING"
)


def stale_fingerprint(source: str, event_id: str) -> str:
    """The fingerprint of a stale event's item: its (source, event_id), unique among stored events."""
    return hashlib.sha256(json.dumps([STALE_OUTCOME, source, event_id]).encode("ascii")).hexdigest()


def keep_stale_outcome(
    connection: Connection,
    at: datetime,
    origin: str,
    line: int | None,
    source: str,
    event_id: str,
    field: str,
    reason: str,
    raw: str,
) -> None:
    """List a stale event that disagrees with the stored attendance in the data-quality queue (not a reject)."""
    values = {
        "fingerprint": stale_fingerprint(source, event_id),
        "kind": STALE_OUTCOME,
        "received_at": at,
        "origin": origin,
        "line": line,
        "source": source,
        "event_id": event_id,
        "field": field,
        "reason": reason,
        "raw": raw,
    }
    Sql(connection).execute(_INSERT_STALE, values)
