"""The changes time makes to tasks, at a sweep (DOMAIN.md §5.4; issue 16): a `requested` task past its due time
escalates up its chain; a task whose wait for a reply ended is back at the top of its owner's list; and, when
the ruleset sets an acknowledgement timeout, an acknowledged task not completed in time goes back to
`requested` at the next role. What changes is planned in wnb/core/plan.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from wnb.core import plan
from wnb.core.domain import Role, TaskStatus
from wnb.core.refs import task_ref
from wnb.service.effects_base import EffectsBase
from wnb.store import repo
from wnb.store.sql import Record


class TimedEffects(EffectsBase):
    """Escalations, replies due and acknowledgement timeouts, as of a sweep's instant."""

    def escalate_due(self, now: datetime) -> list[str]:
        """Move every `requested` task whose due time has passed up its chain, as many levels as are due."""
        said: list[str] = []
        delay = self.ruleset.settings.escalation.delay_working_days
        day_end = self.ruleset.settings.calendar.working_day_ends
        for row in repo.tasks_to_escalate(self.connection, now):
            chain = self.ruleset.escalation_chain(Role(row.first_owner_role))
            step = plan.plan_escalation(row, chain, now, delay, day_end)
            if step is not None:
                said.append(self._escalate(row, step))
        return said

    def _escalate(self, row: Record, step: plan.Escalation) -> str:
        changes: dict[str, Any] = {
            "owner_role": step.to_role,
            "escalation_level": step.to_level,
            "due_at": step.due_at,
            "updated_at": self.at,
            "assignee": None,  # it is the next role's now, not the person it was assigned to
        }
        unassigned = f"; no longer assigned to {step.cleared_assignee}" if step.cleared_assignee else ""
        self._change_task(
            row, changes, "escalated", f"not acknowledged by {step.from_role} by its due time{unassigned}"
        )
        self.record(
            "task_escalated",
            [task_ref(row.id), row.nhs_number],
            {
                "code": row.code,
                "from_role": step.from_role,
                "to_role": step.to_role,
                "from_level": step.from_level,
                "to_level": step.to_level,
                "old_due_at": step.old_due_at,
                "due_at": step.due_at,
                "cleared_assignee": step.cleared_assignee,
            },
        )
        self._notify(
            step.to_role,
            f"task:{row.id}:escalated:{step.to_level}",
            f"wnb: task {task_ref(row.id)} {row.code} escalated to you",
            f"Task {task_ref(row.id)} ({row.code}) was not acknowledged in time and is now yours "
            f"(escalation level {step.to_level}). Open wnb to act.",
        )
        return f"task {task_ref(row.id)} {row.code} escalated to {step.to_role} (level {step.to_level})"

    def return_due(self, now: datetime) -> list[str]:
        """Tasks whose wait for a reply ended, back at the top of their owner's list; and, when the ruleset sets
        an acknowledgement timeout, acknowledged tasks not completed in time, back to `requested` up the chain."""
        said = [self._reply_due(row) for row in repo.replies_due(self.connection, now)]
        escalation = self.ruleset.settings.escalation
        if escalation.acknowledged_timeout_working_days is None:
            return said
        day_end = self.ruleset.settings.calendar.working_day_ends
        for row in repo.acknowledged_tasks(self.connection):
            chain = self.ruleset.escalation_chain(Role(row.first_owner_role))
            step = plan.plan_acknowledgement_timeout(
                row, chain, now, escalation.acknowledged_timeout_working_days, escalation.delay_working_days, day_end
            )
            if step is not None:
                said.append(self._timed_out(row, step))
        return said

    def _reply_due(self, row: Record) -> str:
        """The wait ended: the task is due now (top of its owner's list), its timeout counts afresh."""
        changes = {
            "waiting_until": None,
            "waiting_reason": None,
            "due_at": min(row.due_at, self.at),
            "acknowledged_at": self.at,
            "updated_at": self.at,
        }
        self._change_task(row, changes, "reply-due", f"the wait for a reply ended: {row.waiting_reason}")
        self.record(
            "task_reply_due", [task_ref(row.id), row.nhs_number], {"code": row.code, "reason": row.waiting_reason}
        )
        self._notify(
            row.owner_role,
            f"task:{row.id}:reply-due:{self.at.isoformat()}",
            f"wnb: task {task_ref(row.id)} {row.code} is back with you",
            f"Task {task_ref(row.id)} ({row.code}) waited for a reply until today ({row.waiting_reason}). "
            "Open wnb to act.",
        )
        return f"task {task_ref(row.id)} {row.code} back with {row.assignee or row.owner_role}: the wait ended"

    def _timed_out(self, row: Record, step: plan.AcknowledgementTimeout) -> str:
        changes = {
            "status": TaskStatus.REQUESTED.value,
            "owner_role": step.to_role,
            "escalation_level": step.to_level,
            "due_at": step.due_at,
            "assignee": None,
            "acknowledged_at": None,
            "updated_at": self.at,
        }
        note = f"acknowledged by {step.from_role} but not completed by {step.deadline.isoformat()}"
        self._change_task(row, changes, "acknowledgement-timed-out", note)
        self.record(
            "task_acknowledgement_timed_out",
            [task_ref(row.id), row.nhs_number],
            {
                "code": row.code,
                "from_role": step.from_role,
                "to_role": step.to_role,
                "from_level": step.from_level,
                "to_level": step.to_level,
                "deadline": step.deadline,
                "due_at": step.due_at,
                "cleared_assignee": row.assignee,
            },
        )
        self._notify(
            step.to_role,
            f"task:{row.id}:timed-out:{step.to_level}",
            f"wnb: task {task_ref(row.id)} {row.code} not completed in time, now yours",
            f"Task {task_ref(row.id)} ({row.code}) was acknowledged but not completed in time and is now yours "
            f"(escalation level {step.to_level}). Open wnb to act.",
        )
        return f"task {task_ref(row.id)} {row.code} back to requested with {step.to_role} (level {step.to_level})"
