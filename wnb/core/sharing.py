"""Sharing information with the people outside (issue 18 part 2): which contact each information-sharing task
tells, a message's statuses and channels, its reference, and the minimum-necessary content it carries. Pure.

The content is the minimum necessary (Caldicott principle 3): who the child is (NHS number, date of birth), what
happened (service, appointment date, outcome), which rule asked (its id and title), whom to contact at the trust,
and the message's reference. Nothing else about the child or family goes out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from wnb.core.contacts import Contact, ContactRole
from wnb.core.errors import InvalidAction
from wnb.core.refs import task_ref


class CommunicationStatus(StrEnum):
    AWAITING_SEND = "awaiting-send"  # a letter rendered, not yet marked sent by a person
    SENT = "sent"
    FAILED = "failed"  # the outbox gave up, or the error was permanent
    UNCERTAIN = "uncertain"  # it may have arrived (no answer came): never sent again
    ACKNOWLEDGED = "acknowledged"
    NOT_ACKNOWLEDGED = "not-acknowledged"  # the acknowledgement did not come in time (issue 18 part 3)


class ChannelName(StrEnum):
    LETTER = "letter"
    EMAIL = "email"
    FHIR = "fhir"


class AcknowledgedVia(StrEnum):
    LINK = "link"
    API = "api"


# The statuses in which a message is still out and may yet be acknowledged.
OUTSTANDING = (CommunicationStatus.AWAITING_SEND.value, CommunicationStatus.SENT.value)

# The task codes that are sharing information, and the contact role each one tells (health visitor or school
# nurse: chosen by the child's age, wnb.core.sharing.recipient_role).
SHARING_TASKS: dict[str, tuple[ContactRole, ...]] = {
    "inform-gp": (ContactRole.GP_PRACTICE,),
    "notify-social-worker": (ContactRole.SOCIAL_WORKER,),
    "inform-lead-professional": (ContactRole.LEAD_PROFESSIONAL,),
    "inform-health-visitor-or-school-nurse": (ContactRole.HEALTH_VISITOR, ContactRole.SCHOOL_NURSE),
}
HEALTH_VISITOR_UNTIL_YEARS = 5  # health visitors see children under five; school nurses from school age


def reference(task_id: int, number: int) -> str:
    """A message's reference, quoted back by its recipient: `WNB-T12-1` is task T12's first message."""
    return f"WNB-{task_ref(task_id)}-{number}"


def _age_years(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def recipient_role(code: str, born: date | None, today: date, contacts: Iterable[Contact]) -> ContactRole:
    """The contact role a sharing task tells; InvalidAction when the task shares nothing.

    `inform-health-visitor-or-school-nurse` tells the health visitor of a child under five and the school nurse
    of an older one; when the person's context names only the other (or the age is unknown), that one."""
    roles = SHARING_TASKS.get(code)
    if roles is None:
        raise InvalidAction(
            f"a task {code!r} shares no information; messages are sent from {', '.join(SHARING_TASKS)} tasks"
        )
    if len(roles) == 1:
        return roles[0]
    named = {contact.role for contact in contacts}
    if born is not None:
        preferred = roles[0] if _age_years(born, today) < HEALTH_VISITOR_UNTIL_YEARS else roles[1]
        other = roles[1] if preferred is roles[0] else roles[0]
        return other if preferred not in named and other in named else preferred
    return next((role for role in roles if role in named), roles[0])


def contact_for(role: ContactRole, contacts: Iterable[Contact]) -> Contact | None:
    """The person's structured contact of this role (the first given), or None."""
    return next((contact for contact in contacts if contact.role is role), None)


@dataclass(frozen=True)
class Happened:
    """What happened, as a message says it: the service, the appointment's date and its outcome."""

    service: str
    appointment_date: date | None
    outcome: str | None


def content(
    *,
    ref: str,
    nhs_number: str,
    born: date | None,
    happened: Happened,
    rules: Mapping[str, str],
    trust_contact: str,
    task_code: str,
) -> dict[str, Any]:
    """The minimum-necessary content of a message, as stored and as every channel renders it."""
    return {
        "reference": ref,
        "nhs_number": nhs_number,
        "date_of_birth": born.isoformat() if born else None,
        "service": happened.service,
        "appointment_date": happened.appointment_date.isoformat() if happened.appointment_date else None,
        "outcome": happened.outcome,
        "task": task_code,
        "rules": [{"id": rule, "title": title} for rule, title in rules.items()],
        "trust_contact": trust_contact,
        # Issue 18 part 3 adds the signed acknowledgement link here (None until then): every channel shows it
        # when it is set.
        "ack_url": None,
    }
