"""Acknowledgement links (issue 18 part 3): signed, expiring tokens that name one message and nothing else.

A message to a recipient outside the trust carries `{WNB_PUBLIC_URL}/web/ack/{token}`. The token is the message's id
and the link's expiry, signed with an HMAC-SHA256 key derived from the session secret, so it cannot be made or
altered without that secret, and it names no person. It is single-use because the message records its
acknowledgement: a second use finds it acknowledged and changes nothing. Pure: no clock (the caller gives now),
no store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

from wnb.core.errors import WnbError

_CONTEXT = b"wnb acknowledgement link\x00"


class BadLink(WnbError):
    """A link that is not one of wnb's, was altered, or has expired; `expired` tells the last apart."""

    def __init__(self, reason: str, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


def _mac(payload: str, secret: str) -> str:
    key = hashlib.sha256(_CONTEXT + secret.encode("utf-8")).digest()
    digest = hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_token(communication_id: int, expires_at: datetime, secret: str) -> str:
    """The token for message `communication_id`, valid until `expires_at`."""
    payload = f"{communication_id}.{int(expires_at.timestamp())}"
    return f"{payload}.{_mac(payload, secret)}"


def read_token(token: str, secret: str, now: datetime) -> int:
    """The message id a valid, unexpired token names; BadLink otherwise."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or len(token) > 200:
        raise BadLink("this is not an acknowledgement link of wnb's: check it was copied whole")
    payload = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(parts[2], _mac(payload, secret)):
        raise BadLink("this acknowledgement link was altered or is not one of wnb's: check it was copied whole")
    if now.timestamp() > int(parts[1]):
        until = datetime.fromtimestamp(int(parts[1]), UTC)
        raise BadLink(f"this acknowledgement link expired on {until:%Y-%m-%d}", expired=True)
    return int(parts[0])


def link(public_url: str, token: str) -> str:
    """The address a recipient opens: under the trust's public address of wnb."""
    return f"{public_url.rstrip('/')}/web/ack/{token}"
