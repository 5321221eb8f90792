"""Addresses as haproxy.cfg writes them, for `bind`, `server`, `stats socket` and `log`.

Pure: IP literals are checked here, DNS names are only checked for shape (load.py resolves
server names when poise starts). Every function raises AddressError (a ValueError) with a
message fit for a diagnostic.

HAProxy's rules (configuration.txt 4.2 "bind" and "server", 3.1 "log"):
- `ip:port`, `:port` and `*:port` (every IPv4 address), `[ipv6]:port`, or an IPv6 address
  whose port is the number after the last colon (`:::80` is every IPv6 address, port 80);
- a family prefix forces the family: `ipv4@`, `ipv6@`, `unix@PATH`; a path starting with `/`
  is a unix socket;
- `bind` takes port ranges `A-B` and several comma-separated addresses; poise also takes
  port 0 on `bind` (the system chooses a free port), which HAProxy refuses;
- a server may be a DNS name and may omit its port (it then uses the port the client
  connected to); a log target defaults to UDP port 514.
- `fd@N` (`bind`, `stats socket`): the socket on descriptor N, inherited from the parent
  process (systemd socket activation, test harnesses); `sockpair@N` (`bind`, `server`): one
  end of a unix socketpair over which connections are passed as descriptors (SCM_RIGHTS).
  N is checked here for shape only: whether it is an open socket is known when poise
  starts (net/inherited.py), or when `poise check` runs, as with `haproxy -c`.
- `abns@NAME` (`bind`, `server`, `stats socket`): a Linux abstract unix socket, kept as a
  unix address whose path starts with a NUL byte; HAProxy 2.6 pads the name with NULs to
  the whole sun_path, so the name is at most 107 bytes (net/listener.py pads it).
Prefixes HAProxy knows but poise does not implement (`abnsz@`, QUIC...) are reported as
such.
"""

from __future__ import annotations

import ipaddress
import re

from poise.config.model import Address, AddressFamily, LogKind


class AddressError(ValueError):
    """An address that cannot be used, with the reason."""


_FAMILY_PREFIXES: dict[str, AddressFamily] = {
    "ipv4@": "ipv4",
    "ipv6@": "ipv6",
    "tcp@": "ipv4",
    "tcp4@": "ipv4",
    "tcp6@": "ipv6",
    "unix@": "unix",
    "uxst@": "unix",
    "abns@": "unix",
}
# sun_path holds 108 bytes: a path and its NUL, or an abstract name after its NUL.
_SUN_PATH_MAX = 107
_INHERITED_PREFIXES: dict[str, AddressFamily] = {"fd@": "fd", "sockpair@": "sockpair"}
# Known to HAProxy, not implemented by poise.
_UNIMPLEMENTED_PREFIXES = (
    "abnsz@",
    "udp@",
    "udp4@",
    "udp6@",
    "quic4@",
    "quic6@",
    "uxdg@",
    "mptcp@",
    "mptcp4@",
    "mptcp6@",
    "rhttp@",
)
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_DOTTED_NUMBERS = re.compile(r"[0-9.]+")
SYSLOG_PORT = 514


def _split_prefix(text: str) -> tuple[str, str]:
    """("ipv4@", "1.2.3.4:80") or ("", text); raises on an unimplemented prefix."""
    at = text.find("@")
    if at < 0:
        return "", text
    prefix = text[: at + 1].lower()
    if prefix in _FAMILY_PREFIXES or prefix in _INHERITED_PREFIXES:
        return prefix, text[at + 1 :]
    if prefix in _UNIMPLEMENTED_PREFIXES:
        raise AddressError(f"address prefix '{prefix}' is not implemented yet in poise")
    raise AddressError(f"unknown address prefix '{prefix}' in '{text}'")


def _unix(prefix: str, rest: str, whole: str) -> Address:
    """`unix@PATH`, `/PATH` or `abns@NAME` (host "\\0NAME")."""
    if prefix == "abns@":
        if len(rest.encode()) > _SUN_PATH_MAX:
            raise AddressError(f"socket path '{whole}' too long (max {_SUN_PATH_MAX})")
        return Address("unix", "\0" + rest, None)
    if not rest:
        raise AddressError(f"missing socket path in '{whole}'")
    return Address("unix", rest, None)


def _inherited(prefix: str, number: str, whole: str) -> Address:
    """`fd@N` / `sockpair@N`: N a descriptor number (HAProxy's words when it is not)."""
    if not number.isdigit() or not number.isascii():
        raise AddressError(f"file descriptor '{number}' is not a valid integer in '{whole}'")
    return Address(_INHERITED_PREFIXES[prefix], str(int(number)), None)


