"""The orchestrator: ingest → facts → decide → apply → audit, and the time-based sweep.

The one place where the pure core meets the database and the clock. Each evaluation and all its effects
are written in one transaction; ingestion commits a chunk of evaluations at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import structlog
from sqlalchemy import Connection, Engine

from wnb import metrics
from wnb.core import limits, policy
from wnb.core.calendar import add_working_days, london_date, london_time_on
from wnb.core.decide import decide
from wnb.core.domain import Appointment, AttendanceEvent, Decision, EventState
from wnb.core.errors import Forbidden, InvalidEvent, NotBound, StaleEvent
from wnb.core.facts import event_facts, event_triggers, follow_up_facts, sets_off_a_rule
from wnb.core.items import CheckedItem, RawItem, check, check_context, raw_item
from wnb.core.nhs import Attendance
from wnb.core.policy import Action, Principal
from wnb.core.ruleset import Ruleset
from wnb.core.supersede import BOOKING_AFTER_OUTCOME, stale_because, stale_reason
from wnb.matcher.process import Outcome, RulesBeside, rules_outcome
from wnb.service.effects import Effects, parse_ref
from wnb.store import concurrency, rejects, repo
from wnb.store.audit import AuditLog
from wnb.store.db import checkpoints_beside, writing
from wnb.store.items import ChunkItems
from wnb.store.pending import PendingRows
from wnb.store.people import ChunkPeople
from wnb.store.sql import JsonText, Record

log = structlog.get_logger("wnb")


@dataclass(slots=True)
class _Line:
    """One line of a chunk after the first pass: what the second pass records and applies, in order."""

    item: CheckedItem
    received_at: datetime
    status: str  # rejected, duplicate, stale or stored
    appointment: Appointment | None = None  # a stored or stale event's appointment, with the event's id
    current: repo.CurrentOutcome | None = None  # the appointment's outcome before this event
    stale_kind: str | None = None  # a stale event: why (wnb.core.supersede.OLDER or BOOKING_AFTER_OUTCOME)
    evaluation: dict[str, Any] | None = None  # what the evaluation is about; its whole record without facts
    facts: dict[str, Any] | None = None  # the fact document for the rules


def _is_outage(error: BaseException) -> bool:
    """The database is away (nothing was stored; try again later), as opposed to an item it cannot take."""
    return isinstance(error, concurrency.DatabaseUnavailable) or concurrency.is_connection_loss(error)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _within_binding(principal: Principal, item: RawItem) -> RawItem:
    """The item as given, or a reject naming why `principal`'s key may not write for its source."""
    if isinstance(item.data, dict) and (refusal := policy.source_refusal(principal, item.data.get("source"))):
        refused = NotBound("source", refusal)
        refused.identity = {"source": item.data.get("source"), "event_id": item.data.get("event_id")}  # type: ignore[attr-defined]
        return RawItem(item.line, item.text, refused)
    return item


