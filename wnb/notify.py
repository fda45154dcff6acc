"""E-mail and webhook notifications through the outbox: persist first (with the change), deliver after.

New red flags notify the safeguarding nurses' addresses; an escalated task notifies its new owner role's.
Messages carry ids and codes only, never personal data: the reader opens wnb to see the child.
Delivery claims a row (pending → sending) in its own transaction before sending, so two deliverers never
send one row; after a crash a row left `sending` becomes `uncertain` and is not sent again (never twice).
Transient SMTP failures (4xx, connection errors) are retried with exponential backoff; permanent ones (5xx)
stop and are recorded. A webhook target is an address that is an http(s) URL: its row's body is JSON of ids
and codes, posted by wnb/webhook.py with the same claim, retry and never-twice rules.
"""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import structlog
from sqlalchemy import Connection, Engine

from wnb import metrics, webhook
from wnb.audit import canonical
from wnb.settings import parse_notify
from wnb.store.db import writing
from wnb.store.sql import Record, Sql
from wnb.store.tables import OutboxRow

log = structlog.get_logger("wnb.notify")
outbox = OutboxRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__
MAX_BACKOFF = timedelta(hours=1)
MAX_PER_RUN = 1000  # rows one delivery run sends at most; the next run (30 s later) takes the rest


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
        text = body
        if webhook.is_webhook(address):
            text = canonical({"notification": key, "role": role, "subject": subject, "queued_at": at})
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


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "wnb@localhost"
    timeout: float = 10.0


# Webhook rows are those whose recipient is a URL. The patterns are parameters, not literals: a literal `%`
# would be read as a placeholder by psycopg.
_IS_URL = "(recipient LIKE :http_url OR recipient LIKE :https_url)"
_CHANNELS = {"email": f"NOT {_IS_URL}", "webhook": _IS_URL}


def _claim(db: Engine, now: datetime, channels: list[str]) -> Record | None:
    """Take the oldest due row (pending → sending) in its own transaction, or None when nothing is due.

    One row at a time: a crash leaves at most the row being sent `uncertain`, never rows not yet tried.
    """
    if not channels:
        return None
    which = " OR ".join(f"({_CHANNELS[channel]})" for channel in channels)
    with writing(db) as connection:
        sql = Sql(connection)
        rows = sql.fetch_all(
            outbox,
            "SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= :now "
            f"AND ({which}) ORDER BY id LIMIT 1",
            {"now": now, "http_url": "http://%", "https_url": "https://%"},
        )
        for row in rows:
            sql.update(outbox, row.id, {"status": "sending"})
    return rows[0] if rows else None


def mark_uncertain_after_restart(db: Engine) -> int:
    """Rows left `sending` by a crash may have gone out: never send them again; say so."""
    with writing(db) as connection:
        cursor = Sql(connection).execute(
            "UPDATE outbox SET status = 'uncertain', last_error = 'interrupted while sending' WHERE status = 'sending'"
        )
        return int(cursor.rowcount or 0)


def deliver(
    db: Engine, smtp: SmtpSettings | None, now: datetime, hook: webhook.WebhookSettings | None = None
) -> dict[str, int]:
    """Send what is due on the channels configured (e-mail with `smtp`, webhooks with `hook`); count the results."""
    counts = {"sent": 0, "retried": 0, "failed": 0}
    channels = [name for name, settings in (("email", smtp), ("webhook", hook)) if settings is not None]
    for _ in range(MAX_PER_RUN):
        row = _claim(db, now, channels)
        if row is None:
            break
        if webhook.is_webhook(row.recipient):
            assert hook is not None
            outcome = _webhook_outcome(row, now, hook)
        else:
            assert smtp is not None
            outcome = _email_outcome(row, now, smtp)
        if outcome["status"] == "sent":
            counts["sent"] += 1
        elif outcome["status"] == "pending":
            counts["retried"] += 1
        elif outcome["status"] == "failed":
            counts["failed"] += 1
        with writing(db) as connection:
            Sql(connection).update(outbox, row.id, outcome)
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


def _webhook_outcome(row: Record, now: datetime, hook: webhook.WebhookSettings) -> dict[str, object]:
    try:
        webhook.post(hook, row.recipient, row.dedupe_key, row.body.encode())
    except webhook.DeliveryError as error:
        return _failure(row, now, error.permanent, error.reason)
    return {"status": "sent", "sent_at": datetime.now(UTC), "attempts": row.attempts + 1}


def _email_outcome(row: Record, now: datetime, smtp: SmtpSettings) -> dict[str, object]:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = smtp.sender, row.recipient, row.subject
    message["Message-ID"] = f"<{row.dedupe_key.replace(':', '.').replace('@', '.at.')}@wnb>"
    message.set_content(row.body)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
            client.send_message(message)
    except smtplib.SMTPResponseException as error:
        return _failure(row, now, 500 <= error.smtp_code < 600, f"{error.smtp_code} {error.smtp_error!r}")
    except (smtplib.SMTPException, OSError) as error:
        return _failure(row, now, False, type(error).__name__)
    return {"status": "sent", "sent_at": datetime.now(UTC), "attempts": row.attempts + 1}


def _failure(row: Record, now: datetime, permanent: bool, error: str) -> dict[str, object]:
    """A permanent failure stops the row (`failed`); a transient one puts it back with exponential backoff."""
    attempts = row.attempts + 1
    if permanent:
        return {"status": "failed", "attempts": attempts, "last_error": error}
    backoff = min(timedelta(minutes=2**attempts), MAX_BACKOFF)
    return {"status": "pending", "attempts": attempts, "last_error": error, "next_attempt_at": now + backoff}
