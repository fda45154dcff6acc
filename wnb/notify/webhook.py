"""Post one outbox row to a webhook, signed with HMAC-SHA256, and say whether a failure is worth retrying.

The receiver checks `X-WNB-Signature: sha256=<hex>` (HMAC-SHA256 of the raw body under the shared webhook
secret) and de-duplicates on `X-WNB-Delivery` (the outbox row's key). Failing to connect or to send the request,
5xx and 429 are transient (retried with backoff by wnb/notify/outbox.py); any other 4xx, or a redirect, is permanent.
A request sent whole whose answer never comes (a timeout, the connection cut) may have been received: that is
neither, and the row is never posted again (`uncertain`), since a receiver need not de-duplicate.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is misconfigured: do not follow it with the signed body."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def is_webhook(address: str) -> bool:
    return address.startswith(("https://", "http://"))


def host_of(url: str) -> str:
    """scheme://host[:port] of a webhook URL, without the path or query that may carry a token."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0].rsplit('@', 1)[-1]}"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(settings: WebhookSettings, url: str, delivery: str, body: bytes) -> None:
    """POST `body` (JSON) to `url`; raise DeliveryError unless the answer is 2xx, MaybeDelivered if none came."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "wnb-webhook/1",
            SIGNATURE_HEADER: sign(settings.secret, body),
            DELIVERY_HEADER: delivery,
        },
    )
    try:
        answer = _opener.open(request, timeout=settings.timeout)
    except urllib.error.HTTPError as error:  # an answer, not 2xx
        transient = error.code >= 500 or error.code == 429
        raise DeliveryError(f"HTTP {error.code}", permanent=not transient) from None
    except urllib.error.URLError as error:
        # urllib wraps what fails while connecting or sending the request: the receiver cannot have it whole.
        reason = error.reason if isinstance(error.reason, OSError) else error
        raise DeliveryError(type(reason).__name__, permanent=False) from None
    except (http.client.HTTPException, OSError) as error:
        # Anything else failed once the request was sent, waiting for the answer's status line.
        raise MaybeDelivered(f"no answer after the request was sent ({type(error).__name__})") from None
    # The 2xx status came: delivered, whatever happens to the rest of the answer.
    with answer, contextlib.suppress(http.client.HTTPException, OSError):
        answer.read()


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
