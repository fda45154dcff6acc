"""Failed sign-ins, counted in the database per (account name, client address), so every replica sees them.

After `delay_after` failures in a row each next attempt must wait a growing number of seconds (1, 2, 4 …):
until then it is refused at once, so no worker sleeps. At `lock_failures` the account is locked *from that
address* for `lock_minutes`; the lock opens by itself, or `wnb users unlock` opens it now. Counting by
account and address means someone guessing from another machine never locks the person out of their own ward
PC. An attempt is counted before its password is checked, so many attempts sent at once cannot all slip in
between the check and the count; a right password then clears the count.

A run of failures is audited once, with its count: `sign_in_locked` when it locks the account, else
`sign_in_failed` when a right password ends it or when it is forgotten, `lock_minutes` after its last failure
(noticed at the next attempt anyone makes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wnb.accounts import Principal, user_for_password
from wnb.audit import AuditLog
from wnb.errors import WnbError
from wnb.store.db import writing
from wnb.store.tables import SignInFailureRow, UserRow

_failures = SignInFailureRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__ at class creation
_users = UserRow.__table__  # type: ignore[attr-defined]
ACTOR = "sign-in"  # the audit's actor for failures: nobody is known to be signed in
MAX_NAME = 100


@dataclass(frozen=True)
class Limits:
    """How many failures from one address lock an account, for how long, and when delays begin."""

    lock_failures: int = 10
    lock_minutes: float = 15
    delay_after: int = 3

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.lock_minutes)


def refused_until(failures: int, last_failed_at: datetime, limits: Limits) -> datetime:
    """Until when the next attempt is refused after `failures` failures in a row, the last at `last_failed_at`."""
    if failures >= limits.lock_failures:
        return last_failed_at + limits.window
    if failures >= limits.delay_after:
        return last_failed_at + timedelta(seconds=2 ** (failures - limits.delay_after))
    return last_failed_at


class TooManyFailures(WnbError):
    """The account may not be tried from this address yet: a delay after failures, or a lock."""

    def __init__(self, name: str, retry_after: datetime, now: datetime, locked: bool) -> None:
        self.retry_after_seconds = max(1, math.ceil((retry_after - now).total_seconds()))
        self.locked = locked
        if locked:
            minutes = math.ceil(self.retry_after_seconds / 60)
            self.advice = (
                f"the account {name!r} is locked from this address for {minutes} more minute"
                f"{'s' if minutes != 1 else ''}; an administrator can unlock it now (wnb users unlock)"
            )
        else:
            seconds = self.retry_after_seconds
            self.advice = f"wait {seconds} second{'s' if seconds != 1 else ''} before trying again"
        super().__init__(f"too many failed sign-ins: {self.advice}")


def _insert(connection: Connection) -> Any:
    return (postgres_insert if connection.dialect.name == "postgresql" else sqlite_insert)(_failures)


def _audit(connection: Connection, now: datetime, action: str, name: str, payload: dict[str, Any]) -> None:
    log = AuditLog(connection)
    log.append(now, ACTOR, action, [f"user:{name}"], payload)
    log.finish()


def _forget_old_runs(connection: Connection, now: datetime, limits: Limits) -> None:
    """Delete runs of failures past their window, auditing each that was not audited yet (as `sign_in_failed`)."""
    old = (_failures.c.last_failed_at <= now - limits.window) & (_failures.c.refused_until <= now)
    for row in connection.execute(select(_failures).where(old).order_by(_failures.c.id)).all():
        if not row.locked and row.failures > 0:
            _audit(connection, now, "sign_in_failed", row.user_name, {**_run(row), "ended_by": "time"})
    connection.execute(delete(_failures).where(old))


def _run(row: Any) -> dict[str, Any]:
    return {
        "name": row.user_name,
        "address": row.address,
        "failures": row.failures,
        "first_failed_at": row.first_failed_at.isoformat(),
        "last_failed_at": row.last_failed_at.isoformat(),
    }


def _count_attempt(db: Engine, name: str, address: str, now: datetime, limits: Limits) -> None:
    """Count one more attempt (as a failure until its password proves right); refuse it while delayed or locked."""
    key = (_failures.c.user_name == name) & (_failures.c.address == address)
    with writing(db) as connection:
        _forget_old_runs(connection, now, limits)
        blank = {"failures": 0, "first_failed_at": now, "last_failed_at": now, "refused_until": now, "locked": False}
        connection.execute(
            _insert(connection)
            .values(user_name=name, address=address, **blank)
            .on_conflict_do_nothing(index_elements=["user_name", "address"])
        )
        row = connection.execute(select(_failures).where(key).with_for_update()).one()
        if row.refused_until > now:
            raise TooManyFailures(name, row.refused_until, now, locked=row.failures >= limits.lock_failures)
        failures = row.failures + 1
        values = {"failures": failures, "last_failed_at": now, "refused_until": refused_until(failures, now, limits)}
        if row.failures == 0:
            values["first_failed_at"] = now
        connection.execute(update(_failures).where(key).values(**values))


def _password_was_wrong(db: Engine, name: str, address: str, now: datetime, limits: Limits, via: str) -> None:
    """Audit the lock once, when this failure reached it."""
    key = (_failures.c.user_name == name) & (_failures.c.address == address)
    with writing(db) as connection:
        row = connection.execute(select(_failures).where(key).with_for_update()).first()
        if row is None or row.locked or row.failures < limits.lock_failures:
            return
        connection.execute(update(_failures).where(key).values(locked=True))
        payload = {**_run(row), "locked_until": row.refused_until.isoformat(), "via": via}
        _audit(connection, now, "sign_in_locked", name, payload)


def _password_was_right(db: Engine, name: str, address: str, now: datetime, via: str) -> None:
    """Clear the count; the failures before this attempt, if any, are audited as one record."""
    key = (_failures.c.user_name == name) & (_failures.c.address == address)
    with writing(db) as connection:
        row = connection.execute(select(_failures).where(key).with_for_update()).first()
        connection.execute(delete(_failures).where(key))
        if row is not None and row.failures > 1:
            payload = {**_run(row), "failures": row.failures - 1, "ended_by": "right password", "via": via}
            _audit(connection, now, "sign_in_failed", name, payload)


def check_password(
    db: Engine, name: str, password: str, address: str, now: datetime, limits: Limits, via: str
) -> Principal | None:
    """The person when `password` is theirs (None when not), counting the attempt against (`name`, `address`).

    Raises TooManyFailures, without checking the password, while this account is delayed or locked from
    `address`. Unknown names are counted too, so delays do not tell which names exist.
    """
    name = name[:MAX_NAME]
    _count_attempt(db, name, address, now, limits)
    principal = user_for_password(db, name, password)
    if principal is None:
        _password_was_wrong(db, name, address, now, limits, via)
        return None
    _password_was_right(db, name, address, now, via)
    return principal


def unlock(db: Engine, name: str, now: datetime, actor: str = "cli") -> int:
    """Clear every count and lock of `name` (from every address) now; how many addresses were cleared."""
    with writing(db) as connection:
        rows = connection.execute(select(_failures).where(_failures.c.user_name == name)).all()
        if not rows:
            if connection.execute(select(_users.c.id).where(_users.c.name == name)).first() is None:
                raise WnbError(f"no user named {name!r}")
            raise WnbError(f"the user {name!r} has no failed sign-ins and no lock: nothing to unlock")
        connection.execute(delete(_failures).where(_failures.c.user_name == name))
        log = AuditLog(connection)
        payload = {"name": name, "addresses": len(rows), "failures": sum(row.failures for row in rows)}
        log.append(now, actor, "sign_in_unlocked", [f"user:{name}"], payload)
        log.finish()
    return len(rows)
