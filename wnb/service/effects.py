"""Write the lifecycle's planned changes to stored flags and tasks (DOMAIN.md §5.2–5.7), each audited in the
caller's transaction: raising, repeating, withdrawing, escalating, and the actions people take.

What changes is planned in the core (wnb/core/plan.py: one active flag per code, due only moves earlier, the
escalation chain, the task transitions); this module reads the state the plan needs, writes the plan through
one writer (wnb/store/writers.py: a chunk's, or a single change's), audits it and queues its notifications.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from wnb import metrics
from wnb.core import plan, policy
from wnb.core.calendar import london_date
from wnb.core.domain import Decision, FlagDecision, FlagStatus, Level, Role, TaskDecision, TaskStatus
from wnb.core.errors import InvalidAction, NotFound
from wnb.core.policy import Principal
from wnb.core.refs import flag_ref, task_ref
from wnb.service.timed_effects import TimedEffects
from wnb.store import repo
from wnb.store.audit import AuditRef
from wnb.store.sql import Record


class Effects(TimedEffects):
    """Changes to flags and tasks at one instant by one actor, inside one transaction: a decision's, a
    withdrawal's, a sweep's (wnb/service/timed_effects.py) and people's."""

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
                self.set_task_status(item, becomes, "cancelled", reason)
                said.append(f"task {task_ref(item.id)} {item.code} cancelled")
        return said

    # ---- what people do ----

    def wait_on_task(self, task_id: int, until: date, reason: str, by: Principal | None = None) -> Record:
        """Mark an acknowledged task "waiting for a reply until" a date, with why (wnb.core.plan.check_wait)."""
        task = repo.task_by_id(self.connection, task_id)
        if task is None:
            raise NotFound(f"no task {task_ref(task_id)}")
        if by is not None:
            policy.check_task(by, policy.TASK_ACTIONS["ack"], task_ref(task_id), task.owner_role, task.first_owner_role)
        if not reason.strip():
            raise InvalidAction("waiting for a reply needs a reason: who, and for what")
        limit = self.ruleset.settings.escalation.waiting_max_working_days
        plan.check_wait(task_id, task.status, until, london_date(self.at), limit)
        changes = {"waiting_until": plan.reply_due(until), "waiting_reason": reason.strip(), "updated_at": self.at}
        self._change_task(task, changes, "waiting", f"waiting for a reply until {until:%d %b %Y}: {reason}")
        self.record(
            "task_waiting",
            [task_ref(task_id), task.nhs_number],
            {"code": task.code, "until": until.isoformat(), "reason": reason.strip(), **self.via},
        )
        updated = repo.task_by_id(self.connection, task_id)
        assert updated is not None
        return updated

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
        self.set_task_status(task, to_status, verb, note.strip() if note else note)
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
        values: dict[str, Any] = {"status": change.status.value, "assignee": change.assignee, "updated_at": self.at}
        if change.status is TaskStatus.ACCEPTED and task.status == TaskStatus.REQUESTED.value:
            values["acknowledged_at"] = self.at  # a claim acknowledges
        self._change_task(task, values, change.verb, change.reason)
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
