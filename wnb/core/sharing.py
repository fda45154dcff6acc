"""Sharing information with the people outside (issue 18 part 2): which contact each information-sharing task
tells, a message's statuses and channels, its reference, and the minimum-necessary content it carries. Pure.

The content is the minimum necessary (Caldicott principle 3): who the child is (NHS number, date of birth), what
happened (service, appointment date, outcome), which rule asked (its id and title), whom to contact at the trust,
and the message's reference. Nothing else about the child or family goes out.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from wnb.core.contacts import Contact, ContactRole
from wnb.core.errors import InvalidAction
from wnb.core.refs import task_ref
from wnb.core.wording import plain_code


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


def channel_named(name: str) -> ChannelName:
    """The channel a person named (letter, email, fhir); InvalidAction naming the channels there are."""
    try:
        return ChannelName(name.strip().lower())
    except ValueError:
        raise InvalidAction(f"{name!r} is not a channel; use {', '.join(c.value for c in ChannelName)}") from None


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


@dataclass(frozen=True)
class SharingConfig:
    """What the trust configured for sharing: the e-mail domains it counts as secure (none: e-mail sharing is off)
    and whom a recipient contacts at the trust (None: the task's owner team); wnb's public address, under which
    messages carry their acknowledgement link (None: no link), the secret that signs the links and how many days
    a link stays valid (issue 18 part 3)."""

    secure_email_domains: tuple[str, ...] = ()
    trust_contact: str | None = None
    public_url: str | None = None
    link_secret: str = "development-session-secret-change-me"  # the session secret's development default
    link_days: int = 30

    def contact_at_trust(self, owner_role: str) -> str:
        return self.trust_contact or f"the {plain_code(owner_role)} team at the trust"


def email_domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def secure_domain(address: str, domains: Iterable[str]) -> bool:
    """Whether the address is at one of the secure domains (the domain itself, or a subdomain of it)."""
    domain = email_domain(address)
    return any(domain == allowed or domain.endswith("." + allowed) for allowed in (d.lower() for d in domains))


def address_for(channel: ChannelName, contact: Contact, config: SharingConfig) -> str | None:
    """Where `channel` sends to `contact`: its e-mail address, its endpoint, or None for a letter; InvalidAction
    saying what is missing or refused (and what to do) when it cannot."""
    who = contact.organisation or contact.person or contact.ods_code or contact.role.value
    if channel is ChannelName.LETTER:
        return None
    if channel is ChannelName.EMAIL:
        if not config.secure_email_domains:
            raise InvalidAction(
                "e-mail sharing is off: no secure e-mail domains are configured (WNB_SECURE_EMAIL_DOMAINS, e.g. "
                "nhs.net); send a letter instead, or ask the administrator to configure them"
            )
        if contact.email is None:
            raise InvalidAction(
                f"the {contact.role.value} contact {who} has no e-mail address (in the child's context or the "
                "recipient directory); send a letter instead, or add its secure address"
            )
        if not secure_domain(contact.email, config.secure_email_domains):
            raise InvalidAction(
                f"{email_domain(contact.email)} is not one of the secure e-mail domains "
                f"({', '.join(config.secure_email_domains)}): personal data is not e-mailed there; send a letter"
            )
        return contact.email
    if contact.endpoint is None:
        raise InvalidAction(
            f"the {contact.role.value} contact {who} has no FHIR endpoint (in the child's context or the recipient "
            "directory); send a letter instead, or add its endpoint"
        )
    return contact.endpoint


def recipient_name(contact: Contact) -> str:
    """How a message names its recipient: the person and organisation it has, else its ODS code or role."""
    parts = [part for part in (contact.person, contact.organisation) if part]
    return ", ".join(parts) or contact.ods_code or plain_code(contact.role.value)


def text_lines(content: Mapping[str, Any], to: str) -> list[str]:
    """The message in plain lines (an e-mail's body, a FHIR payload's text): nothing beyond its content."""
    rules = "; ".join(f"{rule['id']} {rule['title']}" for rule in content["rules"]) or "none named"
    lines = [
        f"To: {to}",
        f"Reference: {content['reference']}",
        "",
        "A child's appointment was missed, and the rules of the trust's safeguarding system ask that you know.",
        f"NHS number: {content['nhs_number']}",
        f"Date of birth: {content['date_of_birth'] or 'not known'}",
        f"Service: {plain_code(content['service'])}",
        f"Appointment date: {content['appointment_date'] or 'not known'}",
        f"Outcome: {plain_code(content['outcome']) if content['outcome'] else 'not known'}",
        f"Why you are told: {rules}",
        f"Contact at the trust: {content['trust_contact']}",
    ]
    if content.get("ack_url"):
        lines += ["", f"Please acknowledge that you have received this: {content['ack_url']}"]
    else:
        lines += ["", f"Please acknowledge that you have received this, quoting {content['reference']}."]
    return lines


def subject(content: Mapping[str, Any]) -> str:
    """An e-mail's subject: the reference alone, no personal data (subjects are shown in inbox lists)."""
    return f"Information from the trust's safeguarding system: {content['reference']}"


LETTER_CSS = (
    "body{font:11pt/1.4 Georgia,serif;margin:2rem;max-width:40rem}p{margin:.2rem 0}"
    "@media print{@page{size:A4;margin:2cm}body{margin:0}}"
)


def printable_letter(ref: str, to: str, message: Mapping[str, Any]) -> str:
    """A letter as a page of its own to print (`wnb task send --out`): its lines, print CSS, no scripts."""
    body = "".join(f"<p>{html.escape(line)}</p>" if line else "<br>" for line in text_lines(message, to))
    return (
        f"<!doctype html><html lang=en-GB><head><meta charset=utf-8><title>Letter {html.escape(ref)}</title>"
        f"<style>{LETTER_CSS}</style></head><body><p>Official-sensitive: personal.</p>{body}</body></html>\n"
    )
