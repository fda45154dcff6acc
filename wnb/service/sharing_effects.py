"""Sending the information is the task (issue 18 part 2), inside one transaction of wnb/service/effects_base.py:
a message made from an information-sharing task to the recipient in the child's context, queued in the outbox
(secure e-mail, FHIR) or prepared as a letter; a letter marked sent; and a message the outbox could not deliver
(or may not have) putting its task back to `requested` at once, due at the end of that working day.

What goes out is the minimum necessary (wnb.core.sharing.content); logs and notifications carry ids only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from wnb import notify
from wnb.core import ack_links, policy
from wnb.core.calendar import DueRule, london_date
from wnb.core.contacts import Contact, ContactRole
from wnb.core.domain import TaskStatus
from wnb.core.errors import InvalidAction, NotFound
from wnb.core.plan import WORKABLE_TASK_STATUSES
from wnb.core.policy import Action, Principal
from wnb.core.refs import task_ref
from wnb.core.sharing import (
    SHARING_TASKS,
    ChannelName,
    CommunicationStatus,
    Happened,
    SharingConfig,
    address_for,
    channel_named,
    contact_for,
    content,
    recipient_name,
    recipient_role,
    subject,
    text_lines,
)
from wnb.fhir.resources import communication_resource
from wnb.notify.sharing import FHIR, SECURE_EMAIL
from wnb.service.effects_base import EffectsBase
from wnb.store import communications, recipients, repo
from wnb.store.communications import Communication, NewCommunication, Undelivered
from wnb.store.sql import Record


@dataclass(frozen=True)
class Recipient:
    """Whom a sharing task tells: the contact role, and the person's structured contact of it (None: none named)."""

    role: ContactRole
    contact: Contact | None


def recipient_of(connection: Connection, task: Record, today: date) -> Recipient:
    """The recipient of a sharing task, from the person's context completed from the recipient directory;
    InvalidAction when the task shares nothing."""
    context = repo.person_context(connection, task.nhs_number)
    given = recipients.completed_contacts(connection, context.structured_contacts if context else ())
    born = context.date_of_birth if context else None
    if born is None and (event := _event_of(connection, task.id)) is not None:
        born = event.date_of_birth
    role = recipient_role(task.code, born, today, given)
    return Recipient(role, contact_for(role, given))


@dataclass(frozen=True)
class SendChoice:
    """What the pages offer to send for a task: its recipient in words, and the channels that can reach them."""

    recipient: str
    channels: tuple[str, ...]


def send_choices(
    connection: Connection, tasks: list[dict[str, Any]], today: date, config: SharingConfig
) -> dict[str, SendChoice]:
    """For each sharing task of the list (as wnb.store.listing gives them) that is requested or accepted, whom its
    message goes to and by which channels; a task whose context names no one gets the reason instead."""
    found: dict[str, SendChoice] = {}
    for item in tasks:
        if item["code"] not in SHARING_TASKS or item["status"] not in WORKABLE_TASK_STATUSES:
            continue
        task = repo.task_by_id(connection, int(str(item["id"])[1:]))
        if task is None:
            continue
        recipient = recipient_of(connection, task, today)
        if recipient.contact is None:
            found[item["id"]] = SendChoice(f"no structured {recipient.role.value} contact in the child's context", ())
            continue
        channels = []
        for channel in ChannelName:
            try:
                address_for(channel, recipient.contact, config)
                channels.append(channel.value)
            except InvalidAction:
                continue
        words = f"{recipient_name(recipient.contact)} ({recipient.role.value})"
        found[item["id"]] = SendChoice(words, tuple(channels))
    return found


def _event_of(connection: Connection, task_id: int) -> Record | None:
    """The event of the task's latest appointment: what happened, as the message says it."""
    links = repo.all_links(connection, "task", task_id)
    active = [link for link in links if link.active] or links
    return repo.event_by_pk(connection, active[-1].event_pk) if active else None


def _task(connection: Connection, task_id: int) -> Record:
    task = repo.task_by_id(connection, task_id)
    if task is None:
        raise NotFound(f"no task {task_ref(task_id)}")
    return task


def check_sender(by: Principal, task: Record) -> None:
    """Only one who may act on the task sends from it (its owner roles, the lead, an admin)."""
    policy.check_task(by, Action.COMMUNICATION_SEND, task_ref(task.id), task.owner_role, task.first_owner_role)


# The ruleset parameter giving the working days a recipient has to acknowledge a message, and its default for a
# ruleset that does not set it.
ACK_PARAMETER = "acknowledge_within_working_days"
DEFAULT_ACK_WORKING_DAYS = 3


