"""Failed sign-ins, counted in the database per (account name, client address), so every replica sees them.

After `delay_after` failures in a row each next attempt must wait a growing number of seconds (1, 2, 4 …):
until then it is refused at once, so no worker sleeps. At `lock_failures` the account is locked *from that
address* for `lock_minutes`; the lock opens by itself, or `wnb users unlock` opens it now. Counting by
account and address means someone guessing from another machine never locks the person out of their own ward
PC. Once a failure is counted, each attempt is counted before its password is checked, so many attempts sent
at once cannot all slip in between the check and the count; a right password then clears the count. Until
then a failure is counted after its check, so a right password writes nothing: the parallel requests of an
API client using HTTP Basic never delay each other.

A run of failures is audited once, with its count: `sign_in_locked` when it locks the account, else
`sign_in_failed` when a right password ends it or when it is forgotten, `lock_minutes` after its last failure
(noticed at the next failed sign-in anyone makes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wnb.core import policy
from wnb.core.errors import WnbError
from wnb.core.policy import Action
from wnb.store.accounts import Principal, user_for_password
from wnb.store.audit import AuditLog
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
    """Delete runs of failures past their window, auditing each that was not audited yet (as `sign_in_failed`).

    Rows another replica is forgetting right now are skipped (SKIP LOCKED), so no run is audited twice.
    """
    old = (_failures.c.last_failed_at <= now - limits.window) & (_failures.c.refused_until <= now)
    query = select(_failures).where(old).order_by(_failures.c.id).with_for_update(skip_locked=True)
    rows = connection.execute(query).all()
    for row in rows:
        if not row.locked and row.failures > 0:
            _audit(connection, now, "sign_in_failed", row.user_name, {**_run(row), "ended_by": "time"})
    if rows:
        connection.execute(delete(_failures).where(_failures.c.id.in_([row.id for row in rows])))


def _run(row: Any) -> dict[str, Any]:
    return {
        "name": row.user_name,
        "address": row.address,
        "failures": row.failures,
        "first_failed_at": row.first_failed_at.isoformat(),
        "last_failed_at": row.last_failed_at.isoformat(),
    }


def _key(name: str, address: str) -> Any:
    return (_failures.c.user_name == name) & (_failures.c.address == address)


def _is_live(row: Any, now: datetime, limits: Limits) -> bool:
    """Whether a row is a run of failures still counted (not yet past its window)."""
    return bool(row.failures > 0 and (row.refused_until > now or row.last_failed_at + limits.window > now))


def _locked_row(connection: Connection, name: str, address: str, now: datetime, limits: Limits) -> Any:
    """The row of (`name`, `address`), made if missing, locked until commit; refuses while delayed or locked."""
    _forget_old_runs(connection, now, limits)
    blank = {"failures": 0, "first_failed_at": now, "last_failed_at": now, "refused_until": now, "locked": False}
    connection.execute(
        _insert(connection)
        .values(user_name=name, address=address, **blank)
        .on_conflict_do_nothing(index_elements=["user_name", "address"])
    )
    return connection.execute(select(_failures).where(_key(name, address)).with_for_update()).one()


def _count_failure(connection: Connection, row: Any, now: datetime, limits: Limits) -> Any:
    """One more failure on `row` (locked): the row as it now is."""
    failures = row.failures + 1
    values = {"failures": failures, "last_failed_at": now, "refused_until": refused_until(failures, now, limits)}
    if row.failures == 0:
        values["first_failed_at"] = now
    connection.execute(update(_failures).where(_failures.c.id == row.id).values(**values))
    return connection.execute(select(_failures).where(_failures.c.id == row.id)).one()


def _refuse_if_waiting(row: Any, name: str, now: datetime, limits: Limits) -> None:
    if row is not None and row.refused_until > now:
        raise TooManyFailures(name, row.refused_until, now, locked=row.failures >= limits.lock_failures)


def _before_checking(db: Engine, name: str, address: str, now: datetime, limits: Limits) -> bool:
    """Refuse while delayed or locked; once failures are counted, count this attempt too before its password
    is checked (True). With none counted, nothing is written (False): a right password costs one read."""
    with db.connect() as connection:
        row = connection.execute(select(_failures).where(_key(name, address))).first()
    _refuse_if_waiting(row, name, now, limits)
    if row is None or not _is_live(row, now, limits):
        return False
    with writing(db) as connection:
        row = _locked_row(connection, name, address, now, limits)
        _refuse_if_waiting(row, name, now, limits)
        _count_failure(connection, row, now, limits)
    return True


def _password_was_wrong(
    db: Engine, name: str, address: str, now: datetime, limits: Limits, via: str, counted: bool
) -> None:
    """Count the failure (unless counted before the check) and audit the lock once, when it is reached."""
    with writing(db) as connection:
        row = _locked_row(connection, name, address, now, limits)
        if not counted:
            row = _count_failure(connection, row, now, limits)
        if row.locked or row.failures < limits.lock_failures:
            return
        connection.execute(update(_failures).where(_failures.c.id == row.id).values(locked=True))
        payload = {**_run(row), "locked_until": row.refused_until.isoformat(), "via": via}
        _audit(connection, now, "sign_in_locked", name, payload)


def _password_was_right(db: Engine, name: str, address: str, now: datetime, via: str) -> None:
    """Clear the count; the failures before this attempt are audited as one record."""
    with writing(db) as connection:
        row = connection.execute(select(_failures).where(_key(name, address)).with_for_update()).first()
        connection.execute(delete(_failures).where(_key(name, address)))
        if row is not None and row.failures > 1:
            payload = {**_run(row), "failures": row.failures - 1, "ended_by": "right password", "via": via}
            _audit(connection, now, "sign_in_failed", name, payload)


def check_password(
    db: Engine, name: str, password: str, address: str, now: datetime, limits: Limits, via: str
) -> Principal | None:
    """The person when `password` is theirs (None when not), counting a failure against (`name`, `address`).

    Raises TooManyFailures, without checking the password, while this account is delayed or locked from
    `address`. Unknown names are counted too, so delays do not tell which names exist.
    """
    name = name[:MAX_NAME]
    counted = _before_checking(db, name, address, now, limits)
    principal = user_for_password(db, name, password)
    if principal is None:
        _password_was_wrong(db, name, address, now, limits, via, counted)
        return None
    if counted:
        _password_was_right(db, name, address, now, via)
    return principal


def unlock(db: Engine, name: str, now: datetime, actor: Principal | str = "cli") -> int:
    """Clear every count and lock of `name` (from every address) now; how many addresses were cleared.

    `actor` (a bare name: wnb's operator at the command line) must be allowed users.admin.
    """
    by = policy.system(actor) if isinstance(actor, str) else actor
    policy.check(by, Action.USERS_ADMIN)
    with writing(db) as connection:
        rows = connection.execute(select(_failures).where(_failures.c.user_name == name)).all()
        if not rows:
            if connection.execute(select(_users.c.id).where(_users.c.name == name)).first() is None:
                raise WnbError(f"no user named {name!r}")
            raise WnbError(f"the user {name!r} has no failed sign-ins and no lock: nothing to unlock")
        connection.execute(delete(_failures).where(_failures.c.user_name == name))
        log = AuditLog(connection)
        failures = sum(row.failures for row in rows)
        payload = {"name": name, "addresses": len(rows), "failures": failures, **by.via_detail}
        log.append(now, by.actor, "sign_in_unlocked", [f"user:{name}"], payload)
        log.finish()
    return len(rows)
