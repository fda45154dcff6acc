"""Post one outbox row to a webhook, signed with HMAC-SHA256, and say whether a failure is worth retrying.

The receiver checks `X-WNB-Signature: sha256=<hex>` (HMAC-SHA256 of the raw body under the shared webhook
secret) and de-duplicates on `X-WNB-Delivery` (the outbox row's key). Failing to connect or to send the request,
5xx and 429 are transient (retried with backoff by wnb/notify/outbox.py); any other 4xx, or a redirect, is permanent.
A request sent whole whose answer never comes (a timeout, the connection cut) may have been received: that is
neither, and the row is never posted again (`uncertain`), since a receiver need not de-duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from wnb.core.audit_chain import canonical
from wnb.notify.channels import DeliveryError as DeliveryError
from wnb.notify.channels import MaybeDelivered as MaybeDelivered
from wnb.notify.channels import Message
from wnb.store.sql import Record

SIGNATURE_HEADER = "X-WNB-Signature"
DELIVERY_HEADER = "X-WNB-Delivery"


@dataclass(frozen=True)
class WebhookSettings:
    secret: str
    timeout: float = 10.0


def is_webhook(address: str) -> bool:
    return address.startswith(("https://", "http://"))


def host_of(url: str) -> str:
    """scheme://host[:port] of a webhook URL, without the path or query that may carry a token."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0].rsplit('@', 1)[-1]}"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(settings: WebhookSettings, url: str, delivery: str, body: bytes, verify: ssl.SSLContext | bool = True) -> None:
    """POST `body` (JSON) to `url`; raise DeliveryError unless the answer is 2xx, MaybeDelivered if none came.
    `verify`: how an https:// server's certificate is checked (the system's CAs, or a context's)."""
    target = httpx.URL(url)
    # The whole header list as urllib sent it, names cased as it cased them (tests/notify/test_webhook_bytes.py):
    # httpx adds none. One change: h11 writes Host first, as RFC 9112 advises.
    headers = [
        ("Accept-Encoding", "identity"),
        ("Content-Length", str(len(body))),
        ("Host", target.netloc.decode("ascii")),
        ("Content-Type", "application/json"),
        ("User-Agent", "wnb-webhook/1"),
        (SIGNATURE_HEADER.title(), sign(settings.secret, body)),
        (DELIVERY_HEADER.title(), delivery),
        ("Connection", "close"),
    ]
    request = httpx.Request("POST", target, content=body, headers=headers)
    try:
        # Redirects are not followed: a webhook that redirects is misconfigured, and the body is signed.
        with httpx.Client(timeout=settings.timeout, follow_redirects=False, trust_env=False, verify=verify) as client:
            answer = client.send(request, stream=True)  # the status line decides; the body is not waited for
            answer.close()
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.WriteError, httpx.WriteTimeout, httpx.PoolTimeout) as error:
        raise DeliveryError(_cause_name(error), permanent=False) from None  # the receiver cannot have it whole
    except (httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError) as error:
        # The request was sent; its answer's status line never came.
        raise MaybeDelivered(f"no answer after the request was sent ({_cause_name(error)})") from None
    except httpx.HTTPError as error:  # an unusable URL or protocol: nothing was sent
        raise DeliveryError(_cause_name(error), permanent=False) from None
    if not answer.is_success:
        transient = answer.status_code >= 500 or answer.status_code == 429
        raise DeliveryError(f"HTTP {answer.status_code}", permanent=not transient)


def _cause_name(error: BaseException) -> str:
    """The name of the socket's own error under httpx's (ConnectionRefusedError), as the outbox recorded it."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError):
            return type(cause).__name__
        cause = cause.__cause__ or cause.__context__
    return type(error).__name__


class WebhookChannel:
    """Rows whose recipient is an http(s) URL: JSON of ids and codes, posted signed; the delivery id is the
    reference."""

    name = "webhook"
    claims = "(recipient LIKE :http_url OR recipient LIKE :https_url)"

    def accepts(self, address: str) -> bool:
        return is_webhook(address)

    def body(self, message: Message) -> str:
        return canonical(
            {
                "notification": message.key,
                "role": message.role,
                "subject": message.subject,
                "queued_at": message.queued_at,
            }
        )

    def send(self, row: Record, settings: Any) -> str:
        post(settings, row.recipient, row.dedupe_key, row.body.encode())
        return str(row.dedupe_key)
