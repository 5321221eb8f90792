"""Addresses of `bind`, `server`, `stats socket` and `log` lines."""

from __future__ import annotations

import pytest

from poise.config.address import AddressError, parse_bind, parse_log, parse_server, parse_socket
from poise.config.model import Address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4:80", [Address("ipv4", "1.2.3.4", 80)]),
        (":80", [Address("ipv4", "", 80)]),
        ("*:80", [Address("ipv4", "", 80)]),
        ("0.0.0.0:80", [Address("ipv4", "0.0.0.0", 80)]),
        ("[::1]:80", [Address("ipv6", "::1", 80)]),
        (":::80", [Address("ipv6", "::", 80)]),
        ("2001:db8::1:443", [Address("ipv6", "2001:db8::1", 443)]),
        ("ipv4@:80", [Address("ipv4", "", 80)]),
        ("ipv6@:80", [Address("ipv6", "::", 80)]),
        ("unix@/run/x.sock", [Address("unix", "/run/x.sock", None)]),
        ("unix@relative.sock", [Address("unix", "relative.sock", None)]),
        ("/run/x.sock", [Address("unix", "/run/x.sock", None)]),
        (":80,:443", [Address("ipv4", "", 80), Address("ipv4", "", 443)]),
        ("10.0.0.1:8000-8002", [Address("ipv4", "10.0.0.1", p) for p in (8000, 8001, 8002)]),
        ("127.0.0.1:0", [Address("ipv4", "127.0.0.1", 0)]),  # the system picks the port
        # Inherited from the parent process: the descriptor number, checked when taken.
        ("fd@3", [Address("fd", "3", None)]),
        ("FD@03", [Address("fd", "3", None)]),
        ("sockpair@4", [Address("sockpair", "4", None)]),
        ("fd@3,sockpair@4", [Address("fd", "3", None), Address("sockpair", "4", None)]),
        # A Linux abstract socket: a NUL, then the name (HAProxy 2.6 accepts an empty one).
        ("abns@http-in", [Address("unix", "\0http-in", None)]),
        ("ABNS@", [Address("unix", "\0", None)]),
        ("abns@" + "x" * 107, [Address("unix", "\0" + "x" * 107, None)]),
    ],
)
def test_bind_addresses(text: str, expected: list[Address]) -> None:
    assert parse_bind(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.2.3.4", "missing port"),
        ("1.2.3.4:", "missing port"),
        (":65536", "invalid port '65536'"),
        (":80-70", "invalid port range"),
        (":0-5", "invalid port '0'"),
        ("300.1.1.1:80", "invalid IP address"),
        ("ipv4@[::1]:80", "not an IPV4 address"),
        ("localhost:80", "host names on 'bind' are not implemented yet"),
        # HAProxy 2.6's words.
        ("fd@abc", "file descriptor 'abc' is not a valid integer in 'fd@abc'"),
        ("fd@", "file descriptor '' is not a valid integer in 'fd@'"),
        ("fd@-1", "file descriptor '-1' is not a valid integer"),
        ("fd@3:80", "file descriptor '3:80' is not a valid integer"),
        ("sockpair@x", "file descriptor 'x' is not a valid integer in 'sockpair@x'"),
        ("abnsz@x", "'abnsz@' is not implemented yet"),
        # HAProxy 2.6: "socket path 'abns@xxx...' too long (max 107)".
        ("abns@" + "x" * 108, "socket path 'abns@x+' too long \\(max 107\\)"),
        ("quic4@:443", "'quic4@' is not implemented yet"),
        ("bogus@:80", "unknown address prefix"),
        (":80,", "empty address"),
        ("[::1:80", "missing ']'"),
    ],
)
def test_bad_bind_addresses(text: str, message: str) -> None:
    with pytest.raises(AddressError, match=message.replace("[", "\\[")):
        parse_bind(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1:80", Address("ipv4", "10.0.0.1", 80)),
        ("10.0.0.1", Address("ipv4", "10.0.0.1", None)),  # the client's port
        ("10.0.0.1:0", Address("ipv4", "10.0.0.1", None)),
        ("gw.example.com:443", Address("ipv4", "gw.example.com", 443)),
        ("gw.example.com", Address("ipv4", "gw.example.com", None)),
        ("ipv6@gw.example.com:443", Address("ipv6", "gw.example.com", 443)),
        ("[2001:db8::1]", Address("ipv6", "2001:db8::1", None)),
        ("[2001:db8::1]:8080", Address("ipv6", "2001:db8::1", 8080)),
        ("unix@/run/app.sock", Address("unix", "/run/app.sock", None)),
        ("sockpair@5", Address("sockpair", "5", None)),
        ("abns@http-in", Address("unix", "\0http-in", None)),
        # Transparent servers: the address the client connected to.
        ("0.0.0.0:80", Address("ipv4", "0.0.0.0", 80)),
        ("*", Address("ipv4", "0.0.0.0", None)),
        (":80", Address("ipv4", "0.0.0.0", 80)),
        ("*:+1000", Address("ipv4", "0.0.0.0", None, 1000)),
        ("[::]:8080", Address("ipv6", "::", 8080)),
        ("ipv6@:80", Address("ipv6", "::", 80)),
        # Port mapping: the client's destination port plus or minus N.
        ("10.0.0.1:+1", Address("ipv4", "10.0.0.1", None, 1)),
        ("10.0.0.1:-80", Address("ipv4", "10.0.0.1", None, -80)),
    ],
)
def test_server_addresses(text: str, expected: Address) -> None:
    assert parse_server(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("::", "invalid IP address ':'"),  # HAProxy: could not resolve address ':'
        ("10.0.0.1:+", "invalid port '\\+'"),
        ("*:-70000", "invalid port '-70000'"),
        ("10.0.0.1:http", "invalid port"),
        ("a..b", "neither an IP address nor a host name"),
        ("fd@3", "a file descriptor is not acceptable here in 'fd@3'"),
        ("sockpair@", "is not a valid integer"),
    ],
)
def test_bad_server_addresses(text: str, message: str) -> None:
    with pytest.raises(AddressError, match=message):
        parse_server(text)


