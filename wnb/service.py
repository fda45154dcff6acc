"""The orchestrator: ingest → facts → decide → apply → audit, and the time-based sweep.

The one place where the pure core meets the database and the clock. Each evaluation and all its effects
are written in one transaction; ingestion commits a chunk of evaluations at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import structlog
from sqlalchemy import Connection, Engine

from wnb import engine as matcher
from wnb import metrics
from wnb.audit import AuditLog
from wnb.calendar import add_working_days, london_date, london_time_on
from wnb.decide import decide
from wnb.domain import Appointment, AttendanceEvent, Decision, EventState, PersonContext
from wnb.effects import Effects, parse_ref
from wnb.errors import EngineError, InvalidEvent
from wnb.facts import event_facts, event_triggers, follow_up_facts, sets_off_a_rule
from wnb.interpreter import explain, fired_by_interpreter
from wnb.nhs import Attendance
from wnb.ruleset import Ruleset
from wnb.store import concurrency, rejects, repo
from wnb.store.db import writing
from wnb.store.items import ChunkItems
from wnb.store.pending import PendingRows
from wnb.store.people import ChunkPeople
from wnb.store.sql import Record

log = structlog.get_logger("wnb")


@dataclass(frozen=True)
class RawItem:
    """One row or message as read: where it was, its text, and its fields or why they could not be read."""

    line: int | None
    text: str
    data: dict[str, Any] | InvalidEvent


def utc_now() -> datetime:
    return datetime.now(UTC)


class Service:
    """wnb's operations over one database and one ruleset."""

    def __init__(
        self,
        db: Engine,
        ruleset: Ruleset,
        clock: Callable[[], datetime] = utc_now,
        notify: Mapping[str, tuple[str, ...]] | None = None,
    ):
        self.notify = notify or {}  # role → e-mail addresses for red flags and escalations
        self.db = db
        self.ruleset = ruleset
        self.clock = clock

    @contextmanager
    def _transaction(self) -> Iterator[tuple[Connection, AuditLog]]:
        with writing(self.db) as connection:
            audit = AuditLog(connection)
            yield connection, audit
            audit.finish()

    # ---- ingestion ----

    def ingest(
        self,
        items: Iterable[RawItem],
        origin: str,
        actor: str = "engine",
        chunk: int = 1000,
        progress: Callable[[int], None] | None = None,
    ) -> Counter[str]:
        """Store and evaluate every item; count accepted, superseded, stale, duplicate and rejected."""
        counts: Counter[str] = Counter()
        iterator = iter(items)
        while True:
            batch = list(islice(iterator, chunk))
            if batch:
                for status, _ in self._ingest_chunk(batch, origin, actor):
                    counts[status] += 1
                if progress:
                    progress(len(batch))
            if len(batch) < chunk:
                log.info("feed_ingested", origin=origin, **counts)
                metrics.count_ingested(origin, counts)
                return counts

    @concurrency.retried("ingest")  # replicas: run again from the start when it lost a race
    def _ingest_chunk(self, batch: list[RawItem], origin: str, actor: str) -> list[tuple[str, InvalidEvent | None]]:
        with self._transaction() as (connection, audit):
            return self._ingest_batch(connection, audit, batch, origin, actor)

    def ingest_one(self, item: RawItem, origin: str, actor: str = "engine") -> str:
        return self.ingest_one_explained(item, origin, actor)[0]

    @concurrency.retried("ingest")  # replicas: run again from the start when it lost a race
    def ingest_one_explained(
        self, item: RawItem, origin: str, actor: str = "engine"
    ) -> tuple[str, InvalidEvent | None]:
        """One item in its own transaction: its status and, when rejected, why."""
        with self._transaction() as (connection, audit):
            status, problem = self._ingest_batch(connection, audit, [item], origin, actor)[0]
        metrics.count_ingested(origin, Counter([status]))
        return status, problem

    def ingest_many_explained(
        self, items: list[RawItem], origin: str, actor: str = "engine"
    ) -> list[tuple[str, InvalidEvent | None]]:
        """Items of one API batch in one transaction: each one's status and, when rejected, why.

        Should the shared transaction fail, each item is tried again in its own, as an API batch was before:
        the items before one that cannot be applied are kept, and that item raises its own error.
        """
        try:
            with self._transaction() as (connection, audit):
                results = self._ingest_batch(connection, audit, items, origin, actor)
        except Exception as error:
            log.warning("batch_retried_item_by_item", origin=origin, items=len(items), error=type(error).__name__)
            return [self.ingest_one_explained(item, origin, actor) for item in items]
        metrics.count_ingested(origin, Counter(status for status, _ in results))
        return results

    def _ingest_batch(
        self, connection: Connection, audit: AuditLog, batch: list[RawItem], origin: str, actor: str
    ) -> list[tuple[str, InvalidEvent | None]]:
        """Each item's status (and reason when rejected), in order; stored events looked up once per batch."""
        parsed: list[AttendanceEvent | InvalidEvent] = []
        for item in batch:
            if isinstance(item.data, InvalidEvent):
                parsed.append(item.data)
                continue
            try:
                parsed.append(AttendanceEvent.parse(item.data))
            except InvalidEvent as problem:
                parsed.append(problem)
        events = [event for event in parsed if isinstance(event, AttendanceEvent)]
        # Replicas: nobody else evaluates these people until this transaction ends (PostgreSQL only).
        concurrency.lock_people(connection, {event.nhs_number for event in events})
        seen = repo.existing_event_keys(connection, {(e.source, e.event_id) for e in events})
        appointments = {(e.source, e.appointment_id) for e in events}
        current = repo.current_outcomes(connection, appointments)
        follow_ups = repo.follow_ups_of(connection, appointments)  # kept up to date by _track_follow_up
        # Everyone an event of this chunk may evaluate (its outcome sets off a rule trigger), read at once;
        # the chunk's events, flags, tasks and links are written together at its end.
        evaluated = {e.nhs_number for e in events if sets_off_a_rule(e.attendance, e.outcome)}
        people = ChunkPeople(connection, evaluated, self.ruleset.settings.discharge_review.review_task)
        pending = PendingRows(connection)
        items = ChunkItems(connection, pending, evaluated)
        statuses: list[tuple[str, InvalidEvent | None]] = []
        for item, event in zip(batch, parsed, strict=True):
            received_at = self.clock()
            if isinstance(event, InvalidEvent):
                statuses.append((self._reject(connection, audit, item, origin, event, received_at, actor), event))
            elif (event.source, event.event_id) in seen:
                statuses.append(("duplicate", None))
            else:
                assert isinstance(item.data, dict)
                seen.add((event.source, event.event_id))
                status = self._store_and_evaluate(
                    connection, audit, pending, people, items, event, item.data, received_at, actor, current, follow_ups
                )
                statuses.append((status, None))
        pending.flush(hold=True)  # before the chain's lock: all but the links, which wait for their numbers
        audit.after_chain(pending.flush_last)
        return statuses

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
        kept = rejects.keep(
            connection,
            at,
            origin,
            item.line,
            str(data.get("source"))[:100] if data.get("source") is not None else None,
            str(data.get("event_id"))[:200] if data.get("event_id") is not None else None,
            problem.field,
            problem.reason,
            item.text,
        )
        details = {"origin": origin, "line": item.line, "field": problem.field, "reason": problem.reason}
        if kept.received_count == 1:
            audit.append(at, actor, "event_rejected", [f"R{kept.id}"], details)
        else:
            audit.append(at, actor, "reject_repeated", [f"R{kept.id}"], {**details, "times": kept.received_count})
        return "rejected"

    def _store_and_evaluate(
        self,
        connection: Connection,
        audit: AuditLog,
        pending: PendingRows,
        people: ChunkPeople,
        items: ChunkItems,
        event: AttendanceEvent,
        raw: dict[str, Any],
        received_at: datetime,
        actor: str,
        outcomes: dict[tuple[str, str], repo.CurrentOutcome],
        follow_ups: dict[tuple[str, str], Record],
    ) -> str:
        recorded_at = event.recorded_at or received_at
        key = (event.source, event.appointment_id)
        current = outcomes.get(key)
        stale = current is not None and recorded_at <= current.recorded_at
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
            "recorded_at_given": event.recorded_at is not None,
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
        if not stale:
            outcomes[key] = repo.CurrentOutcome(pk, recorded_at, event.attendance.value, event.nhs_number)
            people.stored(event.nhs_number, appointment, current.nhs_number if current else None)
        effects = Effects(connection, audit, self.ruleset, received_at, actor, self.notify, items)
        if stale:
            assert current is not None
            audit.append(
                received_at,
                actor,
                "event_stale",
                [f"E{pk}", event.nhs_number],
                {
                    "source": event.source,
                    "event_id": event.event_id,
                    "appointment_id": event.appointment_id,
                    "reason": f"recorded_at is not later than that of the current outcome (event E{current.id})",
                },
            )
            return "stale"
        if current is not None and Attendance(current.attendance).is_missed and not event.attendance.is_missed:
            reason = f"appointment {event.appointment_id} ({event.source}) changed to {event.attendance.value}"
            withdrawn = effects.withdraw(key, reason)
            audit.append(
                received_at,
                actor,
                "appointment_corrected",
                [f"E{pk}", event.nhs_number],
                {
                    "source": event.source,
                    "appointment_id": event.appointment_id,
                    "from": current.attendance,
                    "to": event.attendance,
                    "withdrawn": withdrawn,
                },
            )
        self._track_follow_up(pending, follow_ups, event, recorded_at, first_outcome=current is None)
        if event.attendance is not Attendance.ENTERED_IN_ERROR:
            self._evaluate(people, effects, event, appointment)
        return "superseded" if current is not None else "accepted"

    def _track_follow_up(
        self,
        pending: PendingRows,
        follow_ups: dict[tuple[str, str], Record],
        event: AttendanceEvent,
        recorded_at: datetime,
        first_outcome: bool,
    ) -> None:
        """A missed appointment waits for its WNB-14 deadline; one no longer missed waits for nothing.

        `follow_ups` holds the chunk's appointments' follow-ups, stored or pending, and is kept up to date.
        """
        if first_outcome and not event.attendance.is_missed:
            return  # a follow-up exists only for an appointment that had an outcome before
        key = (event.source, event.appointment_id)
        existing = None if first_outcome else follow_ups.get(key)
        if not event.attendance.is_missed:
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

    def run_rules(self, facts: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
        """The rules that fire, by the matcher, checked against the interpreter; and their explanations."""
        fired = matcher.evaluate(self.ruleset, facts)
        by_interpreter = fired_by_interpreter(self.ruleset, facts)
        if fired != by_interpreter:
            raise EngineError(
                f"the rule matcher fired {fired} but the interpreter {by_interpreter}; evaluation refused"
            )
        return fired, [item.as_dict() for item in explain(self.ruleset, facts, only=fired)]

    def _evaluate(
        self, people: ChunkPeople, effects: Effects, event: AttendanceEvent, appointment: Appointment
    ) -> None:
        subject = [f"E{appointment.event_pk}", event.nhs_number]
        basis = {
            "event": f"E{appointment.event_pk}",
            "source": event.source,
            "event_id": event.event_id,
            "appointment_id": event.appointment_id,
            "service": event.service,
        }
        metrics.count_evaluation()
        triggers = event_triggers(appointment)
        if not any(triggers.values()):
            # Every rule needs a trigger (the rule schema requires one), so none can fire: no history needed.
            effects.record(
                "evaluation",
                subject,
                {
                    **basis,
                    "facts": triggers,
                    "fired": [],
                    "outcome": f"{event.attendance.value} triggers no rule",
                },
            )
            return
        context = people.context(event.nhs_number)
        born = event.date_of_birth or (context.date_of_birth if context else None)
        if born is None:
            effects.record(
                "evaluation",
                subject,
                {
                    **basis,
                    "fired": [],
                    "outcome": "no date of birth in the event or the person's context: no rule ran",
                },
            )
            return
        facts = event_facts(
            self.ruleset,
            appointment,
            people.history(event.nhs_number),
            born,
            context,
            people.completed_reviews(event.nhs_number),
            bool(event.first_appointment),
        )
        self._decide_and_apply(effects, facts, event.nhs_number, appointment, appointment.recorded_at, basis)

    def _decide_and_apply(
        self,
        effects: Effects,
        facts: dict[str, Any],
        nhs_number: str,
        appointment: Appointment,
        due_from: datetime,
        basis: dict[str, Any],
    ) -> Decision:
        fired, conditions = self.run_rules(facts)
        decision = decide(self.ruleset, fired, appointment.service, due_from)
        evaluation = effects.record(
            "evaluation",
            [f"E{appointment.event_pk}", nhs_number],
            {
                **basis,
                "facts": facts,
                "fired": fired,
                "conditions": conditions,
                "outcome": decision.asked_for(),
            },
        )
        effects.apply(decision, nhs_number, appointment.key, appointment.event_pk, evaluation)
        return decision

    # ---- time-based: WNB-14 and escalation ----

    @concurrency.retried("sweep")  # replicas: run again from the start when it lost a race
    def sweep(self, now: datetime | None = None, actor: str = "scheduler") -> Counter[str]:
        """Judge every follow-up deadline passed, then escalate every overdue task, as of `now`."""
        now = now or self.clock()
        counts: Counter[str] = Counter()
        with metrics.sweep_timer(), self._transaction() as (connection, audit):
            # Replicas: one sweep at a time, and no evaluation under way while it judges and escalates.
            if not concurrency.try_sweep_lock(connection):
                return Counter(skipped_another_replica_sweeping=1)
            concurrency.lock_everyone(connection)
            effects = Effects(connection, audit, self.ruleset, now, actor, self.notify)
            for follow_up in repo.pending_follow_ups(connection, now):
                counts[self._judge_follow_up(connection, effects, follow_up, now)] += 1
            counts["escalated"] = len(effects.escalate_due(now))
        log.info("sweep_ran", now=now.isoformat(), **counts)
        return counts

    def _judge_follow_up(self, connection: Connection, effects: Effects, follow_up: Record, now: datetime) -> str:
        current = repo.current_event(connection, follow_up.source, follow_up.appointment_id)
        status = "void"
        if current is not None and Attendance(current.attendance).is_missed:
            status = "judged"
            context = repo.person_context(connection, current.nhs_number)
            born = current.date_of_birth or (context.date_of_birth if context else None)
            missed = repo.appointment_of(current)
            basis = {
                "event": f"E{current.id}",
                "source": current.source,
                "event_id": current.event_id,
                "appointment_id": current.appointment_id,
                "service": current.service,
                "follow_up_deadline": follow_up.deadline_at,
            }
            if born is None:
                effects.record(
                    "evaluation",
                    [f"E{current.id}", current.nhs_number],
                    {**basis, "fired": [], "outcome": "no date of birth: no rule ran"},
                )
            else:
                facts = follow_up_facts(
                    self.ruleset, missed, repo.person_history(connection, current.nhs_number), born, context
                )
                self._decide_and_apply(effects, facts, current.nhs_number, missed, follow_up.deadline_at, basis)
        repo.update_row(connection, repo.follow_ups, follow_up.id, status=status, judged_at=now)
        return "follow_ups_judged" if status == "judged" else "follow_ups_void"

    # ---- people ----

    @concurrency.retried("task action")  # replicas: run again from the start when it lost a race
    def act_on_task(
        self, ref: str, action: str, by: str, note: str | None = None, at: datetime | None = None
    ) -> Record:
        with self._transaction() as (connection, audit):
            concurrency.lock_owner(connection, "task", parse_ref(ref, "T"))  # replicas: not mid-evaluation
            effects = Effects(connection, audit, self.ruleset, at or self.clock(), f"user:{by}")
            return effects.act_on_task(parse_ref(ref, "T"), action, note)

    @concurrency.retried("flag action")  # replicas: run again from the start when it lost a race
    def resolve_flag(self, ref: str, by: str, reason: str, at: datetime | None = None) -> Record:
        with self._transaction() as (connection, audit):
            concurrency.lock_owner(connection, "flag", parse_ref(ref, "F"))  # replicas: not mid-evaluation
            effects = Effects(connection, audit, self.ruleset, at or self.clock(), f"user:{by}")
            return effects.resolve_flag(parse_ref(ref, "F"), reason)

    def import_context(self, items: Iterable[RawItem], origin: str, actor: str = "engine") -> Counter[str]:
        """Insert or replace person context records; a bad record goes to the data-quality queue."""
        return self._import_contexts(list(items), origin, actor)  # a list: a retried import reads it again

    @concurrency.retried("context import")  # replicas: run again from the start when it lost a race
    def _import_contexts(self, items: list[RawItem], origin: str, actor: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        with self._transaction() as (connection, audit):
            for item in items:
                at = self.clock()
                try:
                    if isinstance(item.data, InvalidEvent):
                        raise item.data
                    context = PersonContext.parse(item.data)
                except InvalidEvent as problem:
                    counts[self._reject(connection, audit, item, origin, problem, at, actor)] += 1
                    continue
                new = repo.save_context(connection, context, at)
                audit.append(
                    at,
                    actor,
                    "context_imported",
                    [context.nhs_number],
                    {
                        "origin": origin,
                        "line": item.line,
                        "new": new,
                        "statuses": [s.kind for s in context.statuses],
                    },
                )
                counts["created" if new else "updated"] += 1
        return counts
