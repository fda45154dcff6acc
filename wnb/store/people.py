"""The people one chunk of ingestion evaluates: history, context and completed reviews, read at once.

A query per evaluation cost more than the evaluation's rules. The chunk reads every person it will
evaluate in three queries before storing anything, then keeps each history up to date as its own events are
stored (they are written only at the end of the chunk), so an evaluation sees exactly the events stored
before it, as a query at that moment would.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Connection

from wnb.core.domain import Appointment, PersonContext
from wnb.core.nhs import Attendance
from wnb.store import repo


class ChunkPeople:
    """What evaluations read of the chunk's people, kept as the database would answer inside the chunk."""

    def __init__(self, connection: Connection, nhs_numbers: Collection[str], review_task: str) -> None:
        people = set(nhs_numbers)
        self._history: dict[str, dict[tuple[str, str], Appointment]] = {
            nhs_number: {(item.source, item.appointment_id): item for item in items}  # item.key, inlined
            for nhs_number, items in repo.people_histories(connection, people).items()
        }
        self._contexts = repo.people_contexts(connection, people) if people else {}
        self._reviews = repo.people_completed_tasks(connection, people, review_task) if people else {}

    def _known(self, nhs_number: str) -> dict[tuple[str, str], Appointment]:
        found = self._history.get(nhs_number)
        if found is None:
            # Reading the database here would miss the chunk's own events, not yet written: refuse.
            raise LookupError("an evaluation asked for a person this chunk did not read")
        return found

    def history(self, nhs_number: str) -> list[Appointment]:
        """repo.person_history as of now: appointments as they stand, entered-in-error ones left out."""
        return list(self._known(nhs_number).values())

    def context(self, nhs_number: str) -> PersonContext | None:
        self._known(nhs_number)
        return self._contexts.get(nhs_number)

    def completed_reviews(self, nhs_number: str) -> list[tuple[str, datetime]]:
        """repo.completed_tasks for the review task (ingestion never completes a task)."""
        self._known(nhs_number)
        return self._reviews[nhs_number]

    def stored(self, nhs_number: str, appointment: Appointment, replaced_nhs_number: str | None) -> None:
        """An event became its appointment's current outcome (after `replaced_nhs_number`'s, if any)."""
        key = appointment.key
        for person in {nhs_number, replaced_nhs_number}:
            if person is not None and person in self._history:
                self._history[person].pop(key, None)  # superseded: out of the history (re-added last below)
        if nhs_number in self._history and appointment.attendance is not Attendance.ENTERED_IN_ERROR:
            self._history[nhs_number][key] = appointment
