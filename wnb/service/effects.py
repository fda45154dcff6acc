"""Write the lifecycle's planned changes to stored flags and tasks (DOMAIN.md §5.2–5.7), each audited in the
caller's transaction: raising, repeating, withdrawing, escalating, and the actions people take.

What changes is planned in the core (wnb/core/plan.py: one active flag per code, due only moves earlier, the
escalation chain, the task transitions); this module reads the state the plan needs, writes the plan through
one writer (wnb/store/writers.py: a chunk's, or a single change's), audits it and queues its notifications.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from wnb import metrics, notify
from wnb.core import plan, policy
from wnb.core.domain import Decision, FlagDecision, FlagStatus, Level, Role, TaskDecision, TaskStatus
from wnb.core.errors import InvalidAction, NotFound
from wnb.core.policy import Principal
from wnb.core.refs import flag_ref, task_ref
from wnb.core.ruleset import Ruleset
from wnb.store import repo
from wnb.store.audit import AuditLog, AuditRef
from wnb.store.sql import Record
from wnb.store.writers import DirectWriter, Writer


class Effects:
    """Changes to flags and tasks at one instant by one actor, inside one transaction."""

    def __init__(
        self,
        connection: Connection,
        audit: AuditLog,
        ruleset: Ruleset,
        at: datetime,
        actor: str,
        addresses: Mapping[str, tuple[str, ...]] | None = None,
        writer: Writer | None = None,
    ):
        # Ingestion gives a chunk's writer (rows written at the chunk's end); a single change writes directly.
        self.writer: Writer = writer or DirectWriter(connection, audit)
        self.addresses = addresses or {}
        self.connection = connection
        self.audit = audit
        self.ruleset = ruleset
        self.at = at
        self.actor = actor
        self.via: dict[str, str] = {}  # a person's action: how they came (`{"via": "cli"}`), kept in its audit record

    def record(self, action: str, subject: list[str], payload: dict[str, Any]) -> AuditRef:
        return self.audit.append(self.at, self.actor, action, subject, payload, self.ruleset.version)

    def _insert(self, table: Any, values: dict[str, Any]) -> int:
        return self.writer.insert(table, values)

    def _update(self, table: Any, pk: int, **values: Any) -> None:
        self.writer.update(table, pk, values)

    def _link(
        self,
        kind: str,
        item_id: int,
        appointment: tuple[str, str],
        event_pk: int,
        seq: AuditRef,
        new: bool = False,
    ) -> None:
        if not new and self.writer.is_linked(kind, item_id, *appointment):
            return
        link = {
            "kind": kind,
            "item_id": item_id,
            "source": appointment[0],
            "appointment_id": appointment[1],
            "event_pk": event_pk,
            "audit_seq": seq,  # the evaluation's number, given when the transaction's records are chained
            "active": True,
            "linked_at": self.at,
        }
        self.writer.insert_link(link)

    def _history(self, task: dict[str, Any], action: str, note: str | None = None) -> None:
        self._insert(
            repo.task_history,
            {
                "task_id": task["id"],
                "at": self.at,
                "actor": self.actor,
                "action": action,
                "status": task["status"],
                "owner_role": task["owner_role"],
                "due_at": task["due_at"],
                "escalation_level": task["escalation_level"],
                "note": note,
                "assignee": task.get("assignee"),
            },
        )

    def apply(
        self,
        decision: Decision,
        nhs_number: str,
        appointment: tuple[str, str],
        event_pk: int,
        evaluation_seq: AuditRef,
    ) -> list[str]:
        """Write what the decision plans (wnb.core.plan); return a plain-words line per effect."""
        active = self.writer.active_flags(nhs_number) if decision.flags else {}
        # The open task of each (service, code) asked for, as they stand before any of them is applied.
        open_tasks = self.writer.open_tasks(nhs_number, [(wanted.service, wanted.code) for wanted in decision.tasks])
        planned = plan.plan(decision, active, open_tasks)
        event = (nhs_number, appointment, event_pk, evaluation_seq)
        said = [
            self._new_flag(change.wanted, *event)
            if isinstance(change, plan.NewFlag)
            else self._link_flag(change, *event)
            for change in planned.flags
        ]
        said.extend(
            self._new_task(change.wanted, *event)
            if isinstance(change, plan.NewTask)
            else self._repeat_task(change, open_tasks[(change.wanted.service, change.wanted.code)], *event)
            for change in planned.tasks
        )
        return said

    def _new_flag(
        self, wanted: FlagDecision, nhs_number: str, appointment: tuple[str, str], event_pk: int, seq: AuditRef
    ) -> str:
        flag_id = self._insert(
            repo.flags,
            {
                "nhs_number": nhs_number,
                "code": wanted.code,
                "level": wanted.level.value,
                "status": FlagStatus.ACTIVE.value,
                "rule_ids": list(wanted.rule_ids),
                "raised_at": self.at,
                "ruleset_version": self.ruleset.version,
            },
        )
        self.record(
            "flag_raised",
            [flag_ref(flag_id), nhs_number],
            {"code": wanted.code, "level": wanted.level, "rule_ids": wanted.rule_ids, "evaluation": seq},
        )
        metrics.count_raised("flag", wanted.rule_ids)
        if wanted.level is Level.RED:
            self._notify(
                Role.SAFEGUARDING_NURSE.value,
                f"flag:{flag_id}:raised",
                f"wnb: red flag {flag_ref(flag_id)} {wanted.code}",
                f"A red flag {flag_ref(flag_id)} ({wanted.code}, rules {', '.join(wanted.rule_ids)}) "
                "was raised. Open wnb to see the child and act.",
            )
        self._link("flag", flag_id, appointment, event_pk, seq, new=True)
        return f"raised flag {flag_ref(flag_id)} {wanted.code} ({wanted.level.value})"

    def _link_flag(
        self, change: plan.LinkToFlag, nhs_number: str, appointment: tuple[str, str], event_pk: int, seq: AuditRef
    ) -> str:
        if change.rule_ids is not None:
            self._update(repo.flags, change.flag_id, rule_ids=list(change.rule_ids))
        self.record(
            "flag_repeated",
            [flag_ref(change.flag_id), nhs_number],
            {
                "code": change.wanted.code,
                "rule_ids": change.wanted.rule_ids,
                "evaluation": seq,
                "reason": "flag already active: event linked, no second flag",
            },
        )
        self._link("flag", change.flag_id, appointment, event_pk, seq)
        return f"linked to active flag {flag_ref(change.flag_id)} {change.wanted.code}"

    def _new_task(
        self, wanted: TaskDecision, nhs_number: str, appointment: tuple[str, str], event_pk: int, seq: AuditRef
    ) -> str:
        task: dict[str, Any] = {
            "nhs_number": nhs_number,
            "service": wanted.service,
            "code": wanted.code,
            "owner_role": wanted.owner_role.value,
            "first_owner_role": wanted.owner_role.value,
            "status": TaskStatus.REQUESTED.value,
            "due_at": wanted.due_at,
            "escalation_level": 0,
            "rule_ids": list(wanted.rule_ids),
            "created_at": self.at,
            "ruleset_version": self.ruleset.version,
            "updated_at": self.at,
        }
        task["id"] = self._insert(repo.tasks, task)
        self._history(task, "created")
        self.record(
            "task_created",
            [task_ref(task["id"]), nhs_number],
            {
                "code": wanted.code,
                "service": wanted.service,
                "owner_role": wanted.owner_role,
                "due_at": wanted.due_at,
                "rule_ids": wanted.rule_ids,
                "evaluation": seq,
            },
        )
        self._link("task", task["id"], appointment, event_pk, seq, new=True)
        metrics.count_raised("task", wanted.rule_ids)
        return f"created task {task_ref(task['id'])} {wanted.code} for {wanted.owner_role.value}"

    def _repeat_task(
        self,
        change: plan.RepeatTask,
        row: Record,
        nhs_number: str,
        appointment: tuple[str, str],
        event_pk: int,
        seq: AuditRef,
    ) -> str:
        task = dict(row)
        changes: dict[str, Any] = {}
        if change.rule_ids is not None:
            changes["rule_ids"] = list(change.rule_ids)
        if change.due_at is not None:
            changes.update(due_at=change.due_at, updated_at=self.at)
        if changes:
            self._update(repo.tasks, change.task_id, **changes)
            task.update(changes)
        if change.due_at is not None:
            self._history(task, "due-moved-earlier", "a repeat asked for an earlier due time")
        self.record(
            "task_repeated",
            [task_ref(change.task_id), nhs_number],
            {
                "code": change.wanted.code,
                "rule_ids": change.wanted.rule_ids,
                "evaluation": seq,
                "due_at": task["due_at"],
                "due_moved_earlier": change.due_at is not None,
                "reason": "task already open: event linked, due time never moved later",
            },
        )
        self._link("task", change.task_id, appointment, event_pk, seq)
        moved = " (due earlier)" if change.due_at is not None else ""
        return f"linked to open task {task_ref(change.task_id)} {change.wanted.code}{moved}"

    def _notify(self, role: str, key: str, subject: str, body: str) -> None:
        """Queue e-mail to the role's addresses in this transaction (delivered later from the outbox)."""
        if self.addresses:
            notify.enqueue(self.connection, self.addresses, role, key, subject, body, self.at)

    def _notify_person(self, address: str, key: str, subject: str, body: str) -> None:
        """Queue e-mail to one person's address in this transaction, when notifications are configured."""
        if self.addresses:
            notify.enqueue_to_person(self.connection, address, key, subject, body, self.at)

    def withdraw(self, appointment: tuple[str, str], reason: str) -> list[str]:
        """The appointment no longer supports anything: unlink it; what it alone raised is withdrawn."""
        said: list[str] = []
        self.writer.before_table_reads()  # what follows reads and changes the tables themselves
        for link in repo.appointment_links(self.connection, *appointment):
            repo.update_row(self.connection, repo.links, link.id, active=False)
            self.writer.unlinked(link.kind, link.item_id, link.source, link.appointment_id)
            if repo.active_links(self.connection, link.kind, link.item_id):
                continue
            item = (repo.flag_by_id if link.kind == "flag" else repo.task_by_id)(self.connection, link.item_id)
            if item is None:
                continue
            becomes = plan.withdrawal(link.kind, item.status)
            if isinstance(becomes, FlagStatus):
                self._set_flag_status(item, becomes, reason)
                said.append(f"flag {flag_ref(item.id)} {item.code} entered-in-error")
            elif isinstance(becomes, TaskStatus):
                self._set_task_status(item, becomes, "cancelled", reason)
                said.append(f"task {task_ref(item.id)} {item.code} cancelled")
        return said

    def _set_flag_status(self, flag: Record, status: FlagStatus, reason: str) -> None:
        repo.update_row(
            self.connection,
            repo.flags,
            flag.id,
            status=status.value,
            status_reason=reason,
            changed_at=self.at,
            changed_by=self.actor,
        )
        self.writer.closed("flag", flag.id)
        self.record(
            f"flag_{status.value.replace('-', '_')}",
            [flag_ref(flag.id), flag.nhs_number],
            {"code": flag.code, "from": flag.status, "to": status, "reason": reason, **self.via},
        )

    def _set_task_status(self, task: Record, status: TaskStatus, action: str, note: str | None) -> None:
        values = dict(task)
        values.update(status=status.value, updated_at=self.at)
        repo.update_row(self.connection, repo.tasks, task.id, status=status.value, updated_at=self.at)
        if not status.is_open:
            self.writer.closed("task", task.id)
        self._history(values, action, note)
        self.record(
            f"task_{action}",
            [task_ref(task.id), task.nhs_number],
            # Whom it was assigned to, beside the actor: a role-mate may act on a colleague's task (issue 16).
            {"code": task.code, "from": task.status, "to": status, "note": note, "assignee": task.assignee, **self.via},
        )

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
        task = dict(row)
        changes = {
            "owner_role": step.to_role,
            "escalation_level": step.to_level,
            "due_at": step.due_at,
            "updated_at": self.at,
            "assignee": None,  # it is the next role's now, not the person it was assigned to
        }
        task.update(changes)
        repo.update_row(self.connection, repo.tasks, row.id, **changes)
        unassigned = f"; no longer assigned to {step.cleared_assignee}" if step.cleared_assignee else ""
        self._history(task, "escalated", f"not acknowledged by {step.from_role} by its due time{unassigned}")
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

    # ---- what people do ----

    def act_on_task(self, task_id: int, action: str, note: str | None, by: Principal | None = None) -> Record:
        """Acknowledge, complete or cancel a task; `by` (when given) must be allowed it by wnb.core.policy."""
        task = repo.task_by_id(self.connection, task_id)
        if task is None:
            raise NotFound(f"no task {task_ref(task_id)}")
        if action not in policy.TASK_ACTIONS:
            raise InvalidAction(f"unknown task action {action!r}; use ack, complete or cancel")
        if by is not None:
            policy.check_task(
                by, policy.TASK_ACTIONS[action], task_ref(task_id), task.owner_role, task.first_owner_role
            )
        to_status, verb = plan.task_transition(task_id, task.status, action)
        plan.check_task_note(task_id, action, note)
        self._set_task_status(task, to_status, verb, note.strip() if note else note)
        updated = repo.task_by_id(self.connection, task_id)
        assert updated is not None
        return updated

    def assign_task(
        self,
        task_id: int,
        action: str,
        by: Principal,
        to: plan.Member | None,
        reason: str | None = None,
        email: str | None = None,
    ) -> Record:
        """Claim (`to` is `by`'s own account), assign `to` a member of the task's role, or release a task, as
        wnb.core.policy and wnb.core.plan allow; the assignee hears by e-mail (`email`) when notifications are on."""
        task = repo.task_by_id(self.connection, task_id)
        if task is None:
            raise NotFound(f"no task {task_ref(task_id)}")
        if action not in policy.ASSIGNMENT_ACTIONS:
            raise InvalidAction(f"unknown assignment {action!r}; use claim, assign or release")
        chain = self.ruleset.escalation_chain(Role(task.first_owner_role))
        policy.check_assignment(by, action, task_ref(task_id), task.owner_role, task.assignee, chain)
        change = plan.plan_assignment(task, action, to, reason)
        values = {"status": change.status.value, "assignee": change.assignee, "updated_at": self.at}
        repo.update_row(self.connection, repo.tasks, task_id, **values)
        self._history({**dict(task), **values}, change.verb, change.reason)
        self.record(
            f"task_{change.verb}",
            [task_ref(task_id), task.nhs_number],
            {
                "code": task.code,
                "from": task.status,
                "to": change.status,
                "assignee": change.assignee,
                "previous_assignee": change.previous,
                "reason": change.reason,
                **self.via,
            },
        )
        if change.assignee is not None and change.assignee != change.previous and email:
            self._notify_person(
                email,
                f"task:{task_id}:assigned:{change.assignee}:{self.at.isoformat()}",
                f"wnb: task {task_ref(task_id)} {task.code} assigned to you",
                f"Task {task_ref(task_id)} ({task.code}, due {task.due_at.isoformat()}) is assigned to you"
                f"{'' if change.action == 'claim' else ' by ' + by.name}. Open wnb to act.",
            )
        updated = repo.task_by_id(self.connection, task_id)
        assert updated is not None
        return updated

    def resolve_flag(self, flag_id: int, reason: str) -> Record:
        flag = repo.flag_by_id(self.connection, flag_id)
        if flag is None:
            raise NotFound(f"no flag {flag_ref(flag_id)}")
        plan.check_flag_resolution(flag_id, flag.status, reason)
        self._set_flag_status(flag, FlagStatus.INACTIVE, reason)
        updated = repo.flag_by_id(self.connection, flag_id)
        assert updated is not None
        return updated
