"""Which IP addresses a webhook may connect to: the public internet only, unless its URI says allow_private=true.

A webhook URL is configuration, but what its host name resolves to is decided by whoever runs its DNS, at each
lookup. Without this check a name pointing inside the network (or rebound to such an address between two
lookups) would make the relay send its requests, and the event it carries, to the function's own neighbours:
the cloud's instance metadata service (169.254.169.254 on AWS and most clouds, 100.100.100.200 on Alibaba Cloud),
a VPC-internal service, a loopback port. The rule follows the IANA special-purpose address registries
(https://www.iana.org/assignments/iana-ipv4-special-registry/ and iana-ipv6-special-registry/), which
Python's ``ipaddress`` ``is_global`` implements: an address that is not globally reachable is refused. IPv6
forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``,
Teredo) are judged by the IPv4 address they carry too, so that ``::ffff:127.0.0.1`` is loopback.

Pure (no I/O): webhook.py resolves the name and checks every address before each connection.
"""

from __future__ import annotations

import ipaddress

_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix: the last 32 bits are IPv4
# The instance metadata services (AWS's IPv4 and IPv6 addresses, Alibaba Cloud's 100.100.100.200): none is global
# anyway; they are named so that the refusal says what they are.
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("100.100.100.200"),
             ipaddress.ip_address("fd00:ec2::254")}  # fmt: skip
# Not globally reachable per the IANA registries, but ``is_global`` on older Pythons (3.12.1 here; fixed in 3.12.4
# and 3.13) says they are: IETF protocol assignments 192.0.0.0/24 (only 192.0.0.9 and 192.0.0.10 are global),
# the IPv6 documentation prefix 3fff::/20 (RFC 9637), and the deprecated site-local fec0::/10 (RFC 3879).
_NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in ("192.0.0.0/24", "3fff::/20", "fec0::/10"))
_GLOBAL_EXCEPTIONS = {ipaddress.ip_address("192.0.0.9"), ipaddress.ip_address("192.0.0.10")}


def refusal(address: str) -> str | None:
    """Why a webhook may not connect to ``address`` without allow_private=true (None: it may). ``address`` is an
    IP address in text (an IPv6 one may carry a ``%zone``); anything that does not parse as one is refused."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # the socket connects to the IPv4 address itself: judge that one
    for candidate in (ip, *_embedded(ip)):
        reason = _reason(candidate)
        if reason is not None:
            return reason if candidate is ip else f"{reason} ({candidate} inside {ip})"
    return None


def _embedded(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    carried = [ip.sixtofour, ip.teredo[1] if ip.teredo else None]
    if ip in _NAT64:
        carried.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [c for c in carried if c is not None]


def _reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if ip in _METADATA:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private and not ip.is_global:
        return "a private address"
    if any(ip in net for net in _NOT_GLOBAL) and ip not in _GLOBAL_EXCEPTIONS:
        return "not a public address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved or not ip.is_global:
        return "not a public address"
    return None
