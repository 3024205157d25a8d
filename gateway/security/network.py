"""Addresses: CIDR allow lists, trusted proxies and the caller's real address.

``X-Forwarded-For`` is only believed when the direct peer is a configured
trusted proxy.  Then the header is read from the right: each hop that is
itself a trusted proxy is skipped, and the first one that is not is the
caller (the right-most untrusted address).  Everything to its left was
written by the caller and proves nothing.  A malformed entry stops the
walk at the last trusted hop, so garbage never becomes an address.

Membership answers are cached per address string: the callers of a gateway
are a handful of LC2 proxies, so a call costs one dict lookup.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["Networks", "client_address", "parse_address"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_CACHE_MAX = 4096


def parse_address(text: str) -> IPAddress | None:
    """An IP address from a peer name or a forwarded entry (``[v6]:port``, ``v4:port``)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text.partition("%")[0])  # drop an IPv6 zone id
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class Networks:
    """A set of CIDR networks; ``address in networks`` for a peer or forwarded address."""

    __slots__ = ("_cache", "_nets", "cidrs")

    def __init__(self, cidrs: Iterable[str]) -> None:
        self.cidrs = tuple(cidrs)
        self._nets = tuple(ipaddress.ip_network(c.strip(), strict=False) for c in self.cidrs)
        self._cache: dict[str, bool] = {}

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        hit = self._cache.get(address)
        if hit is None:
            ip = parse_address(address)
            hit = ip is not None and any(ip in net for net in self._nets)
            if len(self._cache) >= _CACHE_MAX:  # many distinct callers: an attack, not LC2
                self._cache.clear()
            self._cache[address] = hit
        return hit

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Networks) and self._nets == other._nets

    def __hash__(self) -> int:
        return hash(self._nets)

    def __repr__(self) -> str:
        return f"Networks({list(self.cidrs)!r})"


def client_address(peer: str, forwarded_for: Iterable[str], trusted: Networks | None) -> str:
    """The caller's address: the peer, or through trusted proxies the right-most untrusted hop."""
    if trusted is None or peer not in trusted:
        return peer
    hops = [h for value in forwarded_for for h in value.split(",")]
    address = peer
    for hop in reversed(hops):
        ip = parse_address(hop)
        if ip is None:
            break
        address = str(ip)
        if address not in trusted:
            break
    return address
