"""The judgement of `poise doctor` (judge.py, judge_session.py) and the parsing it relies
on (facts.py), without a network: observations in, checks out. Certificates are real
(poise's own CA), time is a parameter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import serialization

from poise.certs import ca
from poise.certs.inspect import CertInfo
from poise.doctor import judge, judge_session
from poise.doctor.facts import (
    Connected,
    Handshake,
    Idle,
    Persistence,
    Reply,
    Resolved,
    Upgrade,
    UsageError,
    Verified,
    cookie_header,
    parse_head,
    parse_nameserver,
    parse_resolve,
    parse_url,
    set_cookies,
)
from poise.doctor.report import Status

NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
PASS, WARN, FAIL = Status.PASS, Status.WARN, Status.FAIL
CONFIGURED = Persistence({"SERVERID": {"a": "app/a", "b": "app/b"}})
BARE = Persistence(server_headers=())  # no -f and no server header: cookies only


# --- facts: the URL and the options --------------------------------------------------------


def test_a_url_gives_scheme_host_port_and_path() -> None:
    target = parse_url("https://View.Example:8443/agent?x=1")
    assert (target.scheme, target.host, target.port, target.path) == (
        "https", "view.example", 8443, "/agent?x=1",
    )  # fmt: skip
    assert target.host_header == "view.example:8443" and target.sni == "view.example"
    plain = parse_url("http://[::1]/")
    assert (plain.host, plain.port, plain.host_header, plain.sni) == ("::1", 80, "[::1]", None)
    assert parse_url("view.example").url == "https://view.example"


@pytest.mark.parametrize("url", ["ftp://view.example/", "https://:443/", "https://h:99999/"])
def test_a_url_doctor_cannot_test_is_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError):
        parse_url(url)


def test_resolve_takes_name_addr_and_curls_name_port_addr() -> None:
    assert parse_resolve("view.example:10.1.1.1") == ("view.example", None, "10.1.1.1")
    assert parse_resolve("view.example:443:10.1.1.1") == ("view.example", 443, "10.1.1.1")
    assert parse_resolve("view.example:443:[::1]") == ("view.example", 443, "::1")
    assert parse_resolve("view.example:::1") == ("view.example", None, "::1")
    with pytest.raises(UsageError):
        parse_resolve("view.example")
    with pytest.raises(UsageError):
        parse_resolve("view.example:not-an-address")


def test_nameserver_takes_ip_and_port() -> None:
    assert parse_nameserver("127.0.0.1") == ("127.0.0.1", 53)
    assert parse_nameserver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_nameserver("[::1]:5353") == ("::1", 5353)
    assert parse_nameserver("::1") == ("::1", 53)
    with pytest.raises(UsageError):
        parse_nameserver("dns.example")


def test_a_response_head_and_its_cookies() -> None:
    status, reason, headers = parse_head(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: SERVERID=a|AbCdE; path=/\r\n"
        b"Set-Cookie: gone=; Expires=Thu, 01 Jan 1970 00:00:00 GMT\r\nX-Backend: a"
    )
    assert (status, reason) == (200, "OK")
    reply = Reply(status, reason, headers)
    assert set_cookies(reply.all("set-cookie")) == {"SERVERID": "a|AbCdE"}
    assert cookie_header({"A": "1", "B": "2"}) == "A=1; B=2"
    with pytest.raises(ValueError):
        parse_head(b"SSH-2.0-OpenSSH_9.2")


# --- dns, dns.binds, tcp -------------------------------------------------------------------


def test_dns_passes_with_addresses_and_fails_without() -> None:
    check = judge.judge_dns(Resolved("view.example", "--resolve", ("10.1.1.1",)))
    assert check.status is PASS and check.saw == "view.example -> 10.1.1.1 (--resolve)"
    check = judge.judge_dns(Resolved("view.example", "the system resolver", error="NXDOMAIN"))
    assert check.status is FAIL and "does not resolve" in check.saw and "NXDOMAIN" in check.saw


RESOLVED = Resolved("view.example", "--resolve", ("10.1.1.1",))


def test_binds_pass_when_poise_binds_the_address() -> None:
    check = judge.judge_binds(RESOLVED, 443, ["10.1.1.1"], frozenset(), {})
    assert check is not None and check.status is PASS


def test_binds_fail_when_the_record_points_elsewhere() -> None:
    check = judge.judge_binds(RESOLVED, 443, ["127.0.0.1"], frozenset({"127.0.0.1"}), {})
    assert check is not None and check.status is FAIL
    assert check.saw == (
        "view.example resolves to 10.1.1.1, but poise listens on 127.0.0.1:443 and no VIP "
        "is 10.1.1.1: the DNS record points elsewhere"
    )


def test_a_wildcard_bind_takes_this_hosts_addresses_and_vips() -> None:
    local = frozenset({"10.1.1.1"})
    check = judge.judge_binds(RESOLVED, 443, ["0.0.0.0"], local, {})
    assert check is not None and check.status is PASS and "this host" in check.saw
    check = judge.judge_binds(RESOLVED, 443, ["::"], frozenset(), {"10.1.1.1": "VI_1"})
    assert check is not None and check.status is PASS and "VI_1" in check.saw
    check = judge.judge_binds(RESOLVED, 443, ["0.0.0.0"], frozenset(), {})
    assert check is not None and check.status is FAIL and "run poise doctor there" in check.advice
    loopback = Resolved("view.example", "--resolve", ("127.0.0.5",))
    check = judge.judge_binds(loopback, 443, ["0.0.0.0"], frozenset(), {})
    assert check is not None and check.status is PASS  # all of 127/8 is this host
    ipv6 = Resolved("view.example", "--resolve", ("::1",))
    check = judge.judge_binds(ipv6, 443, ["0.0.0.0"], frozenset(), {})
    assert check is not None and check.status is FAIL  # 0.0.0.0 takes no IPv6 address
    check = judge.judge_binds(ipv6, 443, ["::"], frozenset(), {})
    assert check is not None and check.status is PASS


def test_a_vip_that_no_bind_takes_fails() -> None:
    check = judge.judge_binds(RESOLVED, 443, ["127.0.0.1"], frozenset(), {"10.1.1.1": "VI_1"})
    assert check is not None and check.status is FAIL
    assert "10.1.1.1 is the VIP of VI_1 but no bind takes it" in check.saw
    assert "bind 10.1.1.1:443" in check.advice


def test_binds_fail_when_no_frontend_binds_the_port() -> None:
    check = judge.judge_binds(RESOLVED, 8443, [], frozenset(), {})
    assert check is not None and check.status is FAIL and "port 8443" in check.saw
    assert judge.judge_binds(Resolved("x", "y"), 443, ["0.0.0.0"], frozenset(), {}) is None


def test_tcp_says_how_long_or_why_not() -> None:
    check = judge.judge_tcp(Connected("10.1.1.1", 443, 0.0123, local="10.0.0.2"))
    assert check.status is PASS and check.saw == "10.1.1.1:443 accepted the connection in 12 ms"
    check = judge.judge_tcp(Connected("::1", 443, 0.001, error="connection refused"))
    assert check.status is FAIL and check.saw.startswith("[::1]:443: connection refused")
    assert "nothing listens" in check.advice
    check = judge.judge_tcp(Connected("10.1.1.1", 443, 5, error="timed out after 5 s"))
    assert "firewall" in check.advice


# --- TLS -----------------------------------------------------------------------------------


def certificate(
    dns: tuple[str, ...] = ("view.example",), ips: tuple[str, ...] = (), days: int = 90
) -> CertInfo:
    authority, key = ca.create_ca("Example CA", NOW - dt.timedelta(days=1))
    cert, _ = ca.issue(authority, key, NOW, dns=dns, ips=ips, days=days)
    return judge.certificate(cert.public_bytes(serialization.Encoding.DER))


def test_handshake_says_protocol_cipher_and_sni() -> None:
    check = judge.judge_handshake(Handshake("view.example", "TLSv1.3", "TLS_AES_128_GCM_SHA256"))
    assert check.status is PASS and "TLSv1.3, TLS_AES_128_GCM_SHA256, SNI view.example" in check.saw
    check = judge.judge_handshake(Handshake(None, error="WRONG_VERSION_NUMBER"))
    assert check.status is FAIL and "no SNI" in check.saw and "ssl crt" in check.advice


def test_chain_names_the_issuer_and_the_store() -> None:
    cert = certificate()
    check = judge.judge_chain(Verified(True, "ca.pem"), cert)
    assert check.status is PASS and check.saw.endswith("verified by --ca ca.pem")
    check = judge.judge_chain(Verified(False, None, "unable to get local issuer certificate"), cert)
    assert check.status is FAIL
    assert check.saw == (
        "untrusted: issued by CN=Example CA, which the system store does not trust "
        "(unable to get local issuer certificate)"
    )
    check = judge.judge_chain(Verified(False, "other.pem"), cert)
    assert "which --ca other.pem does not trust" in check.saw


def test_chain_says_self_signed() -> None:
    cert = replace(certificate(), self_signed=True)
    check = judge.judge_chain(Verified(False, None, "self-signed certificate"), cert)
    assert check.status is FAIL and "self-signed" in check.saw and "poise cert ca" in check.advice


def test_san_passes_for_a_covered_name_and_fails_for_another() -> None:
    cert = certificate(("a.example", "*.view.example"))
    assert judge.judge_san(cert, "A.example").status is PASS
    assert judge.judge_san(cert, "x.view.example").status is PASS
    check = judge.judge_san(cert, "view.example")
    assert check.status is FAIL
    assert (
        check.saw == "the certificate covers a.example, *.view.example; you asked for view.example"
    )
    assert "poise cert issue --dns view.example" in check.advice


def test_san_matches_addresses_only_by_ip_sans() -> None:
    cert = certificate(("view.example",), ("10.1.1.1",))
    assert judge.judge_san(cert, "10.1.1.1").status is PASS
    check = judge.judge_san(certificate(), "10.1.1.1")
    assert check.status is FAIL and "--ip 10.1.1.1" in check.advice


def test_san_warns_when_only_the_common_name_has_the_name() -> None:
    cert = replace(certificate(), dns=(), common_name="view.example")
    check = judge.judge_san(cert, "view.example")
    assert check.status is WARN and "no subjectAltName" in check.saw


def test_expiry_warns_under_30_days_and_fails_when_expired() -> None:
    assert judge.judge_expiry(certificate(days=90), NOW).status is PASS
    check = judge.judge_expiry(certificate(days=10), NOW)
    assert check.status is WARN and "in 10 days" in check.saw
    check = judge.judge_expiry(certificate(days=10), NOW + dt.timedelta(days=12))
    assert check.status is FAIL and check.saw.startswith("expired on")
    check = judge.judge_expiry(certificate(), NOW - dt.timedelta(days=5))
    assert check.status is FAIL and "not valid before" in check.saw


# --- HTTP and which server answered --------------------------------------------------------


def reply(
    status: int = 200, set_cookie: str = "", header: str = "", sent: str = "", error: str = ""
) -> Reply:
    headers: list[tuple[str, str]] = []
    if set_cookie:
        headers.append(("Set-Cookie", f"{set_cookie}; path=/"))
    if header:
        headers.append(("X-Backend", header))
    return Reply(status, "OK" if status == 200 else "Whatever", tuple(headers), 0.003, sent, error)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, PASS), (302, WARN), (403, WARN), (404, WARN), (502, FAIL), (503, FAIL)],
)
def test_http_status(status: int, expected: Status) -> None:
    seen = reply(status)
    if status == 302:
        seen = replace(seen, headers=(("Location", "https://view.example/"),))
    check = judge.judge_http(seen, "/")
    assert check.status is expected and f"GET /: {status}" in check.saw


def test_http_without_a_response_fails() -> None:
    check = judge.judge_http(reply(error="no response within 5 s"), "/")
    assert check.status is FAIL and "no response within 5 s" in check.saw
    assert "try https://" not in check.advice
    assert "try https://" in judge.judge_http(reply(error="closed"), "/", tls=False).advice


def test_server_by_cookie_mapped_with_the_configuration() -> None:
    check = judge_session.judge_server(reply(set_cookie="SERVERID=b|AbCdE|AbCdE"), CONFIGURED)
    assert check is not None and check.status is PASS and check.saw == "app/b (cookie SERVERID=b)"
    check = judge_session.judge_server(reply(set_cookie="SERVERID=zz"), CONFIGURED)
    assert (
        check is not None and check.status is WARN and "no server of the configuration" in check.saw
    )


def test_server_by_cookie_or_header_without_the_configuration() -> None:
    check = judge_session.judge_server(reply(set_cookie="SRV=s1~app"), Persistence())
    assert check is not None and check.saw == "SRV=s1"  # prefix mode: SERVER~APPVALUE
    check = judge_session.judge_server(reply(header="web2"), Persistence())
    assert check is not None and check.status is PASS and check.saw.startswith("x-backend: web2")
    check = judge_session.judge_server(reply(), Persistence())
    assert check is not None and check.status is WARN and "cannot tell" in check.saw


def sticky_run(servers: list[str], cookie: bool, header: bool) -> list[Reply]:
    """What the sticky probe sees: the first reply sets the cookie, the others send it (and
    get a new one when the balancer moved them)."""
    replies: list[Reply] = []
    jar = ""
    for server in servers:
        value = f"SERVERID={server}" if cookie else ""
        set_cookie = value if cookie and value != jar else ""
        replies.append(reply(set_cookie=set_cookie, header=server if header else "", sent=jar))
        jar = value or jar
    return replies


def test_sticky_passes_when_every_request_stays_on_one_server() -> None:
    check = judge_session.judge_sticky(
        sticky_run(["a"] * 10, cookie=True, header=False), CONFIGURED
    )
    assert check.status is PASS
    assert check.saw == "10 requests with the cookie all went to app/a"


def test_sticky_fails_when_requests_with_the_cookie_move() -> None:
    servers = ["a", "b", "c", "a", "b", "c", "a", "b", "c", "a"]
    check = judge_session.judge_sticky(
        sticky_run(servers, cookie=False, header=True), Persistence()
    )
    assert check.status is FAIL
    assert check.saw.startswith(
        "10 requests with the cookie went to 3 servers (the balancer set no persistence "
        "cookie): persistence is not working (seed: sessions must be sticky)"
    )
    assert "cookie SERVERID insert" in check.advice
    # The balancer set a cookie, but ignored it: the header shows the moves.
    check = judge_session.judge_sticky(sticky_run(["a", "b"], cookie=True, header=True), CONFIGURED)
    assert check.status is FAIL and "2 servers: persistence" in check.saw


def test_sticky_warns_when_it_cannot_tell_or_no_cookie_was_set() -> None:
    check = judge_session.judge_sticky(sticky_run(["a"] * 3, cookie=False, header=False), BARE)
    assert check.status is WARN and "cannot tell" in check.saw
    check = judge_session.judge_sticky(
        sticky_run(["a"] * 3, cookie=False, header=True), Persistence()
    )
    assert check.status is WARN and "set no persistence cookie" in check.saw


def test_sticky_fails_on_errors() -> None:
    replies = [reply(), reply(503)]
    check = judge_session.judge_sticky(replies, Persistence())
    assert check.status is FAIL and check.saw.startswith("request 2 failed: 503")


def test_spread_passes_over_several_servers_and_warns_on_one() -> None:
    replies = [reply(set_cookie=f"SERVERID={s}") for s in "abab"]
    check = judge_session.judge_spread(replies, CONFIGURED)
    assert check.status is PASS and check.saw.endswith("2 servers: app/a x2, app/b x2")
    check = judge_session.judge_spread([reply(header="a")] * 4, Persistence())
    assert (
        check.status is WARN and "all 4 requests without a cookie went to x-backend: a" in check.saw
    )
    check = judge_session.judge_spread([reply()] * 4, Persistence())
    assert check.status is WARN and "cannot tell" in check.saw


# --- WebSocket -----------------------------------------------------------------------------


def test_websocket_passes_with_101_and_an_answer() -> None:
    seen = Upgrade("/ws", 101, "Switching Protocols", seconds=0.002, sent="hi", answer="a: hi")
    check = judge_session.judge_websocket(seen, Persistence())
    assert check.status is PASS and "a message made the round trip" in check.saw


def test_websocket_refused_is_blocked() -> None:
    check = judge_session.judge_websocket(Upgrade("/ws", 403, "Forbidden"), Persistence())
    assert check.status is FAIL
    assert check.saw == (
        "the upgrade got 403 Forbidden from the balancer or server: WebSockets are blocked"
    )
    assert "http-request deny" in check.advice and "timeout tunnel" in check.advice
    from_server = Upgrade("/ws", 400, "Bad Request", headers=(("X-Backend", "a"),))
    assert (
        "from the server (x-backend: a)"
        in judge_session.judge_websocket(from_server, Persistence()).saw
    )
    check = judge_session.judge_websocket(Upgrade("/ws", error="connection refused"), Persistence())
    assert check.status is FAIL and "WebSockets are blocked" in check.saw


def test_websocket_closed_or_silent_after_101() -> None:
    closed = Upgrade("/ws", 101, "Switching Protocols", sent="hi", closed=True)
    assert judge_session.judge_websocket(closed, Persistence()).status is FAIL
    silent = Upgrade("/ws", 101, "Switching Protocols", sent="hi")
    assert judge_session.judge_websocket(silent, Persistence()).status is WARN


def test_idle_websocket() -> None:
    check = judge_session.judge_idle(Idle(30.0, answer="a: still"), None)
    assert check.status is PASS and "still open after 30 s idle" in check.saw
    cause = "timeout client 30s (frontend fe) closed it"
    check = judge_session.judge_idle(Idle(60.0, closed_after=30.04), cause)
    assert check.status is FAIL and check.saw == "closed after 30.0 s idle (wanted 60 s)"
    assert check.advice == cause
    check = judge_session.judge_idle(Idle(60.0, closed_after=30.04), None)
    assert "timeout tunnel" in check.advice
    assert judge_session.judge_idle(Idle(5.0), None).status is WARN
