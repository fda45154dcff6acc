"""Several replicas on one PostgreSQL database: locks, retries of a losing transaction, and unavailability.

On PostgreSQL a transaction that evaluates a person first takes a transaction-scoped advisory lock on the
person's NHS number (different people never wait for each other), the audit chain's head row is locked
when a transaction first appends, sweeps take a try-lock so only one replica sweeps at a time, and a
transaction that loses a race (unique violation, deadlock, serialization failure) is run again from the
start, when it sees the winner's rows. SQLite has one writer at a time (BEGIN IMMEDIATE): every lock here
is a no-op there.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
import structlog
from psycopg import errors as pg_errors
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from wnb.errors import WnbError

log = structlog.get_logger("wnb.store")
T = TypeVar("T")

# Advisory lock keys: wnb's namespace in the top bits, so other applications' keys never collide.
_NAMESPACE = 0x776E62 << 40  # "wnb"
PERSON_SPACE = _NAMESPACE  # + the NHS number (10 digits, below 2**40)
SWEEP_LOCK = _NAMESPACE - 1
CONFLICT_ATTEMPTS = 8
CONNECTION_ATTEMPTS = 3


class DatabaseUnavailable(WnbError):
    """The database did not answer (restart, dropped connection): nothing was stored; try again shortly."""


def is_server(connection: Connection) -> bool:
    """True on PostgreSQL, where several replicas may write at once."""
    return connection.dialect.name == "postgresql"


def _raw(connection: Connection) -> Any:
    return connection.connection.driver_connection


def person_key(nhs_number: str) -> int:
    """The advisory lock key of one person (an NHS number is ten digits; anything else is hashed)."""
    digits = nhs_number if nhs_number.isdigit() and len(nhs_number) <= 12 else str(zlib.crc32(nhs_number.encode()))
    return PERSON_SPACE + int(digits)


def lock_people(connection: Connection, nhs_numbers: Iterable[str]) -> None:
    """Hold these people's evaluation locks until the transaction ends (in one order, so never a deadlock)."""
    if not is_server(connection):
        return
    keys = sorted({person_key(number) for number in nhs_numbers})
    if keys:
        _raw(connection).execute(
            "SELECT pg_advisory_xact_lock(key) FROM unnest(%(keys)s::bigint[]) AS key", {"keys": keys}
        )


def lock_due_people(connection: Connection, now: datetime) -> None:
    """A sweep's locks: everyone with a follow-up deadline or a task due by `now`, taken until none is new."""
    if not is_server(connection):
        return
    locked: set[str] = set()
    while True:
        rows = (
            _raw(connection)
            .execute(
                "SELECT nhs_number FROM follow_up WHERE status = 'pending' AND deadline_at <= %(now)s "
                "UNION SELECT nhs_number FROM task WHERE status = 'requested' AND due_at <= %(now)s",
                {"now": now.astimezone(UTC).replace(tzinfo=None)},
            )
            .fetchall()
        )
        new = {row[0] for row in rows} - locked
        if not new:
            return
        lock_people(connection, new)
        locked |= new


def lock_owner(connection: Connection, kind: str, item_id: int) -> None:
    """Lock the person whose flag or task (kind) a person is acting on, so it never changes mid-evaluation."""
    if not is_server(connection):
        return
    table = {"flag": "flag", "task": "task"}[kind]
    row = _raw(connection).execute(f"SELECT nhs_number FROM {table} WHERE id = %(id)s", {"id": item_id}).fetchone()
    if row is not None:
        lock_people(connection, [row[0]])


def try_sweep_lock(connection: Connection) -> bool:
    """True when this transaction may sweep: no other replica is sweeping now (always True on SQLite)."""
    if not is_server(connection):
        return True
    row = _raw(connection).execute("SELECT pg_try_advisory_xact_lock(%(key)s)", {"key": SWEEP_LOCK}).fetchone()
    return bool(row[0])


def _cause(error: BaseException) -> BaseException:
    return error.orig if isinstance(error, DBAPIError) and error.orig is not None else error


def is_conflict(error: BaseException) -> bool:
    """Lost a race with another transaction: running it again will see the winner's rows."""
    return isinstance(
        _cause(error), pg_errors.UniqueViolation | pg_errors.DeadlockDetected | pg_errors.SerializationFailure
    )


def is_connection_loss(error: BaseException) -> bool:
    """The server went away (restart, dropped connection, shutdown) or refused to connect."""
    cause = _cause(error)
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError) and not is_conflict(cause)


def retrying(db: Engine, work: Callable[[], T], what: str = "transaction") -> T:
    """Run `work` (one whole transaction); on PostgreSQL run it again when it lost a race or the connection.

    A transaction whose connection was lost may or may not have committed; running it again is safe because
    every effect is idempotent (a stored event is then a duplicate). When the database stays away,
    DatabaseUnavailable: the caller answers 503 and the client tries again.
    """
    server = db.dialect.name == "postgresql"
    conflicts = losses = 0
    while True:
        try:
            return work()
        except Exception as error:
            if not server:
                raise
            if is_conflict(error) and conflicts < CONFLICT_ATTEMPTS:
                conflicts += 1
                log.info("transaction_retried", what=what, reason=type(_cause(error)).__name__, attempt=conflicts)
                time.sleep(0.005 * conflicts)
                continue
            if is_connection_loss(error):
                if losses < CONNECTION_ATTEMPTS:
                    losses += 1
                    log.warning("database_connection_lost", what=what, attempt=losses)
                    time.sleep(0.2 * losses)
                    continue
                raise DatabaseUnavailable(f"the database is unavailable ({type(_cause(error)).__name__})") from error
            raise
