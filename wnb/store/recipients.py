"""The recipient directory (issue 18 part 1): organisations by ODS code, imported whole and audited, and the
completion of a person's structured contacts from it when they are shown."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, select, update

from wnb.core.contacts import Contact, Recipient, completed
from wnb.store.audit import AuditLog
from wnb.store.tables import RecipientRow

_recipients = RecipientRow.__table__  # type: ignore[attr-defined]  # SQLModel adds __table__


def save_recipients(
    connection: Connection, recipients: Iterable[Recipient], at: datetime, actor: str
) -> dict[str, int]:
    """In the caller's writing transaction: each recipient inserted or replaced by its ODS code, one audit record
    naming the codes. The counts created and updated (a code given twice: the later row stands)."""
    latest = {recipient.ods_code: recipient for recipient in recipients}
    known = set(connection.execute(select(_recipients.c.ods_code)).scalars())
    counts = {"created": 0, "updated": 0}
    for code, recipient in sorted(latest.items()):
        values = {**recipient.model_dump(), "updated_at": at}
        if code in known:
            connection.execute(update(_recipients).where(_recipients.c.ods_code == code).values(values))
            counts["updated"] += 1
        else:
            connection.execute(_recipients.insert().values(values))
            counts["created"] += 1
    if latest:
        log = AuditLog(connection)
        log.append(at, actor, "recipients_imported", sorted(latest), counts)
        log.finish()
    return counts


def all_recipients(connection: Connection) -> list[Recipient]:
    """The whole directory, by ODS code."""
    rows = connection.execute(select(_recipients).order_by(_recipients.c.ods_code))
    return [Recipient(ods_code=row.ods_code, name=row.name, email=row.email, endpoint=row.endpoint) for row in rows]


def directory(connection: Connection, codes: Iterable[str]) -> dict[str, Recipient]:
    """The directory's entries for these ODS codes (those it has)."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = connection.execute(select(_recipients).where(_recipients.c.ods_code.in_(wanted)))
    return {
        row.ods_code: Recipient(ods_code=row.ods_code, name=row.name, email=row.email, endpoint=row.endpoint)
        for row in rows
    }


def completed_contacts(connection: Connection, contacts: Iterable[Contact]) -> list[Contact]:
    """A person's structured contacts, each one naming an ODS code completed from the directory."""
    given = list(contacts)
    entries = directory(connection, [contact.ods_code for contact in given if contact.ods_code])
    return [completed(contact, entries) for contact in given]