def _writer(by: Principal | None, actor: str) -> Principal:
    """Who writes: `by`, or wnb itself under `actor`; refused (Forbidden) unless the policy lets them ingest."""
    principal = by or policy.system(actor)
    policy.check(principal, Action.EVENTS_INGEST)
    if principal.kind == policy.Kind.CLIENT and not principal.is_admin and principal.sources is None:
        raise Forbidden(policy.UNBOUND_KEY.format(name=principal.name))
    return principal


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
        items: Iterable[RawItem | CheckedItem],
        origin: str,
        actor: str = "engine",
        chunk: int = 1000,
        progress: Callable[[int], None] | None = None,
        by: Principal | None = None,
    ) -> Counter[str]:
        """Store and evaluate every item; count accepted, superseded, stale, duplicate and rejected.

        Items may come checked already (wnb/ingest/ahead.py validates a file's lines in another process).
        `by` (default: wnb itself as `actor`) must be allowed to ingest; a key's items for a source it is not
        bound to are rejected.
        """
        principal = _writer(by, actor)
        actor = principal.actor
        counts: Counter[str] = Counter()
        iterator = iter(items)
        if principal.kind == policy.Kind.CLIENT:
            iterator = (_within_binding(principal, i) if isinstance(i, RawItem) else i for i in iterator)
        # From the second chunk on (a long ingest), the rules run in a second process (wnb/matcher/process.py).
        self.rules_beside = RulesBeside(self.ruleset)
        try:
            with checkpoints_beside(self.db):  # SQLite: the WAL is copied to the database file by another thread
                first = True
                while True:
                    batch = list(islice(iterator, chunk))
                    if batch:
                        rules = None if first else self.rules_beside
                        for status, _ in self._ingest_chunk_or_each(batch, origin, actor, rules):
                            counts[status] += 1
                        first = False
                        if progress:
                            progress(len(batch))
                    if len(batch) < chunk:
                        break
        finally:
            self.rules_beside.close()
        log.info("feed_ingested", origin=origin, **counts)
        metrics.count_ingested(origin, counts)
        return counts

    def _ingest_chunk_or_each(
        self, batch: list[RawItem | CheckedItem], origin: str, actor: str, rules: RulesBeside | None
    ) -> list[tuple[str, InvalidEvent | None]]:
        """A chunk in one transaction; should that fail, each item in its own, so one item never stops a file."""
        try:
            return self._ingest_chunk(batch, origin, actor, rules)
        except Exception as error:
            if _is_outage(error):
                raise
            log.warning("chunk_retried_item_by_item", origin=origin, items=len(batch), error=type(error).__name__)
            return [self.ingest_one_or_reject(raw_item(item), origin, actor) for item in batch]

    def ingest_one_or_reject(
        self, item: RawItem, origin: str, actor: str = "engine", by: Principal | None = None
    ) -> tuple[str, InvalidEvent | None]:
        """One item in its own transaction; if it cannot be stored, its reject saying so (unless the database
        is away: then nothing was stored and the caller is told, to send it again; or `by` may not ingest)."""
        try:
            return self.ingest_one_explained(item, origin, actor, by)
        except Forbidden:
            raise
        except Exception as error:
            if _is_outage(error):
                raise
            log.error("item_not_stored", origin=origin, line=item.line, error=type(error).__name__)
            problem = InvalidEvent("event", f"wnb could not store this item ({type(error).__name__}); it is kept here")
            return self.ingest_one_explained(RawItem(item.line, item.text, problem), origin, actor, by)

    @concurrency.retried("ingest")  # replicas: run again from the start when it lost a race
    def _ingest_chunk(
        self, batch: list[RawItem | CheckedItem], origin: str, actor: str, rules: RulesBeside | None = None
    ) -> list[tuple[str, InvalidEvent | None]]:
        with self._transaction() as (connection, audit):
            return self._ingest_batch(connection, audit, batch, origin, actor, rules)

    def ingest_one(self, item: RawItem, origin: str, actor: str = "engine", by: Principal | None = None) -> str:
        return self.ingest_one_explained(item, origin, actor, by)[0]

    @concurrency.retried("ingest")  # replicas: run again from the start when it lost a race
    def ingest_one_explained(
        self, item: RawItem, origin: str, actor: str = "engine", by: Principal | None = None
    ) -> tuple[str, InvalidEvent | None]:
        """One item in its own transaction: its status and, when rejected, why (NotBound: the key's binding).

        `by` (default: wnb itself as `actor`) must be allowed to ingest (Forbidden otherwise).
        """
        principal = _writer(by, actor)
        item = _within_binding(principal, item)
        with self._transaction() as (connection, audit):
            status, problem = self._ingest_batch(connection, audit, [item], origin, principal.actor)[0]
            self._audit_admin_writes(audit, principal, [item], origin)
        metrics.count_ingested(origin, Counter([status]))
        return status, problem

    def ingest_many_explained(
        self, items: list[RawItem], origin: str, actor: str = "engine", by: Principal | None = None
    ) -> list[tuple[str, InvalidEvent | None]]:
        """Items of one API batch in one transaction: each one's status and, when rejected, why.

        Should the shared transaction fail, each item is tried again in its own: every item is answered, one that
        cannot be stored as its reject (`ingest_one_or_reject`); only the database being away raises.
        """
        principal = _writer(by, actor)
        items = [_within_binding(principal, item) for item in items]
        try:
            with self._transaction() as (connection, audit):
                results = self._ingest_batch(connection, audit, items, origin, principal.actor)
                self._audit_admin_writes(audit, principal, items, origin)
        except Exception as error:
            if _is_outage(error):
                raise
            log.warning("batch_retried_item_by_item", origin=origin, items=len(items), error=type(error).__name__)
            return [self.ingest_one_or_reject(item, origin, actor, by) for item in items]
        metrics.count_ingested(origin, Counter(status for status, _ in results))
        return results

    def _audit_admin_writes(self, audit: AuditLog, principal: Principal, items: list[RawItem], origin: str) -> None:
        """An administrator (key or person) writing for sources is on the record: which sources, how many items."""
        if principal.kind == policy.Kind.SYSTEM or not principal.is_admin:
            return
        sources = Counter(str(i.data.get("source")) for i in items if isinstance(i.data, dict) and i.data.get("source"))
        if sources:
            audit.append(
                self.clock(),
                principal.actor,
                "admin_posted_for_source",
                sorted(sources),
                {"origin": origin, "items": dict(sorted(sources.items()))},
            )

    def _ingest_batch(
        self,
        connection: Connection,
        audit: AuditLog,
        batch: Sequence[RawItem | CheckedItem],
        origin: str,
        actor: str,
        rules: RulesBeside | None = None,
    ) -> list[tuple[str, InvalidEvent | None]]:
        """Each item's status (and reason when rejected), in order; stored events looked up once per batch.

        Two passes. The first stores each event (its id, what it supersedes, the chunk's view of its person)
        and works out each evaluation's fact document: facts depend only on the events stored before, never
        on what earlier evaluations raised. The second, in the same order, records and applies everything
        else: rejects, stale events, corrections, follow-ups, and each evaluation's rules and effects. The
        rules run here, or in `rules`' process while this one applies the outcomes as they come back.
        """
        checked = [item if isinstance(item, CheckedItem) else check(item) for item in batch]
        events = [item.event for item in checked if isinstance(item.event, AttendanceEvent)]
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
        lines: list[_Line] = []
        for item in checked:
            received_at = self.clock()
            event = item.event
            if isinstance(event, InvalidEvent):
                lines.append(_Line(item, received_at, "rejected"))
            elif (event.source, event.event_id) in seen:
                lines.append(_Line(item, received_at, "duplicate"))
            else:
                assert item.raw is not None
                seen.add((event.source, event.event_id))
                lines.append(self._store(pending, people, item, event, JsonText(item.raw), received_at, current))
        documents = [line.facts for line in lines if line.facts is not None]
        outcomes = rules.outcomes(documents) if rules is not None else map(self.run_rules, documents)
        statuses = [
            self._apply_line(connection, audit, pending, items, follow_ups, outcomes, line, origin, actor)
            for line in lines
        ]
        pending.flush(hold=True)  # before the chain's lock: all but the links, which wait for their numbers
        audit.after_chain(pending.flush_last)
        return statuses

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
        effects = Effects(connection, audit, self.ruleset, received_at, actor, self.notify, items)
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

    def run_rules(self, facts: dict[str, Any]) -> Outcome:
        """The rules that fire, by the matcher, checked against the interpreter; and their explanations."""
        return rules_outcome(self.ruleset, facts)

    def _prepare_evaluation(
        self, people: ChunkPeople, event: AttendanceEvent, appointment: Appointment
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """What an evaluation is about, and its fact document; without one, the whole evaluation record instead
        (no rule can run)."""
        basis = {
            "event": f"E{appointment.event_pk}",
            "source": event.source,
            "event_id": event.event_id,
            "appointment_id": event.appointment_id,
            "service": event.service,
        }
        triggers = event_triggers(appointment)
        if not any(triggers.values()):
            # Every rule needs a trigger (the rule schema requires one), so none can fire: no history needed.
            return {
                **basis,
                "facts": triggers,
                "fired": [],
                "outcome": f"{event.attendance.value} triggers no rule",
            }, None
        context = people.context(event.nhs_number)
        # With neither, the age is unknown: the age facts are left out, so only rules on `age_known` (WNB-15)
        # and those without an age condition (WNB-01 for a plan) can fire.
        born = event.date_of_birth or (context.date_of_birth if context else None)
        facts = event_facts(
            self.ruleset,
            appointment,
            people.history(event.nhs_number),
            born,
            context,
            people.completed_reviews(event.nhs_number),
            bool(event.first_appointment),
        )
        return basis, facts

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
        return self._apply_outcome(effects, facts, fired, conditions, nhs_number, appointment, due_from, basis)

    def _apply_outcome(
        self,
        effects: Effects,
        facts: dict[str, Any],
        fired: list[str],
        conditions: list[dict[str, Any]],
        nhs_number: str,
        appointment: Appointment,
        due_from: datetime,
        basis: dict[str, Any],
    ) -> Decision:
        """Decide on the rules that fired, record the evaluation, and apply the decision."""
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
        policy.check(policy.system(actor), Action.SWEEP)
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
        self, ref: str, action: str, by: Principal, note: str | None = None, at: datetime | None = None
    ) -> Record:
        """Acknowledge, complete or cancel a task as `by`: refused (Forbidden) unless the task is their role's
        now or was first, or they are the safeguarding lead or an administrator (wnb.core.policy)."""
        policy.check(by, policy.TASK_ACTIONS.get(action, Action.TASK_ACKNOWLEDGE))
        with self._transaction() as (connection, audit):
            concurrency.lock_owner(connection, "task", parse_ref(ref, "T"))  # replicas: not mid-evaluation
            effects = Effects(connection, audit, self.ruleset, at or self.clock(), by.actor)
            effects.via = by.via_detail
            return effects.act_on_task(parse_ref(ref, "T"), action, note, by)

    @concurrency.retried("flag action")  # replicas: run again from the start when it lost a race
    def resolve_flag(self, ref: str, by: Principal, reason: str, at: datetime | None = None) -> Record:
        """Resolve an active flag as `by`: refused (Forbidden) unless the policy lets their role resolve flags."""
        policy.check(by, Action.FLAG_RESOLVE)
        with self._transaction() as (connection, audit):
            concurrency.lock_owner(connection, "flag", parse_ref(ref, "F"))  # replicas: not mid-evaluation
            effects = Effects(connection, audit, self.ruleset, at or self.clock(), by.actor)
            effects.via = by.via_detail
            return effects.resolve_flag(parse_ref(ref, "F"), reason)

    def import_context(
        self, items: Iterable[RawItem], origin: str, actor: str = "engine", by: Principal | None = None
    ) -> Counter[str]:
        """Insert or replace person context records; a bad record goes to the data-quality queue.

        `by` (default: wnb itself as `actor`) must be allowed to write context; a client key needs its own
        context binding (never implied by an event source). A key without it is refused (Forbidden) and
        what it sent is kept in the data-quality queue with the reason.
        """
        principal = by or policy.system(actor)
        policy.check(principal, Action.CONTEXT_WRITE)
        refusal = policy.context_refusal(principal)
        if refusal and principal.sources is None:
            raise Forbidden(refusal)  # a key never bound: nothing kept, as for events
        counts = self._import_contexts(list(items), origin, principal.actor, refusal)  # a list: retries read it again
        if refusal:
            raise Forbidden(refusal)
        return counts

    @concurrency.retried("context import")  # replicas: run again from the start when it lost a race
    def _import_contexts(
        self, items: list[RawItem], origin: str, actor: str, refusal: str | None = None
    ) -> Counter[str]:
        counts: Counter[str] = Counter()
        with self._transaction() as (connection, audit):
            for item in items:
                at = self.clock()
                checked = check_context(item) if not refusal else NotBound("context", refusal)
                if isinstance(checked, InvalidEvent):
                    counts[self._reject(connection, audit, item, origin, checked, at, actor)] += 1
                    continue
                context = checked
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
