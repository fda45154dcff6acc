"""API keys for client systems and accounts for people (ARCHITECTURE.md §8); secrets are kept only hashed.

An API key is `wnb_<prefix>_<secret>`: the prefix is stored in clear to find the key, the whole key only as
SHA-256 (it is 32 random bytes, so a fast hash is enough). Passwords are hashed with argon2id. Creating,
binding, revoking and disabling are checked by wnb.core.policy and audited under who did it (`cli`, wnb's operator,
when no account was named).

A key is bound to what it may write (issue 11): the event sources (`sources`) and whether it writes
safeguarding context (`writes_context`). A key made before bindings existed has `sources` NULL and writes
nothing until `wnb keys bind` binds it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from wnb.core import policy
from wnb.core.contacts import ods_code
from wnb.core.domain import Role
from wnb.core.errors import WnbError
from wnb.core.plan import Member
from wnb.core.policy import Kind, Principal
from wnb.store.audit import AuditLog
from wnb.store.db import writing
from wnb.store.tables import ApiKeyRow, UserRow, WebSessionRow

_keys = ApiKeyRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__ at class creation
_users = UserRow.__table__  # type: ignore[attr-defined]
_sessions = WebSessionRow.__table__  # type: ignore[attr-defined]

KEY_SCHEME = "wnb"
MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()


@cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """Verified against when the user name is unknown, so a wrong name costs as long as a wrong password; made
    at the first sign-in, not at import (a hash costs a commands' start a tenth of a second)."""
    return hasher.hash(secrets.token_urlsafe(16))


__all__ = ["Principal"]  # wnb.core.policy's, here too for the modules that find callers

Operator = Principal | str  # who manages keys and accounts: a principal, or wnb's operator under a name


def _operator(by: Operator, action: policy.Action) -> Principal:
    """The principal behind `by` (a bare name: wnb's operator at the command line), checked for `action`."""
    principal = policy.system(by) if isinstance(by, str) else by
    policy.check(principal, action)
    return principal


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


def _sources(sources: Iterable[str]) -> list[str]:
    checked = sorted({source.strip() for source in sources})
    for source in checked:
        if not source or len(source) > 100:
            raise WnbError(f"source {source!r} must be 1-100 characters (as events name it, e.g. pas)")
    return checked


def _recipient(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return ods_code(value)
    except ValueError as error:
        raise WnbError(f"--recipient: {error}") from None


def _binding(role: Role, sources: list[str], context: bool, recipient: str | None = None) -> None:
    if recipient is not None and role is not Role.CLINIC_SYSTEM:
        raise WnbError(f"a {role.value} key acknowledges no partner's messages, so --recipient does not apply to it")
    if role is Role.CLINIC_SYSTEM and not sources and not context and recipient is None:
        raise WnbError(
            "a clinic-system key must be bound to what it writes: give --source SOURCE (the events' `source`, "
            "for FHIR the identifier system, for HL7 MSH-4) once or more, and --context for safeguarding context"
        )
    if role is not Role.CLINIC_SYSTEM and role is not Role.ADMIN and (sources or context):
        raise WnbError(f"a {role.value} key writes nothing, so --source and --context do not apply to it")


def create_api_key(
    db_engine: Engine,
    role: str,
    name: str,
    actor: Operator = "cli",
    sources: Iterable[str] = (),
    context: bool = False,
    recipient: str | None = None,
) -> str:
    """Create an API key for the client system `name`, bound to `sources` (and context when `context`; and the
    messages to the recipient `recipient`, an ODS code, when given: a partner's key); return the key, which is
    shown only this once. A clinic-system key must be bound to something."""
    checked_role, checked_name, bound = _role(role), _name(name), _sources(sources)
    partner = _recipient(recipient)
    _binding(checked_role, bound, context, partner)
    by = _operator(actor, policy.Action.KEYS_ADMIN)
    prefix = secrets.token_hex(4)
    key = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    row = {
        "prefix": prefix,
        "key_hash": _key_hash(key),
        "name": checked_name,
        "role": checked_role.value,
        "created_at": datetime.now(UTC),
        "sources": bound,
        "writes_context": context,
        "recipient": partner,
    }
    try:
        with writing(db_engine) as connection:
            connection.execute(insert(_keys).values(**row))
            payload = {"name": checked_name, "role": checked_role.value, "prefix": prefix}
            payload.update(_binding_payload(bound, context, by, partner))
            _audit(connection, by.actor, "api_key_created", f"key:{checked_name}", payload)
    except IntegrityError:
        raise WnbError(f"an API key named {checked_name!r} exists already") from None
    return key


def _binding_payload(sources: list[str], context: bool, by: Principal, recipient: str | None) -> dict[str, Any]:
    return {"sources": sources, "context": context, **({"recipient": recipient} if recipient else {}), **by.via_detail}


def bind_api_key(
    db_engine: Engine,
    name: str,
    sources: Iterable[str],
    context: bool = False,
    actor: Operator = "cli",
    recipient: str | None = None,
) -> None:
    """Bind the key `name` to write events for `sources` only (and safeguarding context when `context`; and to
    acknowledge the messages to `recipient`, an ODS code), replacing what it was bound to before."""
    bound, partner = _sources(sources), _recipient(recipient)
    by = _operator(actor, policy.Action.KEYS_ADMIN)
    with writing(db_engine) as connection:
        row = _row_named(connection, _keys, name, "API key")
        if row.revoked_at is not None:
            raise WnbError(f"the API key {name!r} was revoked; create a new one")
        _binding(Role(row.role), bound, context, partner)
        values = {"sources": bound, "writes_context": context, "recipient": partner}
        connection.execute(update(_keys).where(_keys.c.id == row.id).values(**values))
        payload = {"name": name, "before": row.sources, "context_before": row.writes_context}
        payload.update(_binding_payload(bound, context, by, partner))
        _audit(connection, by.actor, "api_key_bound", f"key:{name}", payload)


def revoke_api_key(db_engine: Engine, name: str, actor: Operator = "cli") -> None:
    """Revoke the client system `name`'s key: from now on it is refused (401)."""
    by = _operator(actor, policy.Action.KEYS_ADMIN)
    with writing(db_engine) as connection:
        row = _row_named(connection, _keys, name, "API key")
        if row.revoked_at is not None:
            raise WnbError(f"the API key {name!r} was revoked already")
        connection.execute(update(_keys).where(_keys.c.id == row.id).values(revoked_at=datetime.now(UTC)))
        _audit(
            connection,
            by.actor,
            "api_key_revoked",
            f"key:{name}",
            {"name": name, "prefix": row.prefix, **by.via_detail},
        )


def _row_named(connection: Connection, table: Any, name: str, what: str) -> Any:
    """The row of `table` named `name`; refused, naming what was looked for, when there is none."""
    row = connection.execute(select(table).where(table.c.name == name)).first()
    if row is None:
        raise WnbError(f"no {what} named {name!r}")
    return row


def end_sessions(connection: Connection, name: str) -> int:
    """End every session of the person `name` on the pages (each browser gets the sign-in page); how many."""
    return int(connection.execute(delete(_sessions).where(_sessions.c.user_name == name)).rowcount or 0)


def disable_user(db_engine: Engine, name: str, actor: Operator = "cli") -> None:
    """Disable the person `name`'s account: their password is refused from now on (401), their sessions end."""
    by = _operator(actor, policy.Action.USERS_ADMIN)
    with writing(db_engine) as connection:
        row = _row_named(connection, _users, name, "user")
        if row.disabled_at is not None:
            raise WnbError(f"the user {name!r} is disabled already")
        connection.execute(update(_users).where(_users.c.id == row.id).values(disabled_at=datetime.now(UTC)))
        ended = end_sessions(connection, name)
        payload = {"name": name, "sessions_ended": str(ended), **by.via_detail}
        _audit(connection, by.actor, "user_disabled", f"user:{name}", payload)


def change_password(db_engine: Engine, name: str, password: str, actor: Operator = "cli") -> int:
    """Give the person `name` a new password and end every session of theirs at once; how many ended.

    A person may change their own (account.password); anyone else's needs users.admin.
    """
    own = isinstance(actor, Principal) and actor.kind == Kind.USER and actor.name == name
    by = _operator(actor, policy.Action.ACCOUNT_PASSWORD if own else policy.Action.USERS_ADMIN)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WnbError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    password_hash = _hasher.hash(password)  # before the write lock: argon2 is slow on purpose
    with writing(db_engine) as connection:
        row = _row_named(connection, _users, name, "user")
        connection.execute(update(_users).where(_users.c.id == row.id).values(password_hash=password_hash))
        ended = end_sessions(connection, name)
        payload = {"name": name, "sessions_ended": str(ended), **by.via_detail}
        _audit(connection, by.actor, "user_password_changed", f"user:{name}", payload)
    return ended


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def list_api_keys(db_engine: Engine, actor: Operator = "cli") -> list[dict[str, Any]]:
    """Every API key's name, role, prefix, dates and binding (never the key); `sources` None: never bound."""
    _operator(actor, policy.Action.KEYS_ADMIN)
    with db_engine.connect() as connection:
        rows = connection.execute(select(_keys).order_by(_keys.c.name)).all()
    return [
        {
            "name": r.name,
            "role": r.role,
            "prefix": r.prefix,
            "created_at": _iso(r.created_at),
            "revoked_at": _iso(r.revoked_at),
            "sources": r.sources,
            "context": bool(r.writes_context),
            "recipient": r.recipient,
        }
        for r in rows
    ]


def list_users(db_engine: Engine, actor: Operator = "cli") -> list[dict[str, str | None]]:
    """Every account's name, role and dates (never the password hash)."""
    _operator(actor, policy.Action.USERS_ADMIN)
    with db_engine.connect() as connection:
        rows = connection.execute(select(_users).order_by(_users.c.name)).all()
    return [
        {
            "name": r.name,
            "role": r.role,
            "email": r.email,
            "created_at": _iso(r.created_at),
            "disabled_at": _iso(r.disabled_at),
        }
        for r in rows
    ]


def enabled_members(connection: Connection, roles: Iterable[str]) -> dict[str, list[str]]:
    """The user names of the enabled accounts of each of `roles`, by name: whom a lead may assign its tasks to."""
    wanted = sorted(set(roles))
    found: dict[str, list[str]] = {role: [] for role in wanted}
    if wanted:
        query = (
            select(_users.c.name, _users.c.role)
            .where(_users.c.role.in_(wanted), _users.c.disabled_at.is_(None))
            .order_by(_users.c.name)
        )
        for row in connection.execute(query):
            found[row.role].append(row.name)
    return found


def _email(email: str | None) -> str | None:
    """An e-mail address as given, or None; refused unless it reads as one (a name, @, a domain with a dot)."""
    if email is None or not email.strip():
        return None
    address = email.strip()
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain or any(ch.isspace() for ch in address) or len(address) > 254:
        raise WnbError(f"e-mail address {address!r} is not one: give name@example.nhs.uk")
    return address


def create_user(
    db_engine: Engine, name: str, role: str, password: str, actor: Operator = "cli", email: str | None = None
) -> None:
    """Create a person's account with an argon2 hash of `password`, and their e-mail address if given (where an
    assignment to them is announced)."""
    checked_role, checked_name, address = _role(role), _name(name), _email(email)
    by = _operator(actor, policy.Action.USERS_ADMIN)
    if checked_role is Role.CLINIC_SYSTEM:
        raise WnbError("clinic-system is a role for client systems: create an API key instead")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WnbError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    row = {
        "name": checked_name,
        "role": checked_role.value,
        "password_hash": _hasher.hash(password),
        "created_at": datetime.now(UTC),
        "email": address,
    }
    try:
        with writing(db_engine) as connection:
            connection.execute(insert(_users).values(**row))
            payload = {"name": checked_name, "role": checked_role.value, **by.via_detail}
            if address:
                payload["email"] = address
            _audit(connection, by.actor, "user_created", f"user:{checked_name}", payload)
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
    sources = frozenset(row.sources) if row.sources is not None else None
    return Principal(Kind.CLIENT, row.name, Role(row.role), sources, bool(row.writes_context), row.recipient)


def user_for_password(db_engine: Engine, name: str, password: str) -> Principal | None:
    """The person `name` when `password` is theirs, or None."""
    with db_engine.connect() as connection:
        row = connection.execute(select(_users).where(_users.c.name == name)).first()
    try:
        _hasher.verify(row.password_hash if row is not None else _dummy_hash(_hasher), password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled_at is not None:
        return None
    return Principal(Kind.USER, row.name, Role(row.role))


def assignable(connection: Connection, name: str) -> tuple[Member, str | None]:
    """The account `name` as an assignment needs it (wnb.core.plan.Member), and its e-mail address if it has one;
    WnbError when no account has that name."""
    row = connection.execute(select(_users).where(_users.c.name == name)).first()
    if row is None:
        raise WnbError(f"no account named {name!r} to assign the task to (see `wnb users list`)")
    return Member(row.name, row.role, row.disabled_at is None), row.email


def person_named(db_engine: Engine, name: str, via: str = "cli") -> Principal:
    """The person with the enabled account `name`, coming `via` the CLI (its `--by`); WnbError otherwise."""
    with db_engine.connect() as connection:
        row = connection.execute(select(_users).where(_users.c.name == name)).first()
    if row is None:
        raise WnbError(f"--by {name!r}: no account has that name; --by names the person acting (see `wnb users list`)")
    if row.disabled_at is not None:
        raise WnbError(f"--by {name!r}: that account is disabled, so it may not act")
    return Principal(Kind.USER, row.name, Role(row.role), via=via)
