"""Notification channels: the one interface each kind of delivery implements, and the registry of them.

A channel says which addresses it accepts, what body is stored for a message to one of them, and sends one
outbox row: it returns the message's reference (which an acknowledgement later names), or raises
`DeliveryError` (permanent or transient: the outbox stops the row or retries it with backoff) or
`MaybeDelivered` (the message may have arrived: never sent again, and an admin task asks). The outbox
(wnb/notify/outbox.py) claims, records and retries; a channel only talks to the world.

E-mail (wnb/notify/email.py) and webhooks (wnb/notify/webhook.py) are the first two. A manual channel (a letter
rendered for printing, then marked sent by a person) fits the same interface: it accepts its own form of
address, its body is the letter, and its `send` renders it and returns the letter's reference, leaving the
"sent by a person" step to the task it belongs to.

Adding a channel: its module, with a class that has these members, and one entry in `CHANNELS`
(wnb/notify/registry.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from wnb.store.sql import Record


@dataclass(frozen=True)
class Message:
    """What the service queues for one role: the notification's key, the role, its subject and text."""

    key: str
    role: str
    subject: str
    body: str
    queued_at: datetime


class DeliveryError(Exception):
    """A send that did not succeed; `permanent` says it must not be retried."""

    def __init__(self, reason: str, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class MaybeDelivered(Exception):
    """The message went out whole but no answer came: the recipient may have it, so it must not be sent again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Channel(Protocol):
    name: str
    # The SQL condition on `recipient` that picks this channel's rows when claiming (parameters :http_url and
    # :https_url are bound); a literal `%` would be read as a placeholder by psycopg.
    claims: str

    def accepts(self, address: str) -> bool:
        """Whether this channel delivers to `address`."""
        ...

    def body(self, message: Message) -> str:
        """The body stored in the outbox for `message` to one of this channel's addresses."""
        ...

    def send(self, row: Record, settings: Any) -> str:
        """Deliver one outbox row with this channel's settings; the message reference, or DeliveryError or
        MaybeDelivered."""
        ...
