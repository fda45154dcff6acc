"""Notifications: the outbox (wnb/notify/outbox.py) and its channels (wnb/notify/channels.py: e-mail, webhooks)."""

from wnb.notify.email import SmtpSettings
from wnb.notify.outbox import (
    FAILED_CODE,
    SENDING_GRACE,
    UNCERTAIN_CODE,
    WHAT_TO_DO,
    deliver,
    enqueue,
    enqueue_one,
    enqueue_to_person,
    mark_uncertain_after_restart,
    open_undelivered_tasks,
    parse_addresses,
    purge,
    record_backlog,
)
from wnb.notify.sharing import FhirSettings, SecureEmailSettings

__all__ = [
    "FAILED_CODE",
    "SENDING_GRACE",
    "UNCERTAIN_CODE",
    "WHAT_TO_DO",
    "FhirSettings",
    "SecureEmailSettings",
    "SmtpSettings",
    "deliver",
    "enqueue",
    "enqueue_one",
    "enqueue_to_person",
    "mark_uncertain_after_restart",
    "open_undelivered_tasks",
    "parse_addresses",
    "purge",
    "record_backlog",
]
