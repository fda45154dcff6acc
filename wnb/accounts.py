"""API keys for client systems and accounts for people (ARCHITECTURE.md §8); secrets are kept only hashed.

An API key is `wnb_<prefix>_<secret>`: the prefix is stored in clear to find the key, the whole key only as
SHA-256 (it is 32 random bytes, so a fast hash is enough). Passwords are hashed with argon2id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from wnb.domain import Role
from wnb.errors import WnbError
from wnb.store.db import writing
from wnb.store.tables import ApiKeyRow, UserRow

_keys = ApiKeyRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__ at class creation
_users = UserRow.__table__  # type: ignore[attr-defined]

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


def create_api_key(db_engine: Engine, role: str, name: str) -> str:
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
    except IntegrityError:
        raise WnbError(f"an API key named {checked_name!r} exists already") from None
    return key


def create_user(db_engine: Engine, name: str, role: str, password: str) -> None:
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
