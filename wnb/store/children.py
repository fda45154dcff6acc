"""What a child's page and timeline read beyond flags and tasks: the child's stored appointment outcomes, and
people's dates of birth."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from sqlalchemy import Connection, Row, select

from wnb.store import repo


def appointments(connection: Connection, nhs_number: str) -> list[Row[tuple[object, ...]]]:
    """Every stored event of the child (current and stale), by appointment time then arrival."""
    events = repo.events
    query = select(events).where(events.c.nhs_number == nhs_number).order_by(events.c.appointment_at, events.c.id)
    return list(connection.execute(query).all())


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
