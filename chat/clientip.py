"""The address a request comes from, for per-address throttles, which a client cannot forge.

daphne (`proxy_forwarded_address_header`, chat/node.py) puts the *first* address of
X-Forwarded-For into the scope's `client` whoever sent the header, so `REMOTE_ADDR` is any
client's own claim. Here the direct peer counts (the node hands it over in the scope
under `PEER_EXTENSION`), and X-Forwarded-For only when that peer is a trusted proxy
(`CHAT_TRUSTED_PROXIES`: our own balancer on loopback or a private network), and then
only its last address, the one that balancer wrote. Caddy replaces the header of a client
it does not trust, and our nginx configs set it to `$remote_addr`, so through either the
last address is the client's as the balancer saw it.

Whoever can reach a node directly from a trusted network can still name any address: in
production only the balancer can; on a laptop everything is loopback.
"""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest

from chatcluster.conf import chat_settings

# The scope extension under which the node puts the real peer's address (chat/node.py).
PEER_EXTENSION = "chat.peer"
# One IPv6 host usually holds a whole /64 and can pick any address in it: count the /64.
IPV6_PREFIX = 64


def client_address(request: HttpRequest) -> str:
    """The client's address as a throttle key: an IPv4 address or an IPv6 /64, "" if unknown."""
    peer = _parse(_peer(request))
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and peer is not None and any(peer in net for net in chat_settings.CHAT_TRUSTED_PROXIES):
        last = _parse(forwarded.rsplit(",", 1)[-1])
        if last is not None:
            return _key(last)
    return _key(peer) if peer is not None else ""


def _peer(request: HttpRequest) -> str:
    scope = getattr(request, "scope", None) or {}
    peer = (scope.get("extensions") or {}).get(PEER_EXTENSION)
    # Not under our node (a test client, another server): that server's REMOTE_ADDR.
    return str(peer or request.META.get("REMOTE_ADDR") or "")


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _key(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)
