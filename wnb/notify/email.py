"""The e-mail channel: an outbox row sent over SMTP to one address, with its Message-ID as its reference.

Transient failures (4xx, connection errors, a timeout before the server asked for the message) are retried by the
outbox; permanent ones (5xx) stop the row. Once the server has asked for the message (354 after DATA) and may
hold it, a lost answer (a timeout, the connection cut) means it may have arrived: `MaybeDelivered`.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from wnb.notify.channels import DeliveryError, MaybeDelivered, Message
from wnb.notify.webhook import is_webhook
from wnb.store.sql import Record


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "wnb@localhost"
    timeout: float = 10.0


class _Client(smtplib.SMTP):
    """smtplib's client, noting when the server asked for the message itself (354, the answer to DATA).

    From then on the server may hold the message: an answer lost after that is no failure to retry.
    """

    message_requested = False

    def getreply(self) -> tuple[int, bytes]:
        code, text = super().getreply()
        if code == 354:
            self.message_requested = True
        return code, text


def _say_goodbye(client: smtplib.SMTP) -> None:
    """QUIT, and close: the message's fate is known by now, so a server slow or rude at QUIT changes nothing."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


PREFIXED = ("secure-email:", "fhir:", "letter:")  # the addresses of the sharing channels (wnb/notify/sharing.py)


def transmit(smtp: SmtpSettings, message: EmailMessage, starttls: Callable[[smtplib.SMTP], None] | None = None) -> None:
    """Send `message` over SMTP, `starttls` (when given) first securing the connection or refusing to go on;
    DeliveryError or MaybeDelivered as the module's docstring says."""
    client: _Client | None = None
    try:
        client = _Client(smtp.host, smtp.port, timeout=smtp.timeout)
        if starttls is not None:
            starttls(client)
        client.send_message(message)
    except smtplib.SMTPResponseException as error:  # an answer: the server did not take the message
        raise DeliveryError(f"{error.smtp_code} {error.smtp_error!r}", 500 <= error.smtp_code < 600) from None
    except smtplib.SMTPRecipientsRefused as error:  # the one recipient refused (a 550 "no such user" is for good)
        code, text = next(iter(error.recipients.values()))
        raise DeliveryError(f"{code} {text!r}", 500 <= code < 600) from None
    except (smtplib.SMTPException, OSError) as error:
        if client is not None and client.message_requested:
            raise MaybeDelivered(f"no answer after the message was sent ({type(error).__name__})") from None
        raise DeliveryError(type(error).__name__, False) from None
    finally:
        if client is not None:
            _say_goodbye(client)


def message_of(row: Record, sender: str, to: str) -> tuple[EmailMessage, str]:
    """The e-mail of an outbox row to `to`, and its Message-ID (the reference)."""
    message = EmailMessage()
    reference = f"<{row.dedupe_key.replace(':', '.').replace('@', '.at.')}@wnb>"
    message["From"], message["To"], message["Subject"] = sender, to, row.subject
    message["Message-ID"] = reference
    message.set_content(row.body)
    return message, reference


class EmailChannel:
    name = "email"
    claims = (
        "NOT (recipient LIKE :http_url OR recipient LIKE :https_url OR recipient LIKE :secure_email "
        "OR recipient LIKE :fhir OR recipient LIKE :letter)"
    )

    def accepts(self, address: str) -> bool:
        return not is_webhook(address) and not address.startswith(PREFIXED)

    def body(self, message: Message) -> str:
        return message.body

    def send(self, row: Record, settings: Any) -> str:
        smtp: SmtpSettings = settings
        message, reference = message_of(row, smtp.sender, row.recipient)
        transmit(smtp, message)
        return reference