def test_transparent_and_mapped_servers_read_as_written() -> None:
    assert parse_server("*:+1000").transparent
    assert str(parse_server("*:+1000")) == "0.0.0.0:+1000"
    assert str(parse_server("10.0.0.1:-80")) == "10.0.0.1:-80"
    assert not parse_server("10.0.0.1:80").transparent


def test_stats_socket_is_one_address() -> None:
    assert parse_socket("/run/poise/admin.sock") == Address("unix", "/run/poise/admin.sock", None)
    assert parse_socket("ipv4@127.0.0.1:9999") == Address("ipv4", "127.0.0.1", 9999)
    assert parse_socket("fd@7") == Address("fd", "7", None)
    assert str(Address("fd", "7", None)) == "fd@7"
    assert Address("sockpair", "7", None).inherited_fd == 7
    assert Address("unix", "/x", None).inherited_fd is None
    with pytest.raises(AddressError, match="exactly one address"):
        parse_socket(":80-81")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stdout", ("stdout", "", 0)),
        ("stderr", ("stderr", "", 0)),
        ("fd@1", ("stdout", "", 0)),
        ("127.0.0.1", ("udp", "127.0.0.1", 514)),
        ("127.0.0.1:1514", ("udp", "127.0.0.1", 1514)),
        ("udp@10.0.0.1", ("udp", "10.0.0.1", 514)),
        ("udp4@10.0.0.1:600", ("udp", "10.0.0.1", 600)),
        ("[::1]:515", ("udp", "::1", 515)),
        ("::1:", ("udp", "::1", 514)),
        ("/dev/log", ("unix", "/dev/log", 0)),
        ("unix@/dev/log", ("unix", "/dev/log", 0)),
    ],
)
def test_log_targets(text: str, expected: tuple[str, str, int]) -> None:
    assert parse_log(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ring@buf", "not implemented yet"),
        ("fd@3", "not implemented yet"),
        ("udp4@[::1]", "not an IPV4 address"),
        ("127.0.0.1:0", "invalid port"),
    ],
)
def test_bad_log_targets(text: str, message: str) -> None:
    with pytest.raises(AddressError, match=message):
        parse_log(text)


def test_abstract_socket_is_shown_as_written() -> None:
    address = parse_socket("abns@admin")
    assert address.host == "\0admin" and str(address) == "abns@admin"
    assert str(parse_socket("/run/admin.sock")) == "unix@/run/admin.sock"
