"""E-mail notifications through the outbox: persist first (with the change), deliver after.

New red flags notify the safeguarding nurses' addresses; an escalated task notifies its new owner role's.
Messages carry ids and codes only, never personal data: the reader opens wnb to see the child.
Delivery claims a row (pending → sending) in its own transaction before sending, so two deliverers never
send one row; after a crash a row left `sending` becomes `uncertain` and is not sent again (never twice).
Transient SMTP failures (4xx, connection errors) are retried with exponential backoff; permanent ones (5xx)
stop and are recorded.
"""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import structlog
from sqlalchemy import Connection, Engine

from wnb.store.db import writing
from wnb.store.sql import Record, Sql
from wnb.store.tables import OutboxRow

log = structlog.get_logger("wnb.notify")
outbox = OutboxRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__
MAX_BACKOFF = timedelta(hours=1)
SENDING_GRACE = timedelta(minutes=5)  # far longer than one send may take (the SMTP timeout)


def parse_addresses(text: str) -> dict[str, tuple[str, ...]]:
    """`role=a@x,role=b@y` (as in WNB_NOTIFY) → {role: addresses}."""
    found: dict[str, list[str]] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        role, _, address = part.partition("=")
        if not address or "@" not in address:
            raise ValueError(f"WNB_NOTIFY entry {part!r} is not role=address")
        found.setdefault(role.strip(), []).append(address.strip())
    return {role: tuple(addresses) for role, addresses in found.items()}


def enqueue(
    connection: Connection,
    addresses: Mapping[str, tuple[str, ...]],
    role: str,
    key: str,
    subject: str,
    body: str,
    at: datetime,
) -> int:
    """Queue one message per address of `role`; a key already queued is not queued again."""
    sql, queued = Sql(connection), 0
    for address in addresses.get(role, ()):
        dedupe_key = f"{key}:{address}"
        if sql.scalar("SELECT id FROM outbox WHERE dedupe_key = :key", {"key": dedupe_key}) is not None:
            continue
        sql.insert(
            outbox,
            {
                "dedupe_key": dedupe_key,
                "recipient": address,
                "subject": subject,
                "body": body,
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


def _claim(db: Engine, now: datetime) -> list[Record]:
    with writing(db) as connection:
        sql = Sql(connection)
        rows = sql.fetch_all(
            outbox,
            "SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= :now ORDER BY id LIMIT 100"
            # Replicas: rows another deliverer is claiming are skipped, never claimed twice (PostgreSQL).
            + ("" if sql.sqlite else " FOR UPDATE SKIP LOCKED"),
            {"now": now},
        )
        for row in rows:
            sql.update(outbox, row.id, {"status": "sending", "claimed_at": now})
    return rows


def mark_uncertain_after_restart(db: Engine, now: datetime | None = None) -> int:
    """Rows left `sending` by a crash may have gone out: never send them again; say so.

    On SQLite (one process) every such row is left from before the restart. On PostgreSQL other replicas may be
    sending right now, so only rows claimed longer ago than any send takes (SENDING_GRACE) are marked; each
    delivery round marks them too, so a crashed replica's rows need no restart to be reported.
    """
    with writing(db) as connection:
        sql = Sql(connection)
        stale = "" if sql.sqlite else " AND (claimed_at IS NULL OR claimed_at < :cutoff)"
        cursor = sql.execute(
            "UPDATE outbox SET status = 'uncertain', last_error = 'interrupted while sending' "
            f"WHERE status = 'sending'{stale}",
            {} if sql.sqlite else {"cutoff": (now or datetime.now(UTC)) - SENDING_GRACE},
        )
        return int(cursor.rowcount or 0)


def deliver(db: Engine, smtp: SmtpSettings, now: datetime) -> dict[str, int]:
    """Send what is due; count sent, retried and failed."""
    counts = {"sent": 0, "retried": 0, "failed": 0}
    if db.dialect.name == "postgresql":
        mark_uncertain_after_restart(db, now)  # replicas: a crashed one's rows are reported without a restart
    for row in _claim(db, now):
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = smtp.sender, row.recipient, row.subject
        message["Message-ID"] = f"<{row.dedupe_key.replace(':', '.').replace('@', '.at.')}@wnb>"
        message.set_content(row.body)
        outcome: dict[str, object]
        try:
            with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
                client.send_message(message)
            outcome = {"status": "sent", "sent_at": datetime.now(UTC), "attempts": row.attempts + 1}
            counts["sent"] += 1
        except smtplib.SMTPResponseException as error:
            outcome = _failure(row, now, error.smtp_code, f"{error.smtp_code} {error.smtp_error!r}")
        except (smtplib.SMTPException, OSError) as error:
            outcome = _failure(row, now, None, type(error).__name__)
        if outcome["status"] == "pending":
            counts["retried"] += 1
        elif outcome["status"] == "failed":
            counts["failed"] += 1
        with writing(db) as connection:
            Sql(connection).update(outbox, row.id, outcome)
    if any(counts.values()):
        log.info("outbox_delivered", **counts)
    return counts


def _failure(row: Record, now: datetime, code: int | None, error: str) -> dict[str, object]:
    attempts = row.attempts + 1
    if code is not None and 500 <= code < 600:
        return {"status": "failed", "attempts": attempts, "last_error": error}
    backoff = min(timedelta(minutes=2**attempts), MAX_BACKOFF)
    return {"status": "pending", "attempts": attempts, "last_error": error, "next_attempt_at": now + backoff}
