"""Idempotency-Key: the first response to a (client, key) is stored and replayed, so a retry has no second effect
(the API keeps it: wnb.api.ingestion)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, insert, select
from sqlalchemy.exc import IntegrityError

from wnb.store.db import writing
from wnb.store.tables import IdempotencyRow

_table = IdempotencyRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__ at class creation

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status_code: int
    body: Any


def request_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def find(db: Engine, client: str, key: str) -> StoredResponse | None:
    with db.connect() as connection:
        row = connection.execute(select(_table).where(and_(_table.c.client == client, _table.c.key == key))).first()
    return None if row is None else StoredResponse(row.request_hash, row.status_code, json.loads(row.body))


def remember(db: Engine, client: str, key: str, response: StoredResponse) -> StoredResponse:
    """Store the response; when a concurrent request with the same key stored one first, return that one."""
    try:
        with writing(db) as connection:
            connection.execute(
                insert(_table).values(
                    client=client,
                    key=key,
                    request_hash=response.request_hash,
                    status_code=response.status_code,
                    body=json.dumps(response.body),
                    created_at=datetime.now(UTC),
                )
            )
    except IntegrityError:
        return find(db, client, key) or response
    return response
