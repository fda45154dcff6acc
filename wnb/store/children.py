"""What a child's page and timeline read beyond flags and tasks: the child's stored appointment outcomes, the
appointments each flag and task came from, and people's dates of birth."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Row, and_, select

from wnb.store import repo


def appointments(connection: Connection, nhs_number: str) -> list[Row[tuple[object, ...]]]:
    """Every stored event of the child (current and stale), by appointment time then arrival."""
    events = repo.events
    query = select(events).where(events.c.nhs_number == nhs_number).order_by(events.c.appointment_at, events.c.id)
    return list(connection.execute(query).all())


@dataclass(frozen=True)
class Origin:
    """An appointment a flag or task came from: its service and time, and whether it still supports the item
    (a corrected appointment no longer does)."""

    service: str
    appointment_at: datetime
    active: bool


def origins(connection: Connection, kind: str, ids: Collection[int]) -> dict[int, list[Origin]]:
    """The appointments each flag or task (`kind`) of `ids` came from, each once, earliest first: the appointment
    of the event linked to it (DOMAIN.md §5.2, §5.3: a repeat links its event to the item already there)."""
    found: dict[int, list[Origin]] = {}
    links, events = repo.links, repo.events
    for part in repo.in_list_slices(sorted(ids)):
        query = (
            select(links.c.item_id, links.c.active, events.c.service, events.c.appointment_at)
            .join(events, events.c.id == links.c.event_pk)
            .where(and_(links.c.kind == kind, links.c.item_id.in_(part)))
            .order_by(events.c.appointment_at, links.c.id)
        )
        for row in connection.execute(query):
            origin = Origin(row.service, row.appointment_at, bool(row.active))
            if origin not in found.setdefault(row.item_id, []):
                found[row.item_id].append(origin)
    return found


def births(connection: Connection, nhs_numbers: Collection[str]) -> dict[str, date]:
    """A date of birth per person: the latest event that gave one, else the person's context."""
    found: dict[str, date] = {}
    if not nhs_numbers:
        return found
    events = repo.events
    query = (
        select(events.c.nhs_number, events.c.date_of_birth)
        .where(events.c.nhs_number.in_(sorted(nhs_numbers)), events.c.date_of_birth.is_not(None))
        .order_by(events.c.id)
    )
    for row in connection.execute(query):
        found[row.nhs_number] = row.date_of_birth
    for number in set(nhs_numbers) - found.keys():
        context = repo.person_context(connection, number)
        if context is not None and context.date_of_birth is not None:
            found[number] = context.date_of_birth
    return found
