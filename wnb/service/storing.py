"""Storing what ingestion read: an event stored (or kept as a stale outcome, or rejected with its reason), its
appointment's follow-up deadline tracked, its evaluation prepared.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import structlog
from sqlalchemy import Connection

from wnb import metrics
from wnb.core import limits
from wnb.core.calendar import add_working_days, london_date, london_time_on
from wnb.core.domain import Appointment, AttendanceEvent, EventState
from wnb.core.errors import InvalidEvent, StaleEvent
from wnb.core.items import CheckedItem, RawItem
from wnb.core.nhs import Attendance
from wnb.core.supersede import BOOKING_AFTER_OUTCOME, stale_because, stale_reason
from wnb.matcher.process import Outcome
from wnb.service.base import ServiceBase, _Line
from wnb.service.effects import Effects
from wnb.store import rejects, repo
from wnb.store.audit import AuditLog
from wnb.store.items import ChunkItems
from wnb.store.pending import PendingRows
from wnb.store.people import ChunkPeople
from wnb.store.sql import JsonText, Record
from wnb.store.writers import ChunkWriter

log = structlog.get_logger("wnb")


class Storing(ServiceBase):
    """The second pass of a chunk: each line stored, kept as stale or rejected, and its follow-up tracked."""

    def _apply_line(
        self,
        connection: Connection,
        audit: AuditLog,
        pending: PendingRows,
        items: ChunkItems,
        follow_ups: dict[tuple[str, str], Record],
        outcomes: Iterator[Outcome],
        line: _Line,
        origin: str,
        actor: str,
    ) -> tuple[str, InvalidEvent | None]:
        """The second pass over one line: record and apply what its first pass prepared."""
        checked, received_at = line.item, line.received_at
        if isinstance(checked.event, InvalidEvent):
            assert checked.item is not None
            return self._reject(
                connection, audit, checked.item, origin, checked.event, received_at, actor
            ), checked.event
        if line.status == "duplicate":
            return "duplicate", None
        event, appointment, current = checked.event, line.appointment, line.current
        assert appointment is not None
        effects = Effects(connection, audit, self.ruleset, received_at, actor, self.notify, ChunkWriter(items))
        if line.status == "stale":
            return "stale", self._keep_stale(connection, audit, line, origin, actor)
        if current is not None and Attendance(current.attendance).is_missed and not event.attendance.is_missed:
            reason = f"appointment {event.appointment_id} ({event.source}) changed to {event.attendance.value}"
            withdrawn = effects.withdraw(appointment.key, reason)
            audit.append(
                received_at,
                actor,
                "appointment_corrected",
                [f"E{appointment.event_pk}", event.nhs_number],
                {
                    "source": event.source,
                    "appointment_id": event.appointment_id,
                    "from": current.attendance,
                    "to": event.attendance,
                    "withdrawn": withdrawn,
                },
            )
        elif line.evaluation is None:  # entered in error, nothing raised to withdraw: every event has its record
            audit.append(
                received_at,
                actor,
                "event_not_evaluated",
                [f"E{appointment.event_pk}", event.nhs_number],
                {
                    "source": event.source,
                    "event_id": event.event_id,
                    "appointment_id": event.appointment_id,
                    "attendance": event.attendance,
                    "reason": "no rule runs on an appointment entered in error; it had no missed outcome to correct",
                },
            )
        age_known = line.facts is None or line.facts.get("age_known") is not False
        self._track_follow_up(
            pending, follow_ups, event, appointment.recorded_at, first_outcome=current is None, age_known=age_known
        )
        if line.evaluation is not None:
            metrics.count_evaluation()
            if line.facts is None:  # no rule could run: the evaluation says why
                effects.record("evaluation", [f"E{appointment.event_pk}", event.nhs_number], line.evaluation)
            else:
                fired, conditions = next(outcomes)
                self._apply_outcome(
                    effects,
                    line.facts,
                    fired,
                    conditions,
                    event.nhs_number,
                    appointment,
                    appointment.recorded_at,
                    line.evaluation,
                )
        return ("superseded" if current is not None else "accepted"), None

    def _keep_stale(self, connection: Connection, audit: AuditLog, line: _Line, origin: str, actor: str) -> StaleEvent:
        """Audit a stale event; one whose attendance differs from the stored one also goes to the data-quality
        queue (kind stale-outcome), so a disagreement between feeds is seen by a person (DOMAIN.md §6)."""
        event, appointment, current = line.item.event, line.appointment, line.current
        assert isinstance(event, AttendanceEvent) and appointment is not None and current is not None
        assert line.stale_kind is not None and line.item.raw is not None
        stored = Attendance(current.attendance)
        field = "attendance" if line.stale_kind == BOOKING_AFTER_OUTCOME else "recorded_at"
        reason = stale_reason(line.stale_kind, event.attendance, stored)
        listed = event.attendance is not stored
        if listed:
            rejects.keep_stale_outcome(
                connection,
                line.received_at,
                origin,
                line.item.line,
                event.source,
                event.event_id,
                field,
                reason,
                line.item.raw,
            )
        audit.append(
            line.received_at,
            actor,
            "event_stale",
            [f"E{appointment.event_pk}", event.nhs_number],
            {
                "source": event.source,
                "event_id": event.event_id,
                "appointment_id": event.appointment_id,
                "reason": reason,
                "stale_kind": line.stale_kind,
                "stored_event": f"E{current.id}",
                "listed_for_data_quality": listed,
            },
        )
        return StaleEvent(field, reason)

    def _reject(
        self,
        connection: Connection,
        audit: AuditLog,
        item: RawItem,
        origin: str,
        problem: InvalidEvent,
        at: datetime,
        actor: str = "engine",
    ) -> str:
        """Keep the row, its reason and its raw text in the data-quality queue; it takes part in nothing.

        The same row received again (a resent batch or file) is counted on its reject, not queued twice.
        """
        # A reader may name the source and event id of an item it could not map (HL7: MSH-4, MSH-10).
        data = item.data if isinstance(item.data, dict) else getattr(problem, "identity", {})
        source, event_id = (
            limits.printable(str(data[key]), limit) if data.get(key) is not None else None
            for key, limit in (("source", 100), ("event_id", 200))
        )
        field, reason = limits.printable(problem.field), limits.printable(problem.reason) or "rejected"
        raw, raw_encoding = limits.storable_raw(item.text)
        origin = limits.printable(origin) or ""  # a file's name may hold bytes that are not UTF-8
        kept = rejects.keep(connection, at, origin, item.line, source, event_id, field, reason, raw, raw_encoding)
        details = {"origin": origin, "line": item.line, "field": field, "reason": reason}
        if kept.received_count == 1:
            audit.append(at, actor, "event_rejected", [f"R{kept.id}"], details)
        else:
            audit.append(at, actor, "reject_repeated", [f"R{kept.id}"], {**details, "times": kept.received_count})
        return "rejected"

    def _store(
        self,
        pending: PendingRows,
        people: ChunkPeople,
        item: CheckedItem,
        event: AttendanceEvent,
        raw: JsonText,
        received_at: datetime,
        outcomes: dict[tuple[str, str], repo.CurrentOutcome],
    ) -> _Line:
        """The first pass over a new event: its row (pending), what it supersedes, and its fact document."""
        recorded_at = event.recorded_at or received_at
        key = (event.source, event.appointment_id)
        current = outcomes.get(key)
        given = event.recorded_at is not None
        stale_kind = None if current is None else stale_because(event.attendance, recorded_at, given, current.stored)
        stale = stale_kind is not None
        row = {
            "source": event.source,
            "event_id": event.event_id,
            "nhs_number": event.nhs_number,
            "date_of_birth": event.date_of_birth,
            "service": event.service,
            "appointment_id": event.appointment_id,
            "appointment_at": event.appointment_at,
            "first_appointment": event.first_appointment,
            "attendance": event.attendance.value,
            "priority": event.priority.value if event.priority else None,
            "outcome": event.outcome.value if event.outcome else None,
            "recorded_at": recorded_at,
            "recorded_at_given": given,
            "received_at": received_at,
            "state": (EventState.STALE if stale else EventState.CURRENT).value,
            "raw": raw,
        }
        if current is not None and not stale:
            pending.update(repo.events, current.id, state=EventState.SUPERSEDED.value)
        pk = pending.insert(repo.events, row)
        appointment = Appointment(
            source=event.source,
            appointment_id=event.appointment_id,
            service=event.service,
            appointment_at=event.appointment_at,
            attendance=event.attendance,
            priority=event.priority,
            outcome=event.outcome,
            recorded_at=recorded_at,
            event_pk=pk,
        )
        line = _Line(item, received_at, "stale" if stale else "stored", appointment, current, stale_kind=stale_kind)
        if stale:
            return line
        outcomes[key] = repo.CurrentOutcome(pk, recorded_at, event.attendance.value, event.nhs_number, given)
        people.stored(event.nhs_number, appointment, current.nhs_number if current else None)
        if event.attendance is not Attendance.ENTERED_IN_ERROR:
            line.evaluation, line.facts = self._prepare_evaluation(people, event, appointment)
        return line

    def _track_follow_up(
        self,
        pending: PendingRows,
        follow_ups: dict[tuple[str, str], Record],
        event: AttendanceEvent,
        recorded_at: datetime,
        first_outcome: bool,
        age_known: bool = True,
    ) -> None:
        """A missed appointment waits for its WNB-14 deadline; one no longer missed waits for nothing.

        Nor does a miss evaluated with an unknown age: WNB-14 uses the date of birth the miss was evaluated
        with, so it never judges one of unknown age (DOMAIN.md §6; WNB-15 asks for the date of birth instead).
        `follow_ups` holds the chunk's appointments' follow-ups, stored or pending, and is kept up to date.
        """
        waits = event.attendance.is_missed and age_known
        if first_outcome and not waits:
            return  # a follow-up exists only for an appointment that had an outcome before
        key = (event.source, event.appointment_id)
        existing = None if first_outcome else follow_ups.get(key)
        if not waits:
            if existing is not None and existing.status == "pending":
                pending.update(repo.follow_ups, existing.id, status="void")
                existing["status"] = "void"
            return
        follow_up = self.ruleset.settings.follow_up
        deadline = london_time_on(
            add_working_days(london_date(recorded_at), follow_up.deadline_working_days),
            self.ruleset.settings.calendar.working_day_ends,
        )
        if existing is None:
            values = {
                "source": event.source,
                "appointment_id": event.appointment_id,
                "nhs_number": event.nhs_number,
                "deadline_at": deadline,
                "status": "pending",
            }
            follow_ups[key] = Record(values, id=pending.insert(repo.follow_ups, values))
        elif existing.status != "judged":
            pending.update(repo.follow_ups, existing.id, deadline_at=deadline, status="pending")
            existing.update(deadline_at=deadline, status="pending")