def split_host_port(text: str) -> tuple[str, str | None]:
    """Split `host:port`, `[v6]:port`, `[v6]`, `v6:port` (last colon) or `host`."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise AddressError(f"missing ']' in '{text}'")
        host, rest = text[1:end], text[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise AddressError(f"unexpected '{rest}' after ']' in '{text}'")
        return host, rest[1:]
    if ":" not in text:
        return text, None
    host, _, port = text.rpartition(":")
    return host, port


def _port(text: str, whole: str, lowest: int = 1) -> int:
    if not text.isdigit() or not text.isascii() or not lowest <= int(text) <= 65535:
        raise AddressError(f"invalid port '{text}' in '{whole}' ({lowest} to 65535)")
    return int(text)


def _ip_family(host: str, forced: AddressFamily | None, whole: str) -> tuple[AddressFamily, str]:
    """Check an IP literal (or "" / "*" for every address) against a forced family."""
    if host in ("", "*"):
        return (forced or "ipv4"), ("::" if forced == "ipv6" else "")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise AddressError(f"invalid IP address '{host}' in '{whole}'") from None
    family: AddressFamily = "ipv4" if ip.version == 4 else "ipv6"
    if forced is not None and forced != family:
        raise AddressError(f"'{host}' is not an {forced.upper()} address in '{whole}'")
    return family, str(ip) if family == "ipv6" else host


def is_hostname(host: str) -> bool:
    """A DNS name (not an IP address)."""
    return _is_hostname(host)


def _is_hostname(host: str) -> bool:
    return _HOSTNAME.fullmatch(host) is not None and not _DOTTED_NUMBERS.fullmatch(host)


def parse_bind(text: str) -> list[Address]:
    """A `bind` address list: `[addr]:port[-end][,...]` or `/path[,...]`."""
    addresses: list[Address] = []
    for part in text.split(","):
        if not part:
            raise AddressError(f"empty address in '{text}'")
        prefix, rest = _split_prefix(part)
        if prefix in _INHERITED_PREFIXES:
            addresses.append(_inherited(prefix, rest, part))
            continue
        forced = _FAMILY_PREFIXES.get(prefix)
        if forced == "unix" or (not prefix and rest.startswith("/")):
            addresses.append(_unix(prefix, rest, part))
            continue
        host, ports = split_host_port(rest)
        if ports is None or ports == "":
            raise AddressError(f"missing port in '{part}'")
        if host not in ("", "*") and _is_hostname(host):
            raise AddressError(
                f"host names on 'bind' are not implemented yet in poise: "
                f"write an IP address instead of '{host}'"
            )
        family, host = _ip_family(host, forced, part)
        low_text, dash, high_text = ports.partition("-")
        # A single port 0 lets the system choose one (poise's own: tests use it).
        low = _port(low_text, part, lowest=1 if dash else 0)
        high = _port(high_text, part) if dash else low
        if high < low:
            raise AddressError(f"invalid port range '{ports}' in '{part}'")
        addresses.extend(Address(family, host, port) for port in range(low, high + 1))
    return addresses


def parse_server(text: str) -> Address:
    """A `server` address: an IP or DNS name with an optional port, or a unix path."""
    prefix, rest = _split_prefix(text)
    if prefix == "fd@":
        raise AddressError(f"a file descriptor is not acceptable here in '{text}'")
    if prefix == "sockpair@":
        return _inherited(prefix, rest, text)
    forced = _FAMILY_PREFIXES.get(prefix)
    if forced == "unix" or (not prefix and rest.startswith("/")):
        return _unix(prefix, rest, text)
    host, port_text = split_host_port(rest)
    port: int | None = None
    offset = 0
    if port_text:
        digits = port_text[1:] if port_text[0] in "+-" else port_text
        if not digits.isdigit() or not digits.isascii() or int(digits) > 65535:
            raise AddressError(f"invalid port '{port_text}' in '{text}'")
        if digits is port_text:
            # Port 0 is HAProxy's "no port": use the port the client connected to.
            port = int(port_text) or None
        else:  # `+N`/`-N`: the port the client connected to, plus or minus N
            offset = int(port_text)
    if _is_hostname(host) and ":" not in host:
        return Address(forced or "ipv4", host, port, offset)
    try:
        family, host = _ip_family(host, forced, text)
    except AddressError:
        if forced is None and ":" not in host:
            raise AddressError(f"'{host}' is neither an IP address nor a host name") from None
        raise
    # No host, `*`, 0.0.0.0 or ::: the client's own destination (model.Address.transparent).
    return Address(family, host or "0.0.0.0", port, offset)


def parse_socket(text: str) -> Address:
    """A `stats socket` address: a unix path, or one `ip:port`."""
    addresses = parse_bind(text)
    if len(addresses) != 1:
        raise AddressError(f"'{text}' must be exactly one address")
    return addresses[0]


def parse_log(text: str) -> tuple[LogKind, str, int]:
    """A `log` target: (kind, address, port) with kind stdout, stderr, unix or udp."""
    lowered = text.lower()
    if lowered in ("stdout", "fd@1"):
        return "stdout", "", 0
    if lowered in ("stderr", "fd@2"):
        return "stderr", "", 0
    if text.startswith("/"):
        return "unix", text, 0
    at = text.find("@")
    prefix = text[: at + 1].lower() if at >= 0 else ""
    rest = text[at + 1 :] if at >= 0 else text
    udp_families: dict[str, AddressFamily | None] = {
        "": None,
        "udp@": None,
        "udp4@": "ipv4",
        "ipv4@": "ipv4",
        "udp6@": "ipv6",
        "ipv6@": "ipv6",
    }
    if prefix == "unix@":
        if not rest:
            raise AddressError(f"missing socket path in '{text}'")
        return "unix", rest, 0
    if prefix not in udp_families:
        if prefix in ("fd@", "ring@", "tcp@", "tcp4@", "tcp6@", "abns@"):
            raise AddressError(f"log target '{text}' is not implemented yet in poise")
        raise AddressError(f"unknown address prefix '{prefix}' in '{text}'")
    host, port_text = split_host_port(rest)
    if not host or host == "*":
        raise AddressError(f"missing address in '{text}'")
    if _is_hostname(host) and ":" not in host:
        # A name: the loader resolves it once, at startup, as HAProxy does (load.py).
        return "udp", host, _port(port_text, text) if port_text else SYSLOG_PORT
    _, host = _ip_family(host, udp_families[prefix], text)
    port = _port(port_text, text) if port_text else SYSLOG_PORT
    return "udp", host, port