class SharingEffects(EffectsBase):
    """Messages sent from tasks, letters marked sent, and messages undelivered, at one instant by one actor."""

    sharing = SharingConfig()  # the service's (Service.sharing) is set on each instance

    def send(self, task_id: int, named: str, by: Principal | None) -> Communication:
        """Make the task's message to its recipient by `channel`: queued (e-mail, FHIR; the task then awaits the
        recipient's acknowledgement) or prepared as a letter to print (the task waits for it to be marked sent)."""
        task = _task(self.connection, task_id)
        if by is not None:
            check_sender(by, task)
        channel, ref = channel_named(named), task_ref(task_id)
        if task.status not in WORKABLE_TASK_STATUSES:
            raise InvalidAction(
                f"task {ref} is {task.status}; a message is sent only from a task that is requested or accepted"
            )
        waiting = [item for item in communications.of_task(self.connection, task_id) if item.outstanding]
        if waiting:
            raise InvalidAction(
                f"task {ref} has message {waiting[0].reference} ({waiting[0].status}) out already: "
                + ("mark the letter sent" if waiting[0].status == "awaiting-send" else "wait for its acknowledgement")
            )
        found = recipient_of(self.connection, task, london_date(self.at))
        if found.contact is None:
            raise InvalidAction(
                f"the child's context names no structured {found.role.value} contact, so task {ref} has no one to "
                "send to: import the contact (wnb context import), then send again"
            )
        address = address_for(channel, found.contact, self.sharing)
        number = communications.next_reference(self.connection, task_id)
        event = _event_of(self.connection, task_id)
        happened = Happened(
            event.service if event else task.service,
            london_date(event.appointment_at) if event else None,
            event.attendance if event else None,
        )
        rules = {rule: self._rule_title(rule) for rule in task.rule_ids}
        context = repo.person_context(self.connection, task.nhs_number)
        born = (context.date_of_birth if context else None) or (event.date_of_birth if event else None)
        body = content(
            ref=number,
            nhs_number=task.nhs_number,
            born=born,
            happened=happened,
            rules=rules,
            trust_contact=self.sharing.contact_at_trust(task.owner_role),
            task_code=task.code,
        )
        contact = found.contact
        new = NewCommunication(
            task_id=task_id,
            nhs_number=task.nhs_number,
            recipient_role=found.role.value,
            recipient_name=recipient_name(contact),
            recipient_organisation=contact.organisation,
            recipient_ods=contact.ods_code,
            channel=channel.value,
            address=address,
            status=CommunicationStatus.AWAITING_SEND if channel is ChannelName.LETTER else CommunicationStatus.SENT,
        )
        made = communications.create(
            self.connection, new, number, body, self.at, self.actor, sent=channel is not ChannelName.LETTER
        )
        made = self._with_link(made)
        if channel is ChannelName.LETTER:
            self._history(dict(task), "letter-prepared", f"letter {number} to {new.recipient_name} ready to print")
            self._record_message("communication_prepared", made, task)
            return made
        outbox_id = self._queue(made, task_id, address)
        made = communications.set_outbox(self.connection, made.id, outbox_id)
        self._record_message("communication_queued", made, task, outbox=outbox_id)
        return self._awaiting(task, made)

    def _with_link(self, made: Communication) -> Communication:
        """The message with its signed acknowledgement link (issue 18 part 3), when wnb has a public address."""
        if not self.sharing.public_url:
            return made
        expires = self.at + timedelta(days=self.sharing.link_days)
        token = ack_links.make_token(made.id, expires, self.sharing.link_secret)
        url = ack_links.link(self.sharing.public_url, token)
        return communications.set_content(self.connection, made.id, {**made.content, "ack_url": url})

    def _rule_title(self, rule_id: str) -> str:
        try:
            return self.ruleset.rule(rule_id).title
        except StopIteration:  # a rule of an older version, gone from this one
            return rule_id

    def _queue(self, made: Communication, task_id: int, address: str | None) -> int:
        assert address is not None
        to = f"{made.recipient_name} ({made.recipient_role})"
        text = "\n".join(text_lines(made.content, to)) + "\n"
        if made.channel == ChannelName.EMAIL.value:
            outbox_address, body = SECURE_EMAIL + address, text
        else:
            resource = communication_resource(
                made.id,
                task_id,
                made.content,
                {"name": made.recipient_name, "ods": made.recipient_ods, "role": made.recipient_role},
                self.at,
                text,
            )
            outbox_address, body = FHIR + address, json.dumps(resource, separators=(",", ":"))
        key = f"communication:{made.id}"
        return notify.enqueue_one(self.connection, outbox_address, key, subject(made.content), body, self.at)

    def _record_message(self, action: str, made: Communication, task: Record, **more: Any) -> None:
        self.record(
            action,
            [made.reference, task_ref(task.id), task.nhs_number],
            {
                "communication": made.id,
                "channel": made.channel,
                "recipient_role": made.recipient_role,
                "recipient_ods": made.recipient_ods,
                "status": made.status,
                **more,
                **self.via,
            },
        )

    def _awaiting(self, task: Record, made: Communication) -> Communication:
        """The message is out: the task waits for the recipient's acknowledgement (it escalates no more)."""
        changes = {"status": TaskStatus.AWAITING_ACKNOWLEDGEMENT.value, "updated_at": self.at, "waiting_until": None}
        note = f"message {made.reference} sent by {made.channel} to {made.recipient_name}"
        self._change_task(task, changes, "sent", note)
        # The recipient acknowledges within the ruleset's working days, or the task comes back (issue 18 part 3).
        days = int(self.ruleset.settings.parameters.get(ACK_PARAMETER, DEFAULT_ACK_WORKING_DAYS))
        ends = self.ruleset.settings.calendar.working_day_ends
        due = DueRule.parse(f"{days}-working-days").due_at(self.at, ends)
        made = communications.set_ack_due(self.connection, made.id, due)
        self.record(
            "task_sent",
            [task_ref(task.id), task.nhs_number],
            {"code": task.code, "from": task.status, "to": changes["status"], "note": note, **self.via},
        )
        return made

    def letter_sent(self, communication_id: int, by: Principal | None) -> Communication:
        """A letter printed and posted: marked sent by the person who did, and the task awaits acknowledgement."""
        found = communications.by_id(self.connection, communication_id)
        if found is None:
            raise NotFound(f"no message {communication_id}")
        task = _task(self.connection, found.task_id)
        if by is not None:
            check_sender(by, task)
        if found.channel != ChannelName.LETTER.value or found.status != CommunicationStatus.AWAITING_SEND.value:
            raise InvalidAction(
                f"message {found.reference} is a {found.channel} that is {found.status}; only a letter waiting to be "
                "sent is marked sent"
            )
        if task.status not in WORKABLE_TASK_STATUSES:
            raise InvalidAction(f"task {task_ref(task.id)} is {task.status}; its letter is no longer needed")
        sent = communications.mark_sent(self.connection, communication_id, self.at, self.actor)
        self._record_message("communication_sent", sent, task)
        return self._awaiting(task, sent)

    def return_undelivered(self, rows: list[Undelivered]) -> list[str]:
        """Each message the outbox could not deliver (or may not have): its status and why, and its task back to
        `requested` at once, due at the end of this working day, with the reason in its history."""
        said = []
        for row in rows:
            message = row.communication
            status = CommunicationStatus.FAILED if row.outcome == "failed" else CommunicationStatus.UNCERTAIN
            why = row.error or row.outcome
            reason = (
                f"not delivered ({why})" if status is CommunicationStatus.FAILED else f"may not have arrived ({why})"
            )
            communications.set_status(self.connection, message.id, status, reason)
            task = _task(self.connection, message.task_id)
            detail = {"communication": message.id, "outbox": message.outbox_id, "status": status.value}
            self.record(
                f"communication_{status.value}", [message.reference, task_ref(task.id), task.nhs_number], detail
            )
            note = f"message {message.reference} by {message.channel} {reason}: send it again or tell them another way"
            if self.back_to_requested(task, message, "message-undelivered", note):
                said.append(f"task {task_ref(task.id)} back to requested: message {message.reference} {status.value}")
        return said

    def back_to_requested(
        self, task: Record, message: Communication, action: str, note: str, due: datetime | None = None
    ) -> bool:
        """A task awaiting its message's acknowledgement back to `requested`, due at the end of this working day
        (the next working day's after it), `action` and `note` in its history, audited as `task_<action>`, its
        owner role told; False (nothing done) when it is no longer awaiting (closed meanwhile, or back already).
        Issue 18 part 3's non-acknowledgement timeout uses it too (action `not-acknowledged`)."""
        if task.status != TaskStatus.AWAITING_ACKNOWLEDGEMENT.value:
            return False
        if due is None:
            due = DueRule.parse("same-working-day").due_at(self.at, self.ruleset.settings.calendar.working_day_ends)
        changes = {"status": TaskStatus.REQUESTED.value, "due_at": due, "acknowledged_at": None}
        self._change_task(task, {**changes, "updated_at": self.at}, action, note)
        self.record(
            f"task_{action.replace('-', '_')}",
            [task_ref(task.id), task.nhs_number],
            {"code": task.code, "from": task.status, "to": changes["status"], "due_at": due, "note": note},
        )
        self._notify(
            task.owner_role,
            f"task:{task.id}:{action}:{message.id}",
            f"wnb: task {task_ref(task.id)} {task.code} is back with you",
            f"The message of task {task_ref(task.id)} ({task.code}) needs you again ({action}); the task is back "
            "with you, due today. Open wnb to act.",
        )
        return True
