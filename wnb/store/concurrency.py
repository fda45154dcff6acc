"""Several replicas on one PostgreSQL database: locks, retries of a losing transaction, and unavailability.

On PostgreSQL a transaction that evaluates a person first takes a transaction-scoped advisory lock on the
person's NHS number (different people never wait for each other), the audit chain's head row is locked
only from when a transaction chains its records, just before it commits (wnb/store/audit.py), sweeps take a
try-lock so only one replica sweeps at a time and hold the evaluation gate exclusively while they judge
deadlines and escalate, an inbox file is read by the holder of its lock, and a transaction that loses a
race (unique violation, deadlock, serialization failure) is run again from the start, when it sees the
winner's rows. SQLite has one writer at a time (BEGIN IMMEDIATE): every lock here is a no-op there.
"""

from __future__ import annotations

import functools
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import psycopg
import structlog
from psycopg import errors as pg_errors
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from wnb.core.errors import WnbError

log = structlog.get_logger("wnb.store")
T = TypeVar("T")

# Advisory lock keys: wnb's namespace in the top bits, so other applications' keys never collide.
_NAMESPACE = 0x776E62 << 40  # "wnb"
PERSON_SPACE = _NAMESPACE  # + the NHS number (10 digits, below 2**40)
SWEEP_LOCK = _NAMESPACE - 1
EVALUATION_GATE = _NAMESPACE - 2
FILE_SPACE = 0x776E62  # the first number of an inbox file's two-number advisory key
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
    """Hold these people's evaluation locks until the transaction ends (in one order, so never a deadlock).

    They come after a shared hold on the evaluation gate, which a sweep takes exclusively.
    """
    if not is_server(connection):
        return
    keys = sorted({person_key(number) for number in nhs_numbers})
    if keys:
        # One round trip, locks taken in the order of the array: the gate (below every person's key) first.
        _raw(connection).execute(
            "SELECT count(CASE WHEN key = %(gate)s THEN pg_advisory_xact_lock_shared(key) "
            "ELSE pg_advisory_xact_lock(key) END) FROM unnest(%(keys)s::bigint[]) AS key",
            {"gate": EVALUATION_GATE, "keys": [EVALUATION_GATE, *keys]},
        )


def lock_everyone(connection: Connection) -> None:
    """A sweep's lock: it waits for evaluations under way to commit, and new ones wait for it (one lock, however
    many people are due, where a lock per person could exhaust the server's lock table on a catch-up sweep)."""
    if is_server(connection):
        _raw(connection).execute("SELECT pg_advisory_xact_lock(%(gate)s)", {"gate": EVALUATION_GATE})


def lock_owner(connection: Connection, kind: str, item_id: int) -> None:
    """Lock the person whose flag or task (kind) a person is acting on, so it never changes mid-evaluation."""
    if not is_server(connection):
        return
    table = {"flag": "flag", "task": "task"}[kind]
    row = _raw(connection).execute(f"SELECT nhs_number FROM {table} WHERE id = %(id)s", {"id": item_id}).fetchone()
    if row is not None:
        lock_people(connection, [row[0]])


@contextmanager
def file_lock(db: Engine, name: str) -> Iterator[bool]:
    """True while this process holds the lock of inbox file `name` (always True on SQLite); released at exit."""
    if db.dialect.name != "postgresql":
        yield True
        return
    key = zlib.crc32(name.encode()) - 2**31  # the two-number advisory key space: never meets the others here
    with db.connect() as connection:
        raw = _raw(connection)
        held = bool(
            raw.execute(
                "SELECT pg_try_advisory_lock(%(space)s, %(key)s)", {"space": FILE_SPACE, "key": key}
            ).fetchone()[0]
        )
        raw.commit()  # a session lock: no transaction stays open while the file is read
        try:
            yield held
        finally:
            if held:
                raw.execute("SELECT pg_advisory_unlock(%(space)s, %(key)s)", {"space": FILE_SPACE, "key": key})
                raw.commit()


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


S = TypeVar("S", bound="HasDatabase")
P = ParamSpec("P")


class HasDatabase(Protocol):
    db: Engine


def retried(what: str) -> Callable[[Callable[Concatenate[S, P], T]], Callable[Concatenate[S, P], T]]:
    """A method that is one whole transaction, run again by `retrying` (on its object's `db`)."""

    def decorate(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
        @functools.wraps(method)
        def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
            return retrying(self.db, lambda: method(self, *args, **kwargs), what)

        return run

    return decorate


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
