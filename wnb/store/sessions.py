"""People's sessions on the pages, kept on the server (web_session), so they end at once on every replica.

The browser's cookie carries a random token; only its SHA-256 is stored (a copy of the table lets nobody in).
A session ends when the person signs out, when it is `hours` old, when their account is disabled and when
their password changes (wnb.store.accounts.end_sessions); a cookie replayed after that finds no session.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, select

from wnb.core.domain import Role
from wnb.core.policy import Kind
from wnb.store.accounts import Principal
from wnb.store.db import writing
from wnb.store.tables import UserRow, WebSessionRow

_sessions = WebSessionRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__ at class creation
_users = UserRow.__table__  # type: ignore[attr-defined]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: Engine, name: str, now: datetime, hours: float) -> str:
    """A new session for the person `name` until `hours` from `now`; returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    with writing(db) as connection:
        connection.execute(delete(_sessions).where(_sessions.c.expires_at <= now))  # the expired, gone for good
        row = {"token_hash": _hash(token), "user_name": name, "created_at": now}
        connection.execute(insert(_sessions).values(**row, expires_at=now + timedelta(hours=hours)))
    return token


def session_person(db: Engine, token: str, now: datetime) -> Principal | None:
    """The person whose live session `token` is; None when it ended, expired or their account is disabled."""
    query = (
        select(_users.c.name, _users.c.role, _users.c.disabled_at, _sessions.c.expires_at)
        .select_from(_sessions.join(_users, _users.c.name == _sessions.c.user_name))
        .where(_sessions.c.token_hash == _hash(token))
    )
    with db.connect() as connection:
        row = connection.execute(query).first()
    if row is None or row.disabled_at is not None or row.expires_at <= now:
        return None
    return Principal(Kind.USER, row.name, Role(row.role))


def end_session(db: Engine, token: str) -> None:
    """End the one session `token` (sign-out); nothing when it had ended already."""
    with writing(db) as connection:
        connection.execute(delete(_sessions).where(_sessions.c.token_hash == _hash(token)))
