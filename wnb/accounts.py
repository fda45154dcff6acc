"""API keys for client systems and accounts for people (ARCHITECTURE.md §8); secrets are kept only hashed.

An API key is `wnb_<prefix>_<secret>`: the prefix is stored in clear to find the key, the whole key only as
SHA-256 (it is 32 random bytes, so a fast hash is enough). Passwords are hashed with argon2id. Creating,
revoking and disabling are audited under the operator who did it (`cli` when no name was given).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from wnb.audit import AuditLog
from wnb.domain import Role
from wnb.errors import WnbError
from wnb.store.db import writing
from wnb.store.tables import ApiKeyRow, UserRow, WebSessionRow

_keys = ApiKeyRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__ at class creation
_users = UserRow.__table__  # type: ignore[attr-defined]
_sessions = WebSessionRow.__table__  # type: ignore[attr-defined]

KEY_SCHEME = "wnb"
MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()
# Verified against when the user name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Principal:
    """Who is calling: a client system (by API key) or a person (by password), and their role."""

    kind: str  # client | user
    name: str
    role: Role

    @property
    def actor(self) -> str:
        """How the audit log names them: `client:<name>` or `user:<name>`."""
        return f"{self.kind}:{self.name}"


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise WnbError(f"role {role!r} is unknown; use one of: {', '.join(r.value for r in Role)}") from None


def _name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100 or any(ch.isspace() or ch == ":" for ch in name):
        raise WnbError(f"name {name!r} must be 1-100 characters without spaces or ':'")
    return name


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _audit(connection: Connection, actor: str, action: str, subject: str, payload: dict[str, str]) -> None:
    log = AuditLog(connection)
    log.append(datetime.now(UTC), actor, action, [subject], payload)
    log.finish()


def create_api_key(db_engine: Engine, role: str, name: str, actor: str = "cli") -> str:
    """Create an API key for the client system `name`; return the key, which is shown only this once."""
    checked_role, checked_name = _role(role), _name(name)
    prefix = secrets.token_hex(4)
    key = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    row = {
        "prefix": prefix,
        "key_hash": _key_hash(key),
        "name": checked_name,
        "role": checked_role.value,
        "created_at": datetime.now(UTC),
    }
    try:
        with writing(db_engine) as connection:
            connection.execute(insert(_keys).values(**row))
            payload = {"name": checked_name, "role": checked_role.value, "prefix": prefix}
            _audit(connection, actor, "api_key_created", f"key:{checked_name}", payload)
    except IntegrityError:
        raise WnbError(f"an API key named {checked_name!r} exists already") from None
    return key


def revoke_api_key(db_engine: Engine, name: str, actor: str = "cli") -> None:
    """Revoke the client system `name`'s key: from now on it is refused (401)."""
    with writing(db_engine) as connection:
        row = connection.execute(select(_keys).where(_keys.c.name == name)).first()
        if row is None:
            raise WnbError(f"no API key named {name!r}")
        if row.revoked_at is not None:
            raise WnbError(f"the API key {name!r} was revoked already")
        connection.execute(update(_keys).where(_keys.c.id == row.id).values(revoked_at=datetime.now(UTC)))
        _audit(connection, actor, "api_key_revoked", f"key:{name}", {"name": name, "prefix": row.prefix})


def end_sessions(connection: Connection, name: str) -> int:
    """End every session of the person `name` on the pages (each browser gets the sign-in page); how many."""
    return int(connection.execute(delete(_sessions).where(_sessions.c.user_name == name)).rowcount or 0)


def disable_user(db_engine: Engine, name: str, actor: str = "cli") -> None:
    """Disable the person `name`'s account: their password is refused from now on (401), their sessions end."""
    with writing(db_engine) as connection:
        row = connection.execute(select(_users).where(_users.c.name == name)).first()
        if row is None:
            raise WnbError(f"no user named {name!r}")
        if row.disabled_at is not None:
            raise WnbError(f"the user {name!r} is disabled already")
        connection.execute(update(_users).where(_users.c.id == row.id).values(disabled_at=datetime.now(UTC)))
        ended = end_sessions(connection, name)
        _audit(connection, actor, "user_disabled", f"user:{name}", {"name": name, "sessions_ended": str(ended)})


def change_password(db_engine: Engine, name: str, password: str, actor: str = "cli") -> int:
    """Give the person `name` a new password and end every session of theirs at once; how many ended."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WnbError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    password_hash = _hasher.hash(password)  # before the write lock: argon2 is slow on purpose
    with writing(db_engine) as connection:
        row = connection.execute(select(_users).where(_users.c.name == name)).first()
        if row is None:
            raise WnbError(f"no user named {name!r}")
        connection.execute(update(_users).where(_users.c.id == row.id).values(password_hash=password_hash))
        ended = end_sessions(connection, name)
        payload = {"name": name, "sessions_ended": str(ended)}
        _audit(connection, actor, "user_password_changed", f"user:{name}", payload)
    return ended


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def list_api_keys(db_engine: Engine) -> list[dict[str, str | None]]:
    """Every API key's name, role, prefix and dates (never the key)."""
    with db_engine.connect() as connection:
        rows = connection.execute(select(_keys).order_by(_keys.c.name)).all()
    return [
        {
            "name": r.name,
            "role": r.role,
            "prefix": r.prefix,
            "created_at": _iso(r.created_at),
            "revoked_at": _iso(r.revoked_at),
        }
        for r in rows
    ]


def list_users(db_engine: Engine) -> list[dict[str, str | None]]:
    """Every account's name, role and dates (never the password hash)."""
    with db_engine.connect() as connection:
        rows = connection.execute(select(_users).order_by(_users.c.name)).all()
    return [
        {"name": r.name, "role": r.role, "created_at": _iso(r.created_at), "disabled_at": _iso(r.disabled_at)}
        for r in rows
    ]


def create_user(db_engine: Engine, name: str, role: str, password: str, actor: str = "cli") -> None:
    """Create a person's account with an argon2 hash of `password`."""
    checked_role, checked_name = _role(role), _name(name)
    if checked_role is Role.CLINIC_SYSTEM:
        raise WnbError("clinic-system is a role for client systems: create an API key instead")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WnbError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    row = {
        "name": checked_name,
        "role": checked_role.value,
        "password_hash": _hasher.hash(password),
        "created_at": datetime.now(UTC),
    }
    try:
        with writing(db_engine) as connection:
            connection.execute(insert(_users).values(**row))
            payload = {"name": checked_name, "role": checked_role.value}
            _audit(connection, actor, "user_created", f"user:{checked_name}", payload)
    except IntegrityError:
        raise WnbError(f"a user named {checked_name!r} exists already") from None


def client_for_key(db_engine: Engine, key: str) -> Principal | None:
    """The client system holding `key`, or None when the key is unknown, malformed or revoked."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME:
        return None
    with db_engine.connect() as connection:
        row = connection.execute(select(_keys).where(_keys.c.prefix == parts[1])).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, _key_hash(key)):
        return None
    return Principal("client", row.name, Role(row.role))


def user_for_password(db_engine: Engine, name: str, password: str) -> Principal | None:
    """The person `name` when `password` is theirs, or None."""
    with db_engine.connect() as connection:
        row = connection.execute(select(_users).where(_users.c.name == name)).first()
    try:
        _hasher.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled_at is not None:
        return None
    return Principal("user", row.name, Role(row.role))
