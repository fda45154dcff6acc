"""The channels of information sharing (issue 18): a secure e-mail with STARTTLS required, a FHIR R4 Communication
posted signed to the recipient's endpoint, and a letter printed and marked sent by a person.

Their outbox rows carry personal data out of the trust (the minimum necessary: wnb.core.sharing), unlike the
notifications of ids and codes, so each has its own form of address, `<channel>:<address>`, and its own settings:
an e-mail to a domain not configured as secure, or over a connection that cannot be secured, is never sent.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wnb.core.sharing import secure_domain
from wnb.notify import webhook
from wnb.notify.channels import DeliveryError, Message
from wnb.notify.email import SmtpSettings, message_of, transmit
from wnb.store.sql import Record

SECURE_EMAIL, FHIR, LETTER = "secure-email:", "fhir:", "letter:"


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client context verifying the server's certificate and name: against `ca_file` when given (a trust's own
    CA; a test's), else the system's CAs."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass(frozen=True)
class SecureEmailSettings:
    smtp: SmtpSettings
    domains: tuple[str, ...]  # the secure domains; none: nothing is sent
    ca_file: Path | None = None


def _require_starttls(context: ssl.SSLContext) -> Callable[[smtplib.SMTP], None]:
    def secure(client: smtplib.SMTP) -> None:
        client.ehlo()
        if not client.has_extn("starttls"):
            raise DeliveryError(
                "the SMTP server does not offer STARTTLS: personal data is never sent in clear", permanent=True
            )
        try:
            client.starttls(context=context)
        except ssl.SSLError as error:
            raise DeliveryError(f"STARTTLS failed ({error.reason or type(error).__name__})", permanent=True) from None
        client.ehlo()

    return secure


class SecureEmailChannel:
    """`secure-email:<address>`: the message's text, sent only to a secure domain over STARTTLS (certificate
    checked); its Message-ID is the reference."""

    name = "secure-email"
    claims = "recipient LIKE :secure_email"

    def accepts(self, address: str) -> bool:
        return address.startswith(SECURE_EMAIL)

    def body(self, message: Message) -> str:
        return message.body

    def send(self, row: Record, settings: Any) -> str:
        secure: SecureEmailSettings = settings
        to = row.recipient.removeprefix(SECURE_EMAIL)
        if not secure_domain(to, secure.domains):
            raise DeliveryError(
                f"{to.rpartition('@')[2]} is not a secure e-mail domain (WNB_SECURE_EMAIL_DOMAINS)", permanent=True
            )
        message, reference = message_of(row, secure.smtp.sender, to)
        transmit(secure.smtp, message, _require_starttls(tls_context(secure.ca_file)))
        return reference


@dataclass(frozen=True)
class FhirSettings:
    """The webhook's signing secret, and the CA file that verifies the endpoints' certificates (None: the
    system's)."""

    secret: str
    ca_file: Path | None = None
    timeout: float = 10.0
    hook: webhook.WebhookSettings = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hook", webhook.WebhookSettings(self.secret, self.timeout))


class FhirChannel:
    """`fhir:<endpoint>`: the Communication resource as JSON, posted with the webhook's signature and delivery
    headers (wnb/notify/webhook.py) to an https:// endpoint; the delivery id is the reference."""

    name = "fhir"
    claims = "recipient LIKE :fhir"

    def accepts(self, address: str) -> bool:
        return address.startswith(FHIR)

    def body(self, message: Message) -> str:
        return message.body

    def send(self, row: Record, settings: Any) -> str:
        fhir: FhirSettings = settings
        url = row.recipient.removeprefix(FHIR)
        if not url.startswith("https://"):
            raise DeliveryError("a FHIR endpoint must be https://: personal data is never posted in clear", True)
        try:
            webhook.post(fhir.hook, url, row.dedupe_key, row.body.encode(), verify=tls_context(fhir.ca_file))
        except DeliveryError as error:
            if error.reason.startswith("SSL"):  # the endpoint's certificate: trying again will not change it
                raise DeliveryError(f"TLS refused ({error.reason}): check the endpoint's certificate", True) from None
            raise
        return str(row.dedupe_key)


class LetterChannel:
    """`letter:<reference>`: a letter printed from its page and posted by a person, who marks it sent on the task.
    Nothing is queued for it, so the outbox never claims it (it is never configured for delivery); its `send`
    only names the letter."""

    name = "letter"
    claims = "recipient LIKE :letter"

    def accepts(self, address: str) -> bool:
        return address.startswith(LETTER)

    def body(self, message: Message) -> str:
        return message.body

    def send(self, row: Record, settings: Any) -> str:
        return str(row.recipient.removeprefix(LETTER))
