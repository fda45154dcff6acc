"""Sharing information with the people outside (issue 18 part 2), as the service does it: send a message from an
information-sharing task, mark a letter sent, read a message (an audited read), and put back the task of every
message the outbox could not deliver. The changes themselves are wnb/service/sharing_effects.py's.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import Connection

from wnb.core import policy
from wnb.core.errors import NotFound
from wnb.core.policy import Action, Principal
from wnb.core.refs import parse_ref
from wnb.service.base import ServiceBase
from wnb.service.sharing_effects import SharingEffects
from wnb.store import communications, concurrency
from wnb.store.audit import AuditLog
from wnb.store.communications import Communication

log = structlog.get_logger("wnb")


class Sharing(ServiceBase):
    """The service's messages to the recipients named in children's contexts."""

    def _effects(self, connection: Connection, audit: AuditLog, at: datetime, actor: str) -> SharingEffects:
        effects = SharingEffects(connection, audit, self.ruleset, at, actor, self.notify)
        effects.sharing = self.sharing
        return effects

    @concurrency.retried("message send")  # replicas: run again from the start when it lost a race
    def send_communication(self, ref: str, channel: str, by: Principal, at: datetime | None = None) -> Communication:
        """Send task `ref`'s message by `channel` (letter, email, fhir) as `by`, one who may act on the task
        (wnb.core.policy, `communication.send`): e-mail and FHIR are queued in the outbox and the task awaits
        acknowledgement; a letter is prepared, to print and mark sent."""
        policy.check(by, Action.COMMUNICATION_SEND)
        task_id = parse_ref(ref, "T")
        with self._transaction() as (connection, audit):
            concurrency.lock_owner(connection, "task", task_id)  # replicas: not mid-evaluation
            effects = self._effects(connection, audit, at or self.clock(), by.actor)
            effects.via = by.via_detail
            made = effects.send(task_id, channel, by)
        log.info("communication_made", communication=made.id, task=f"T{task_id}", channel=made.channel)
        return made

    @concurrency.retried("letter sent")  # replicas: run again from the start when it lost a race
    def mark_letter_sent(self, which: str, by: Principal, at: datetime | None = None) -> Communication:
        """Mark a letter (its reference, WNB-T12-1, or id) printed and posted, as `by`: its task then awaits
        the recipient's acknowledgement."""
        policy.check(by, Action.COMMUNICATION_SEND)
        with self._transaction() as (connection, audit):
            found = find_communication(connection, which)
            concurrency.lock_owner(connection, "task", found.task_id)
            effects = self._effects(connection, audit, at or self.clock(), by.actor)
            effects.via = by.via_detail
            sent = effects.letter_sent(found.id, by)
        log.info("communication_sent", communication=sent.id, channel=sent.channel)
        return sent

    def read_communication(self, which: str, by: Principal, view: str = "communication") -> Communication:
        """A message (by reference or id), its reading audited as a read of the child's record."""
        policy.check(by, Action.RECORDS_READ)
        with self._transaction() as (connection, audit):
            found = find_communication(connection, which)
            audit.append(self.clock(), by.actor, "record_read", [found.nhs_number], {"view": view, "id": found.id})
        return found

    @concurrency.retried("undelivered messages")  # replicas: run again from the start when it lost a race
    def settle_communications(self, now: datetime | None = None, actor: str = "outbox") -> list[str]:
        """Every message the outbox gave up on (failed) or may not have delivered (uncertain): its status set and
        its task back to `requested` at once, due at the end of the working day (after each delivery round)."""
        with self._transaction() as (connection, audit):
            rows = communications.undelivered(connection)
            if not rows:
                return []
            effects = self._effects(connection, audit, now or self.clock(), actor)
            said = effects.return_undelivered(rows)
        for row in rows:
            log.warning("communication_undelivered", communication=row.communication.id, outcome=row.outcome)
        return said


def find_communication(connection: Connection, which: str) -> Communication:
    """A message by its reference (WNB-T12-1) or its id (12, M12)."""
    text, found = which.strip().upper(), None
    if text.startswith("WNB-"):
        found = communications.by_reference(connection, text)
    elif text.removeprefix("M").isdigit() and len(text) <= 19:
        found = communications.by_id(connection, int(text.removeprefix("M")))
    if found is None:
        raise NotFound(f"no message {which!r} (give its reference, e.g. WNB-T12-1, or its id, e.g. M3)")
    return found
