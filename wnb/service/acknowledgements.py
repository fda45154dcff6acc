"""Acknowledgements of the messages sent outside (issue 18 part 3), as the service does them.

A recipient acknowledges by the message's signed link (a page asking their name: anonymous, the link is the
proof) or a partner's system by `POST /v1/communications/{id}/ack` with a key bound to that recipient. Either
records who and when on the message and completes its task. A message still unacknowledged when its ruleset's
working days are up puts its task back to `requested`, due at the end of that working day (17:00), noted "sent,
not acknowledged", and the same sweep then escalates it as any overdue task.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import Connection

from wnb.core import ack_links, policy
from wnb.core.domain import TaskStatus
from wnb.core.errors import Forbidden, InvalidAction, NotFound
from wnb.core.policy import Action, Principal
from wnb.core.refs import task_ref
from wnb.core.sharing import AcknowledgedVia, CommunicationStatus
from wnb.core.wording import local
from wnb.service.sharing import Sharing, find_communication
from wnb.service.sharing_effects import SharingEffects
from wnb.store import communications, concurrency, repo
from wnb.store.audit import AuditLog
from wnb.store.communications import Communication

log = structlog.get_logger("wnb")

MAX_NAME = 200
NOT_ACKNOWLEDGED = "sent, not acknowledged"


def _name(given: str) -> str:
    name = " ".join(given.split())
    if not name:
        raise InvalidAction("give your name: the acknowledgement records who received the message")
    if len(name) > MAX_NAME:
        raise InvalidAction(f"the name is longer than {MAX_NAME} characters")
    return name


def acknowledge(effects: SharingEffects, message: Communication, name: str, via: AcknowledgedVia) -> Communication:
    """Record the acknowledgement on `message` and complete its task (if still open), both audited."""
    if message.status == CommunicationStatus.ACKNOWLEDGED.value:
        assert message.acknowledged_at is not None
        raise InvalidAction(
            f"message {message.reference} was acknowledged already, on {local(message.acknowledged_at)}"
        )
    if message.status == CommunicationStatus.AWAITING_SEND.value:
        raise InvalidAction(f"message {message.reference} has not been sent yet")
    done = communications.mark_acknowledged(effects.connection, message.id, effects.at, name, via)
    task = repo.task_by_id(effects.connection, message.task_id)
    assert task is not None
    effects.record(
        "communication_acknowledged",
        [message.reference, task_ref(task.id), task.nhs_number],
        {"communication": message.id, "via": via.value, "by": name, "status_before": message.status},
    )
    if TaskStatus(task.status).is_open:
        note = f"message {message.reference} acknowledged by {name} ({via.value}) on {local(effects.at)}"
        effects.set_task_status(task, TaskStatus.COMPLETED, "completed", note)
    return done


def time_out(effects: SharingEffects, message: Communication) -> str | None:
    """`message` not acknowledged in time: so marked, and its task back to `requested` (what was done, or None
    when the task had been closed meanwhile)."""
    communications.set_status(effects.connection, message.id, CommunicationStatus.NOT_ACKNOWLEDGED, NOT_ACKNOWLEDGED)
    task = repo.task_by_id(effects.connection, message.task_id)
    assert task is not None
    effects.record(
        "communication_not_acknowledged",
        [message.reference, task_ref(task.id), task.nhs_number],
        {"communication": message.id, "ack_due_at": message.ack_due_at},
    )
    note = f"{NOT_ACKNOWLEDGED}: message {message.reference} to {message.recipient_name} by {message.channel}"
    if not effects.back_to_requested(task, message, "not-acknowledged", note, due=message.ack_due_at):
        return None
    return f"task {task_ref(task.id)} back to requested: message {message.reference} {NOT_ACKNOWLEDGED}"


class Acknowledgements(Sharing):
    """The service's acknowledgements of messages, and their timeout."""

    def _linked(self, connection: Connection, token: str, at: datetime) -> Communication:
        found = communications.by_id(connection, ack_links.read_token(token, self.sharing.link_secret, at))
        if found is None:
            raise NotFound("this acknowledgement link names no message: check it was copied whole")
        return found

    def message_of_link(self, token: str) -> Communication:
        """The message a valid link names (for its page: the reference and whether it is acknowledged)."""
        with self.db.connect() as connection:
            return self._linked(connection, token, self.clock())

    @concurrency.retried("acknowledgement")  # replicas: run again from the start when it lost a race
    def acknowledge_by_link(self, token: str, name: str, at: datetime | None = None) -> Communication:
        """Acknowledge the message a valid, unexpired link names, as the person `name` (once: a second time
        is refused, and changes nothing)."""
        at = at or self.clock()
        with self._transaction() as (connection, audit):
            found = self._linked(connection, token, at)
            concurrency.lock_owner(connection, "task", found.task_id)
            effects = self._effects(connection, audit, at, f"recipient:{found.recipient_ods or found.id}")
            done = acknowledge(effects, found, _name(name), AcknowledgedVia.LINK)
        log.info("communication_acknowledged", communication=done.id, via="link")
        return done

    @concurrency.retried("acknowledgement")  # replicas: run again from the start when it lost a race
    def acknowledge_by_key(self, which: str, name: str, by: Principal, at: datetime | None = None) -> Communication:
        """Acknowledge message `which` (its id or reference) for a partner's key bound to its recipient."""
        policy.check(by, Action.COMMUNICATION_ACKNOWLEDGE)
        # Refused before the lookup when the key may acknowledge nothing (bound to no recipient): it learns nothing
        # of which messages exist. The one policy check decides, asked of the key's own recipient.
        if refusal := policy.acknowledgement_refusal(by, by.recipient):
            raise Forbidden(refusal)
        at = at or self.clock()
        with self._transaction() as (connection, audit):
            found = find_communication(connection, which)
            if refusal := policy.acknowledgement_refusal(by, found.recipient_ods):
                raise Forbidden(refusal)
            concurrency.lock_owner(connection, "task", found.task_id)
            effects = self._effects(connection, audit, at, by.actor)
            done = acknowledge(effects, found, _name(name), AcknowledgedVia.API)
        log.info("communication_acknowledged", communication=done.id, via="api")
        return done

    def time_out_acknowledgements(
        self, connection: Connection, audit: AuditLog, now: datetime, actor: str
    ) -> list[str]:
        """Every message sent and not acknowledged by its due time: `not-acknowledged`, and its task back to
        `requested`, due at that time (the end of its working day), noted "sent, not acknowledged". The sweep
        runs it in its own transaction before it escalates, so the task escalates at once, as any overdue task."""
        due = communications.due_unacknowledged(connection, now)
        if not due:
            return []
        effects = self._effects(connection, audit, now, actor)
        said = [line for message in due if (line := time_out(effects, message))]
        for message in due:
            log.warning("communication_not_acknowledged", communication=message.id)
        return said
