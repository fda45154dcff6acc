"""Which machines may send HL7 for which source over MLLP, which has no credentials of its own.

Each source (MSH-4, the sending facility) is accepted only from the addresses or networks WNB_MLLP_PEERS
gives it. A source it does not name is accepted, in development, only from this machine (loopback), and in
production from nowhere. Pure: the listener asks with the peer's address and the message's source.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from wnb.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # an IPv4 peer on a dual-stack socket
    return address


@dataclass(frozen=True)
class Peers:
    """The addresses each source may send from; `production` refuses a source given none."""

    allowed: dict[str, tuple[Network, ...]] = field(default_factory=dict)
    production: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Peers:
        allowed = {
            source: tuple(ipaddress.ip_network(network) for network in networks)
            for source, networks in settings.mllp_peers.items()
        }
        return cls(allowed, settings.is_production)

    def refusal(self, source: str, peer: str) -> str | None:
        """Why a message for `source` may not come from `peer` (None: it may)."""
        address = _address(peer)
        named = f"the source {source!r} (MSH-4)" if source else "a message without a sending facility (MSH-4)"
        if source in self.allowed:
            if address is not None and any(address in network for network in self.allowed[source]):
                return None
            return f"{named} may not send from {peer}: it is not among its addresses in WNB_MLLP_PEERS"
        if self.production:
            return f"{named} has no addresses in WNB_MLLP_PEERS: in production nothing is accepted from it"
        if address is not None and address.is_loopback:
            return None
        return (
            f"{named} has no addresses in WNB_MLLP_PEERS: in development it is accepted only from this machine"
            " (loopback)"
        )


def startup_warning(settings: Settings) -> str | None:
    """What an operator starting MLLP in production without WNB_MLLP_PEERS must hear (None: nothing)."""
    if settings.is_production and not settings.mllp_peers:
        return (
            "WNB_MLLP_PEERS is empty: in production every HL7 message over MLLP is refused (AR) and kept as a"
            " reject; set each source's addresses, e.g. WNB_MLLP_PEERS='pas=10.0.0.5,10.0.0.6;lab=10.1.1.1'"
        )
    return None
