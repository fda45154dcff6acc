"""The orchestrator: ingest → facts → decide → apply → audit, and the time-based sweep.

The one place where the pure core meets the database and the clock. Each evaluation and all its effects
are written in one transaction; ingestion commits a chunk of evaluations at a time. The stages are split by
what they do: wnb/service/base.py (one evaluation), storing.py and ingesting.py (ingestion), and here the
sweep, the actions on tasks and flags, and people's context.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime

import structlog
from sqlalchemy import Connection

from wnb import metrics
from wnb.core import policy
from wnb.core.errors import Forbidden, InvalidEvent, NotBound
from wnb.core.facts import follow_up_facts
from wnb.core.items import RawItem, check_context
from wnb.core.nhs import Attendance
from wnb.core.policy import Action, Principal
from wnb.core.refs import parse_ref
from wnb.service.acknowledgements import Acknowledgements
from wnb.service.effects import Effects
from wnb.service.ingesting import Ingesting
from wnb.store import accounts, concurrency, repo
from wnb.store.sql import Record

log = structlog.get_logger("wnb")


class Service(Ingesting, Acknowledgements):
    """wnb's operations over one database and one ruleset."""

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
            # Messages not acknowledged in time (issue 18 part 3): their tasks back, due when the acknowledgement
            # was, so the escalation below takes them up the chain at once.
            counts["not_acknowledged"] = len(self.time_out_acknowledgements(connection, audit, now, actor))
            effects = Effects(connection, audit, self.ruleset, now, actor, self.notify)
            for follow_up in repo.pending_follow_ups(connection, now):
                counts[self._judge_follow_up(connection, effects, follow_up, now)] += 1
            counts["escalated"] = len(effects.escalate_due(now))
            counts["returned"] = len(effects.return_due(now))  # replies due; acknowledgements timed out
        # Messages the outbox gave up on (issue 18): their tasks back at once (also after each delivery round).
        counts["messages_returned"] = len(self.settle_communications(now, actor))
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
        now or was first, or they are the safeguarding lead or an administrator (wnb.core.policy); completing or
        cancelling needs a note (wnb.core.plan). Whoever it is assigned to, their role-mates may act on it."""
        policy.check(by, policy.TASK_ACTIONS.get(action, Action.TASK_ACKNOWLEDGE))
        with self._transaction() as (connection, audit):
            concurrency.lock_owner(connection, "task", parse_ref(ref, "T"))  # replicas: not mid-evaluation
            effects = Effects(connection, audit, self.ruleset, at or self.clock(), by.actor)
            effects.via = by.via_detail
            return effects.act_on_task(parse_ref(ref, "T"), action, note, by)

    @concurrency.retried("task action")  # replicas: run again from the start when it lost a race
    def wait_on_task(self, ref: str, until: date, reason: str, by: Principal, at: datetime | None = None) -> Record:
        """Mark an acknowledged task "waiting for a reply until" `until`, with why, as one who may act on it; at
        that date the sweep puts it back at the top of its owner's list and tells them."""
        policy.check(by, Action.TASK_ACKNOWLEDGE)
        with self._transaction() as (connection, audit):
            concurrency.lock_owner(connection, "task", parse_ref(ref, "T"))  # replicas: not mid-evaluation
            effects = Effects(connection, audit, self.ruleset, at or self.clock(), by.actor)
            effects.via = by.via_detail
            return effects.wait_on_task(parse_ref(ref, "T"), until, reason, by)

    @concurrency.retried("task assignment")  # replicas: run again from the start when it lost a race
    def assign_task(
        self,
        ref: str,
        action: str,
        by: Principal,
        to: str | None = None,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> Record:
        """Claim a task as `by`, assign it `to` a named member of its role, or release it (issue 16): refused
        (Forbidden) unless wnb.core.policy allows `by`; the assignee hears by e-mail when notifications are on."""
        policy.check(by, policy.ASSIGNMENT_ACTIONS.get(action, Action.TASK_CLAIM))
        task_id = parse_ref(ref, "T")
        with self._transaction() as (connection, audit):
            concurrency.lock_owner(connection, "task", task_id)  # replicas: not mid-evaluation
            name = by.name if action == "claim" else to
            member, email = accounts.assignable(connection, name) if action != "release" and name else (None, None)
            effects = Effects(connection, audit, self.ruleset, at or self.clock(), by.actor, self.notify)
            effects.via = by.via_detail
            return effects.assign_task(task_id, action, by, member, reason, email)

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
