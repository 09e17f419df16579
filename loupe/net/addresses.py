"""Which hosts and IP addresses a server-side fetch may reach (SSRF policy).

Only globally routable unicast addresses are allowed. Loopback can be allowed for local
development; link-local (which holds the cloud metadata endpoint 169.254.169.254), private,
CGNAT, multicast, reserved and unspecified addresses never are, also when they hide inside an
IPv6 address (IPv4-mapped ``::ffff:a.b.c.d``, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``).
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Names that reach the platform rather than the internet: Azure's metadata.azure.internal and
# *.internal in general (GCP metadata.google.internal, VNet-internal DNS), mDNS, router names.
_FORBIDDEN_SUFFIXES = (".internal", ".local", ".localdomain", ".home.arpa", ".lan", ".intranet")
_LOOPBACK_NAMES = ("localhost",)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why a connection to ``ip`` is refused, or None when it is allowed."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = address_refusal(inner, allow_loopback=allow_loopback)
            return f"{reason} (embedded in the IPv6 address {ip})" if reason else None
        if ip.scope_id:
            return "a scoped (zone) IPv6 address"
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip.is_link_local:
        return "a link-local address (this range holds the cloud metadata service)"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a carrier-grade NAT (shared) address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "an address that is not globally routable"
    return None


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is a literal, else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def host_name_refusal(host: str, *, allow_loopback: bool = False) -> str | None:
    """Why a host *name* (not an IP literal; lower case, IDNA-encoded) is refused, or None.

    Names are only a first filter: every resolved address is checked with address_refusal too.
    """
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return None if allow_loopback else "a loopback host name"
    if "." not in host:
        # single-label names resolve through the machine's search domains, i.e. internally
        return "a single-label host name (use a fully qualified public name)"
    if host.endswith(_FORBIDDEN_SUFFIXES):
        return "an internal host name"
    return None
