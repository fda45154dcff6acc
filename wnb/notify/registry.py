"""The notification channels wnb delivers through, in the order an address is offered to them."""

from __future__ import annotations

from wnb.notify.channels import Channel
from wnb.notify.email import EmailChannel
from wnb.notify.sharing import FhirChannel, LetterChannel, SecureEmailChannel
from wnb.notify.webhook import WebhookChannel

# Order matters: the sharing channels' addresses have their own prefix (`secure-email:`, `fhir:`, `letter:`); an
# address is a webhook's when it is a URL; e-mail takes every other address.
CHANNELS: dict[str, Channel] = {
    channel.name: channel
    for channel in (SecureEmailChannel(), FhirChannel(), LetterChannel(), WebhookChannel(), EmailChannel())
}


def channel_for(address: str) -> Channel:
    """The channel that delivers to `address`: the first in CHANNELS that accepts it."""
    return next(channel for channel in CHANNELS.values() if channel.accepts(address))
