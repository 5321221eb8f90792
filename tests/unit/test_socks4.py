"""The SOCKS4 codec (core/socks4.py) and the `socks4` server option, as HAProxy 2.6 reads
it (tests/io/test_socks4.py compares the bytes on the wire with HAProxy's)."""

from __future__ import annotations

import pytest

from poise.config.haproxy import parse
from poise.core import socks4

BASE = "defaults\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n"


def test_the_connect_request_and_the_reply() -> None:
    assert socks4.request("10.1.2.3", 8080) == b"\x04\x01\x1f\x90\x0a\x01\x02\x03HAProxy\x00"
    with pytest.raises(ValueError, match="IPv4 addresses only"):
        socks4.request("::1", 80)
    assert socks4.refusal(b"\x00\x5a" + bytes(6)) is None
    assert socks4.refusal(b"\x00\x5b" + bytes(6)) == (
        "the SOCKS4 proxy refused the connection (code 91)"
    )
    assert socks4.refusal(b"\x00") == "the SOCKS4 proxy closed before its reply"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1:1080", ("127.0.0.1", 1080)), ("proxy.test:9050", ("proxy.test", 9050))],
)
def test_the_option_takes_an_address_and_a_port(value: str, expected: tuple[str, int]) -> None:
    config, problems = parse(
        [("s.cfg", BASE + f"backend b\n    server s 127.0.0.1:80 socks4 {value}\n")], {}
    )
    assert config is not None, problems
    assert config.proxies[0].servers[0].socks4 == expected


def test_a_missing_port_is_haproxys_error() -> None:
    _, problems = parse([("s.cfg", BASE + "backend b\n    server s 127.0.0.1:80 socks4 bad\n")], {})
    assert [str(p) for p in problems] == [
        "s.cfg:6: error: 'server': option 'socks4': missing port specification in 'bad'"
    ]
