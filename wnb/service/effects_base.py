"""What every change to flags and tasks shares (wnb/service/effects.py has the changes themselves): one
transaction, one instant and one actor; the writer every row goes through; the audit record; a task's history
row; a status change; and the notifications queued in the outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from wnb import notify
from wnb.core.domain import FlagStatus, TaskStatus
from wnb.core.refs import flag_ref, task_ref
from wnb.core.ruleset import Ruleset
from wnb.store import repo
from wnb.store.audit import AuditLog, AuditRef
from wnb.store.sql import Record
from wnb.store.writers import DirectWriter, Writer


class EffectsBase:
    """Changes to flags and tasks at one instant by one actor, inside one transaction: what every change
    shares (the writer, the audit record, a task's history row, the notifications)."""

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

    def _change_task(self, task: Record, changes: dict[str, Any], action: str, note: str | None = None) -> None:
        """Write `changes` to a stored task and its history row (`action`, `note`) as it stands after them."""
        repo.update_row(self.connection, repo.tasks, task["id"], **changes)
        self._history({**dict(task), **changes}, action, note)

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

    def _notify(self, role: str, key: str, subject: str, body: str) -> None:
        """Queue e-mail to the role's addresses in this transaction (delivered later from the outbox)."""
        if self.addresses:
            notify.enqueue(self.connection, self.addresses, role, key, subject, body, self.at)

    def _notify_person(self, address: str, key: str, subject: str, body: str) -> None:
        """Queue e-mail to one person's address in this transaction, when notifications are configured."""
        if self.addresses:
            notify.enqueue_to_person(self.connection, address, key, subject, body, self.at)

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

    def set_task_status(self, task: Record, status: TaskStatus, action: str, note: str | None) -> None:
        """Move `task` to `status`, in its history as `action` with `note`, through the one writer."""
        changes: dict[str, Any] = {"status": status.value, "updated_at": self.at}
        if status is TaskStatus.ACCEPTED:
            changes["acknowledged_at"] = self.at  # the acknowledgement timeout counts from here
        self._change_task(task, changes, action, note)
        if not status.is_open:
            self.writer.closed("task", task.id)
        self.record(
            f"task_{action}",
            [task_ref(task.id), task.nhs_number],
            # Whom it was assigned to, beside the actor: a role-mate may act on a colleague's task (issue 16).
            {"code": task.code, "from": task.status, "to": status, "note": note, "assignee": task.assignee, **self.via},
        )
