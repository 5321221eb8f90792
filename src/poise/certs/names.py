"""Host names against certificate names, as TLS clients and HAProxy's SNI selection
compare them (RFC 6125 section 6.4). Pure.

- Names compare case-insensitively, and a trailing dot is not part of a name.
- A wildcard is only a whole left-most label (`*.example.org`): it stands for exactly one
  label, so it matches `www.example.org` but neither `example.org` nor `a.b.example.org`
  (6.4.3; HAProxy's `crt` documentation says the same). Partial wildcards (`w*.example.org`)
  and wildcards over a public suffix-like single label (`*.org`) match nothing.
- An IP address is only matched by an IP address SAN, never by a DNS name (6.2.1).
- The subject's CN is a name only when the certificate has no DNS SAN (6.4.4).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def normalize(name: str) -> str:
    """A DNS name as compared: lower case, without the trailing dot."""
    return name.strip().rstrip(".").lower()


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def is_wildcard(pattern: str) -> bool:
    return pattern.startswith("*.")


def wildcard_ok(pattern: str) -> bool:
    """`*.example.org`: a wildcard label followed by at least two labels, none empty, no
    other `*`."""
    if not is_wildcard(pattern):
        return False
    rest = pattern[2:].split(".")
    return len(rest) >= 2 and all(rest) and "*" not in pattern[2:]


def matches(pattern: str, host: str) -> bool:
    """Does a certificate name (or an SNI filter) match a host name?"""
    pattern, host = normalize(pattern), normalize(host)
    if not pattern or not host:
        return False
    if is_wildcard(pattern):
        if not wildcard_ok(pattern):
            return False
        label, dot, parent = host.partition(".")
        return bool(dot) and bool(label) and parent == pattern[2:]
    if "*" in pattern:
        return False  # partial wildcards are not honoured (RFC 6125 6.4.3, MAY)
    return pattern == host


def ip_matches(addresses: Iterable[str], host: str) -> bool:
    try:
        wanted = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    for address in addresses:
        try:
            if ipaddress.ip_address(address) == wanted:
                return True
        except ValueError:
            continue
    return False


def host_matches(
    dns: Iterable[str], ips: Iterable[str], common_name: str | None, host: str
) -> bool:
    """Is `host` (a DNS name or an IP address) one of a certificate's names? `dns` and
    `ips` are its SANs; `common_name` counts only without DNS SANs."""
    if is_ip(host):
        return ip_matches(ips, host)
    names = list(dns)
    if not names and common_name:
        names = [common_name]
    return any(matches(name, host) for name in names)
