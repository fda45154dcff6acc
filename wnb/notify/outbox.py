"""The outbox: notifications persisted with the change that caused them, delivered after through their channel.

New red flags notify the safeguarding nurses' addresses; an escalated task notifies its new owner role's.
Messages carry ids and codes only, never personal data: the reader opens wnb to see the child.
Delivery claims a row (pending → sending) in its own transaction before sending, so two deliverers never
send one row; after a crash a row left `sending` becomes `uncertain` and is not sent again (never twice).
Transient SMTP failures (4xx, connection errors, a timeout before the server asked for the message) are
retried with exponential backoff; permanent ones (5xx) stop and are recorded (`failed`). Once the server
has asked for the message (354 after DATA) and may hold it, a lost answer (a timeout, the connection cut)
makes the row `uncertain` too: sending it again could deliver it twice. A webhook target is an address that
is an http(s) URL: its row's body is JSON of ids and codes, posted by wnb/notify/webhook.py with the same claim,
retry and never-twice rules. Each channel is one module (wnb/notify/channels.py lists them).

Never lost unseen: each row that ends `uncertain` or `failed` opens one task for the `admin` role naming it
(code `notification-uncertain` or `notification-failed`, service `outbox:<id>`), in the transaction that
records the outcome, and the row keeps the task's id (`admin_task_id`), so retries and replicas open no second.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, Engine

from wnb import metrics
from wnb.core.refs import task_ref
from wnb.notify import webhook
from wnb.notify.channels import DeliveryError, MaybeDelivered, Message
from wnb.notify.email import SmtpSettings
from wnb.notify.registry import CHANNELS, channel_for
from wnb.notify.sharing import FhirSettings, SecureEmailSettings
from wnb.notify.webhook import WebhookSettings
from wnb.settings import parse_notify
from wnb.store.admin_tasks import admin_task_in
from wnb.store.db import writing
from wnb.store.sql import Record, Sql
from wnb.store.tables import OutboxRow

log = structlog.get_logger("wnb.notify")
outbox = OutboxRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__
MAX_BACKOFF = timedelta(hours=1)
SENDING_GRACE = timedelta(minutes=5)  # far longer than one send may take (the SMTP timeout)
MAX_PER_RUN = 1000  # rows one delivery run sends at most; the next run (30 s later) takes the rest
UNCERTAIN_CODE = "notification-uncertain"  # the admin task of a row that may or may not have arrived
FAILED_CODE = "notification-failed"  # the admin task of a row that could not be delivered
UNDELIVERED = ("uncertain", "failed")
# The patterns the channels' `claims` conditions name (bound, since a literal `%` reads as a psycopg placeholder).
CLAIM_PATTERNS = {
    "http_url": "http://%",
    "https_url": "https://%",
    "secure_email": "secure-email:%",
    "fhir": "fhir:%",
    "letter": "letter:%",
}
# What each outbox status means for the people running wnb (`wnb outbox`, deploy/OPERATIONS.md).
WHAT_TO_DO = {
    "pending": "waits to be sent (retried with backoff after a transient failure)",
    "sending": "being sent now; if wnb stopped meanwhile it becomes uncertain",
    "uncertain": "may have arrived, never sent again: ask the recipient whether it did (its admin task)",
    "failed": "not delivered, never tried again: check the address, tell the recipient another way (its admin task)",
    "sent": "delivered",
}


def parse_addresses(text: str) -> dict[str, tuple[str, ...]]:
    """`role=a@x,role=b@y` (as in WNB_NOTIFY) → {role: addresses}; ValueError naming a bad entry."""
    return parse_notify(text)


def enqueue(
    connection: Connection,
    addresses: Mapping[str, tuple[str, ...]],
    role: str,
    key: str,
    subject: str,
    body: str,
    at: datetime,
) -> int:
    """Queue one message per address of `role`; a key already queued is not queued again.

    For a webhook URL the body is JSON naming the notification, the role and the subject (ids and codes only).
    """
    sql, queued = Sql(connection), 0
    for address in addresses.get(role, ()):
        dedupe_key = f"{key}:{address}"
        if sql.scalar("SELECT id FROM outbox WHERE dedupe_key = :key", {"key": dedupe_key}) is not None:
            continue
        text = channel_for(address).body(Message(key, role, subject, body, at))
        sql.insert(
            outbox,
            {
                "dedupe_key": dedupe_key,
                "recipient": address,
                "subject": subject,
                "body": text,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": at,
                "created_at": at,
            },
        )
        queued += 1
    return queued


def enqueue_to_person(connection: Connection, address: str, key: str, subject: str, body: str, at: datetime) -> int:
    """Queue one message to one person's own address (an assignment to them), not to a role's mailboxes."""
    return enqueue(connection, {address: (address,)}, address, key, subject, body, at)


def _claim(db: Engine, now: datetime, channels: list[str]) -> Record | None:
    """Take the oldest due row (pending → sending) in its own transaction, or None when nothing is due.

    One row at a time: a crash leaves at most the row being sent `uncertain`, never rows not yet tried.
    """
    if not channels:
        return None
    which = " OR ".join(f"({CHANNELS[channel].claims})" for channel in channels)
    with writing(db) as connection:
        sql = Sql(connection)
        rows = sql.fetch_all(
            outbox,
            "SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= :now "
            f"AND ({which}) ORDER BY id LIMIT 1" + ("" if sql.sqlite else " FOR UPDATE SKIP LOCKED"),
            # Replicas: a row another deliverer is claiming is skipped, never claimed twice (PostgreSQL).
            {"now": now, **CLAIM_PATTERNS},
        )
        for row in rows:
            sql.update(outbox, row.id, {"status": "sending", "claimed_at": now})
    return rows[0] if rows else None


def mark_uncertain_after_restart(db: Engine, now: datetime | None = None) -> int:
    """Rows left `sending` by a crash may have gone out: never send them again; say so.

    On SQLite (one process) every such row is left from before the restart. On PostgreSQL other replicas may be
    sending right now, so only rows claimed longer ago than any send takes (SENDING_GRACE) are marked; each
    delivery round marks them too, so a crashed replica's rows need no restart to be reported.
    """
    with writing(db) as connection:
        sql = Sql(connection)
        stale = "" if sql.sqlite else " AND (claimed_at IS NULL OR claimed_at < :cutoff)"
        now = now or datetime.now(UTC)
        cursor = sql.execute(
            "UPDATE outbox SET status = 'uncertain', last_error = 'interrupted while sending' "
            f"WHERE status = 'sending'{stale}",
            {} if sql.sqlite else {"cutoff": now - SENDING_GRACE},
        )
        marked = int(cursor.rowcount or 0)
        opened = _open_missing_tasks(connection, now) if marked else []
    _log_opened(opened)
    return marked


def open_undelivered_tasks(db: Engine, now: datetime) -> list[str]:
    """Open the admin task of every `uncertain` or `failed` row that has none (ids of the tasks opened).

    Rows get theirs when they end so; this catches rows from before tasks were opened (revision 0009) and
    any whose outcome was written by a process that died before it could open one.
    """
    with db.connect() as connection:  # a read first: most rounds have nothing to report, and need no write lock
        if Sql(connection).scalar(f"SELECT id FROM outbox WHERE {_UNREPORTED} LIMIT 1") is None:
            return []
    with writing(db) as connection:
        opened = _open_missing_tasks(connection, now)
    _log_opened(opened)
    return opened


_UNREPORTED = "status IN ('uncertain', 'failed') AND admin_task_id IS NULL"


def _open_missing_tasks(connection: Connection, now: datetime) -> list[str]:
    sql = Sql(connection)
    rows = sql.fetch_all(
        outbox,
        f"SELECT * FROM outbox WHERE {_UNREPORTED} ORDER BY id LIMIT :limit"
        + ("" if sql.sqlite else " FOR UPDATE SKIP LOCKED"),
        {"limit": MAX_PER_RUN},
    )
    return [_open_task(connection, row, now) for row in rows]


_CHANNEL_WORDS = {"webhook": "webhook", "email": "e-mail", "secure-email": "secure e-mail", "fhir": "FHIR message"}
_SHARING = ("secure-email", "fhir", "letter")


def enqueue_one(connection: Connection, address: str, key: str, subject: str, body: str, at: datetime) -> int:
    """Queue one message to one address of a sharing channel (`secure-email:…`, `fhir:…`) in the caller's
    transaction; the outbox row's id (the row already there, when `key` was queued before)."""
    sql = Sql(connection)
    dedupe_key = f"{key}:{address}"
    found = sql.scalar("SELECT id FROM outbox WHERE dedupe_key = :key", {"key": dedupe_key})
    if found is not None:
        return int(found)
    text = channel_for(address).body(Message(key, "", subject, body, at))
    values = {"dedupe_key": dedupe_key, "recipient": address, "subject": subject, "body": text, "status": "pending"}
    return sql.insert(outbox, {**values, "attempts": 0, "next_attempt_at": at, "created_at": at})


