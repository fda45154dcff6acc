"""The data-quality queue's writes and reads beyond the listing: marking a rejected row handled (audited), and
who handled which; and joined-up data quality (issue 18 part 5): how many events have the person's safeguarding
context (a CP-IS-style match rate), the people with events but none, context not refreshed for a while, and the
free-text contacts that still need structure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, func, select, update

from wnb.core.contacts import free_text_contacts
from wnb.core.domain import EventState, PersonContext
from wnb.core.errors import InvalidAction, NotFound
from wnb.store import repo
from wnb.store.audit import AuditLog

LISTED = 200  # the people a page lists at most under each heading; the counts are whole


def mark_handled(connection: Connection, reject_id: int, actor: str, note: str, at: datetime) -> None:
    """In the caller's writing transaction: rejected row `reject_id` handled by `actor`, with its audit record."""
    rejects = repo.rejects
    row = connection.execute(select(rejects).where(rejects.c.id == reject_id)).first()
    if row is None:
        raise NotFound(f"no rejected row R{reject_id}")
    if row.handled_at is not None:
        raise InvalidAction(f"rejected row R{reject_id} was handled already by {row.handled_by}")
    connection.execute(update(rejects).where(rejects.c.id == reject_id).values(handled_at=at, handled_by=actor))
    log = AuditLog(connection)
    log.append(at, actor, "reject_handled", [f"R{reject_id}"], {"note": note or None})
    log.finish()


def handled(connection: Connection) -> dict[int, tuple[str, datetime]]:
    """Who handled each handled rejected row, and when, by row id."""
    rejects = repo.rejects
    query = select(rejects.c.id, rejects.c.handled_by, rejects.c.handled_at).where(rejects.c.handled_at.is_not(None))
    return {row.id: (row.handled_by, row.handled_at) for row in connection.execute(query)}


@dataclass(frozen=True, slots=True)
class ContextCoverage:
    """How far the events stored are joined to safeguarding context, at `now`.

    `events` counts the events that were judged (stale ones never were); `ratio` is None when there are none.
    """

    events: int
    events_with_context: int
    people_without_context: int
    without_context: tuple[str, ...]  # NHS numbers, at most LISTED of them
    stale_days: int
    stale_contexts: int
    stale: tuple[tuple[str, datetime], ...]  # (NHS number, last refreshed), oldest first, at most LISTED

    @property
    def ratio(self) -> float | None:
        return self.events_with_context / self.events if self.events else None


def context_coverage(connection: Connection, now: datetime, stale_days: int) -> ContextCoverage:
    """The match rate of judged events to context, the people with events but no context, and the contexts not
    refreshed within `stale_days` days of `now`."""
    events, contexts = repo.events, repo.contexts
    judged = events.c.state != EventState.STALE.value
    joined = events.outerjoin(contexts, contexts.c.nhs_number == events.c.nhs_number)
    total, matched = connection.execute(
        select(func.count(), func.count(contexts.c.nhs_number)).select_from(joined).where(judged)
    ).one()
    unmatched = (
        select(events.c.nhs_number)
        .select_from(joined)
        .where(and_(judged, contexts.c.nhs_number.is_(None)))
        .distinct()
        .subquery()
    )
    people = connection.execute(select(func.count()).select_from(unmatched)).scalar_one()
    listed = connection.execute(select(unmatched.c.nhs_number).order_by(unmatched.c.nhs_number).limit(LISTED))
    cutoff = now - timedelta(days=stale_days)
    old = contexts.c.updated_at < cutoff
    stale_count = connection.execute(select(func.count()).select_from(contexts).where(old)).scalar_one()
    stale = connection.execute(
        select(contexts.c.nhs_number, contexts.c.updated_at)
        .where(old)
        .order_by(contexts.c.updated_at, contexts.c.nhs_number)
        .limit(LISTED)
    )
    return ContextCoverage(
        events=int(total),
        events_with_context=int(matched),
        people_without_context=int(people),
        without_context=tuple(listed.scalars()),
        stale_days=stale_days,
        stale_contexts=int(stale_count),
        stale=tuple((row.nhs_number, row.updated_at) for row in stale),
    )


@dataclass(frozen=True, slots=True)
class ContactNeedingStructure:
    """A free-text contact of one person, as it came, with the role its key names (if any)."""

    nhs_number: str
    key: str
    text: str
    role: str | None


def contacts_needing_structure(connection: Connection) -> list[ContactNeedingStructure]:
    """Every free-text contact no structured contact of its role replaces, by NHS number then key."""
    found = []
    rows = connection.execute(select(repo.contexts.c.nhs_number, repo.contexts.c.document).order_by("nhs_number"))
    for row in rows:
        if not row.document.get("contacts"):
            continue  # most records: no free text, nothing to parse
        context = PersonContext.model_validate(row.document)
        for contact in free_text_contacts(context.contacts, context.structured_contacts):
            role = contact.role.value if contact.role else None
            found.append(ContactNeedingStructure(row.nhs_number, contact.key, contact.text, role))
    return found
