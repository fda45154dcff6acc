"""What every part of the service shares: its database, ruleset and clock, the writing transaction, and one
evaluation — the facts run through the rules, decided, and applied with its audit record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Connection, Engine

from wnb.core import policy
from wnb.core.decide import decide
from wnb.core.domain import Appointment, AttendanceEvent, Decision
from wnb.core.errors import Forbidden, NotBound
from wnb.core.facts import event_facts, event_triggers
from wnb.core.items import CheckedItem, RawItem
from wnb.core.policy import Action, Principal
from wnb.core.ruleset import Ruleset
from wnb.core.sharing import SharingConfig
from wnb.matcher.process import Outcome, rules_outcome
from wnb.service.effects import Effects
from wnb.store import concurrency, repo
from wnb.store.audit import AuditLog
from wnb.store.db import writing
from wnb.store.people import ChunkPeople

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


class ServiceBase:
    """A service over one database and one ruleset: its transaction, and one evaluation decided and applied."""

    def __init__(
        self,
        db: Engine,
        ruleset: Ruleset,
        clock: Callable[[], datetime] = utc_now,
        notify: Mapping[str, tuple[str, ...]] | None = None,
        rulesets: Callable[[datetime], Ruleset] | None = None,
        sharing: SharingConfig | None = None,
    ):
        self.notify = notify or {}  # role → e-mail addresses for red flags and escalations
        # What the trust configured for sharing information (issue 18): secure e-mail domains, its contact.
        self.sharing = sharing or SharingConfig()
        self.db = db
        self.clock = clock
        self._latest = ruleset
        # Following the registry (wnb serve): the version in force when each transaction or chunk starts.
        self._rulesets = rulesets
        self._fixed: ContextVar[Ruleset | None] = ContextVar(f"wnb-ruleset-{id(self)}", default=None)

    @property
    def ruleset(self) -> Ruleset:
        """The ruleset this transaction or chunk is judged by (fixed for the whole of it), else the newest seen."""
        return self._fixed.get() or self._latest

    @contextmanager
    def _in_force(self) -> Iterator[Ruleset]:
        """Fix the ruleset for what runs inside: the registry's active version now, when the service follows the
        registry; inside a fixed one, that one stays (a chunk's transactions are judged by the chunk's)."""
        fixed = self._fixed.get()
        if fixed is not None or self._rulesets is None:
            yield fixed or self._latest
            return
        self._latest = ruleset = self._rulesets(self.clock())
        token = self._fixed.set(ruleset)
        try:
            yield ruleset
        finally:
            self._fixed.reset(token)

    @contextmanager
    def judged_by(self, ruleset: Ruleset) -> Iterator[None]:
        """Judge what runs inside by `ruleset` (a simulation's baseline replays each event under its own version)."""
        token = self._fixed.set(ruleset)
        try:
            yield
        finally:
            self._fixed.reset(token)

    @contextmanager
    def _transaction(self) -> Iterator[tuple[Connection, AuditLog]]:
        with self._in_force(), writing(self.db) as connection:
            audit = AuditLog(connection)
            yield connection, audit
            audit.finish()

    # ---- one evaluation: the rules, the decision, its effects ----

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