def purge(db: Engine, now: datetime, retention: timedelta) -> int:
    """Empty the bodies of outbox rows older than `retention` that will never be sent again (sent, failed,
    uncertain): a message's text (personal data, for the sharing channels) is kept no longer than that. The rows
    stay, with their status and error, for `wnb outbox` and their admin tasks. The number emptied."""
    with writing(db) as connection:
        cursor = Sql(connection).execute(
            "UPDATE outbox SET body = :purged WHERE status IN ('sent', 'failed', 'uncertain') "
            "AND created_at < :cutoff AND body <> :purged",
            {"purged": PURGED, "cutoff": now - retention},
        )
        emptied = int(cursor.rowcount or 0)
    if emptied:
        log.info("outbox_purged", rows=emptied)
    return emptied


PURGED = "(purged: kept no longer than WNB_OUTBOX_RETENTION_DAYS)"


def _open_task(connection: Connection, row: Record, now: datetime) -> str:
    """In the caller's transaction: open the admin task of undelivered `row` and link it to the row."""
    channel = _CHANNEL_WORDS.get(channel_for(row.recipient).name, "e-mail")
    notification = row.dedupe_key.removesuffix(f":{row.recipient}")
    # A webhook URL may carry a token: the task names its host only (the setting, WNB_WEBHOOK_URL, says the rest).
    address = row.recipient.partition(":")[2] if channel_for(row.recipient).name in _SHARING else row.recipient
    where = webhook.host_of(address) if webhook.is_webhook(address) else address
    if row.status == "uncertain":
        code = UNCERTAIN_CODE
        note = (
            f"The {channel} to {where} (outbox row {row.id}, {notification}: {row.subject}) may or may not have "
            f"arrived ({row.last_error}); it will not be sent again. Ask the recipient whether it arrived; if it "
            "did not, tell them what it said another way. Then complete this task with what you found."
        )
    else:
        code = FAILED_CODE
        note = (
            f"The {channel} to {where} (outbox row {row.id}, {notification}: {row.subject}) could not be "
            f"delivered ({row.last_error}); it will not be tried again. Check the address (WNB_NOTIFY, "
            "WNB_WEBHOOK_URL) and tell the recipient what it said another way. Then complete this task."
        )
    details = {
        "outbox": row.id,
        "notification": notification,
        "channel": channel,
        "outbox_status": row.status,
        "error": row.last_error,
    }
    task_id, _ = admin_task_in(connection, f"outbox:{row.id}", code, note, details, now, actor="outbox")
    Sql(connection).update(outbox, row.id, {"admin_task_id": task_id})
    return task_ref(task_id)


