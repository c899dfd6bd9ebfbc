"""Client address resolution that only trusts X-Forwarded-For from configured proxies."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def _trusted_networks(spec: tuple[str, ...]) -> tuple[ipaddress._BaseNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in spec if cidr.strip())


def _is_trusted(addr: str, networks: tuple[ipaddress._BaseNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip_from(peer: str, forwarded_for: str | None) -> str:
    """The client's address given the socket peer and an X-Forwarded-For value.

    With no trusted proxies the peer is the client, whatever the header says. Otherwise walk the
    header from the right, skipping trusted proxies; the first untrusted hop is the client.
    """
    networks = _trusted_networks(tuple(settings.TRUSTED_PROXIES))
    if not networks or not forwarded_for or not _is_trusted(peer, networks):
        return peer or "unknown"
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


def client_ip(request) -> str:
    """Client address of a Django/DRF request."""
    return client_ip_from(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR"))
