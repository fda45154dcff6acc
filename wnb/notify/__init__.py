"""Notifications: the outbox (wnb/notify/outbox.py) and its channels (wnb/notify/channels.py: e-mail, webhooks)."""

from wnb.notify.email import SmtpSettings
from wnb.notify.outbox import (
    FAILED_CODE,
    SENDING_GRACE,
    UNCERTAIN_CODE,
    WHAT_TO_DO,
    deliver,
    enqueue,
    enqueue_to_person,
    mark_uncertain_after_restart,
    open_undelivered_tasks,
    parse_addresses,
    record_backlog,
)

__all__ = [
    "FAILED_CODE",
    "SENDING_GRACE",
    "UNCERTAIN_CODE",
    "WHAT_TO_DO",
    "SmtpSettings",
    "deliver",
    "enqueue",
    "enqueue_to_person",
    "mark_uncertain_after_restart",
    "open_undelivered_tasks",
    "parse_addresses",
    "record_backlog",
]