def _log_opened(tasks: list[str]) -> None:
    for task in tasks:
        log.warning("outbox_admin_task_opened", task=task)


def deliver(
    db: Engine,
    smtp: SmtpSettings | None,
    now: datetime,
    hook: WebhookSettings | None = None,
    secure: SecureEmailSettings | None = None,
    fhir: FhirSettings | None = None,
) -> dict[str, int]:
    """Send what is due on the channels configured (e-mail with `smtp`, webhooks with `hook`, the sharing channels
    with `secure` and `fhir`); count the results."""
    counts = {"sent": 0, "retried": 0, "failed": 0, "uncertain": 0}
    if db.dialect.name == "postgresql":
        mark_uncertain_after_restart(db, now)  # replicas: a crashed one's rows are reported without a restart
    open_undelivered_tasks(db, now)
    given = (("email", smtp), ("webhook", hook), ("secure-email", secure), ("fhir", fhir))
    configured = {name: settings for name, settings in given if settings is not None}
    channels = list(configured)
    for _ in range(MAX_PER_RUN):
        row = _claim(db, now, channels)
        if row is None:
            break
        outcome = _send(row, now, configured)
        counts["retried" if outcome["status"] == "pending" else str(outcome["status"])] += 1
        task = None
        with writing(db) as connection:
            Sql(connection).update(outbox, row.id, outcome)
            if outcome["status"] in UNDELIVERED:  # with the outcome: never lost unseen, even after a crash
                task = _open_task(connection, Record({**row, **outcome}), now)
        if task is not None:
            log.warning("outbox_row_undelivered", outbox=row.id, status=outcome["status"], task=task)
    if any(counts.values()):
        log.info("outbox_delivered", **counts)
    record_backlog(db)
    return counts


def record_backlog(db: Engine) -> dict[str, int]:
    """Set the outbox backlog gauge (pending, sending, uncertain and failed rows) from the database."""
    with db.connect() as connection:
        rows = (
            Sql(connection)
            .execute("SELECT status, count(*) FROM outbox WHERE status <> 'sent' GROUP BY status")
            .fetchall()
        )
    backlog = {status: 0 for status in metrics.BACKLOG_STATUSES} | {status: int(n) for status, n in rows}
    for status, number in backlog.items():
        metrics.OUTBOX_BACKLOG.labels(status=status).set(number)
    return backlog


def _send(row: Record, now: datetime, configured: Mapping[str, Any]) -> dict[str, object]:
    """One claimed row through its channel: what to record of it (sent, retried with backoff, failed, uncertain)."""
    channel = channel_for(row.recipient)
    try:
        reference = channel.send(row, configured[channel.name])
    except DeliveryError as error:
        return _failure(row, now, error.permanent, error.reason)
    except MaybeDelivered as error:
        return _uncertain(row, error.reason)
    log.debug("outbox_row_sent", outbox=row.id, channel=channel.name, reference=reference)
    return {"status": "sent", "sent_at": datetime.now(UTC), "attempts": row.attempts + 1}


def _uncertain(row: Record, error: str) -> dict[str, object]:
    """The row may have been delivered: never again (`uncertain`); its admin task asks the recipient."""
    return {"status": "uncertain", "attempts": row.attempts + 1, "last_error": error}


def _failure(row: Record, now: datetime, permanent: bool, error: str) -> dict[str, object]:
    """A permanent failure stops the row (`failed`); a transient one puts it back with exponential backoff."""
    attempts = row.attempts + 1
    if permanent:
        return {"status": "failed", "attempts": attempts, "last_error": error}
    backoff = min(timedelta(minutes=2**attempts), MAX_BACKOFF)
    return {"status": "pending", "attempts": attempts, "last_error": error, "next_attempt_at": now + backoff}
