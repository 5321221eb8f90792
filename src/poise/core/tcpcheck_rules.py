"""The steps of each protocol check (core/tcpcheck.py runs them): `option tcp-check` from
its `tcp-check` lines, and the checks HAProxy 2.6 builds for `option redis-check`,
`mysql-check`, `pgsql-check`, `smtpchk`, `ldap-check` and `ssl-hello-chk` (their bytes
and expectations as configuration.txt and HAProxy's src/tcpcheck.c describe them; the
texts checked against haproxy 2.6.12 talking to the real servers).

- redis-check sends PING as a RESP array and expects "+PONG"; a wrong answer is "Layer7
  wrong status" with the answer's first line.
- mysql-check without a user reads the server's greeting (the first packet: an error
  packet is "Layer7 wrong status" with the server's error code and text); with `user U`
  it also logs in as U without a password and quits (MySQL 4.1 protocol, or `pre-41`);
  it passes with the server's version as info.
- pgsql-check sends a StartupMessage for `user U` and passes on an AuthenticationOk or a
  password request ("PostgreSQL server is ok"); an ErrorResponse is "Layer7 invalid
  response" with its severity.
- smtpchk expects a 2xx greeting, sends `HELO localhost` (or the configured greeting),
  expects 2xx, then QUIT.
- ldap-check sends an anonymous LDAPv3 bind and expects a successful bind response.
- ssl-hello-chk sends an SSLv3 CLIENT HELLO and expects a TLS handshake or alert record:
  "Layer6 check passed", else "Layer6 invalid response".
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

from poise.config import model_checks as cfg
from poise.core import health
from poise.core.tcpcheck import (
    NEXT,
    Connect,
    Custom,
    Expect,
    Next,
    Program,
    Send,
    Step,
    first_line,
    result,
)


def program(check: cfg.TcpCheck) -> Program:
    """The steps of a backend's protocol check."""
    build = {
        "tcp-check": _tcp_check,
        "redis-check": _redis,
        "mysql-check": _mysql,
        "pgsql-check": _pgsql,
        "smtpchk": _smtp,
        "ldap-check": _ldap,
        "ssl-hello-chk": _ssl_hello,
    }[check.protocol]
    steps = build(check)
    first = steps[0] if steps else None
    if not isinstance(first, Connect):
        # HAProxy adds the connection the rules do not open themselves (step 0).
        steps = [Connect(0, implicit=True), *steps]
    return Program(tuple(steps), plain=check.protocol == "tcp-check")


def _constant(data: bytes) -> Callable[[float], bytes]:
    return lambda now: data


def _tcp_check(check: cfg.TcpCheck) -> list[Step]:
    steps: list[Step] = []
    comment: str | None = None
    for number, rule in enumerate(check.rules, 1):
        if isinstance(rule, cfg.CheckComment):
            comment = rule.text  # names the next rule's failures
            continue
        note = rule.comment if rule.comment is not None else comment
        comment = None
        if isinstance(rule, cfg.CheckConnect):
            steps.append(
                Connect(
                    number,
                    rule.port,
                    rule.addr,
                    rule.linger,
                    rule.default,
                    comment=note,
                    send_proxy=rule.send_proxy,
                )
            )
        elif isinstance(rule, cfg.CheckSend):
            steps.append(Send(number, _constant(rule.data), note))
        else:
            steps.append(_expect(number, rule, note))
    return steps


def _expect(number: int, rule: cfg.CheckExpect, comment: str | None) -> Expect:
    text, regex = b"", None
    if rule.kind == "string":
        text = rule.pattern.encode("utf-8", "surrogateescape")
    elif rule.kind == "binary":
        text = bytes.fromhex(rule.pattern)
    else:
        regex = re.compile(rule.pattern.encode("utf-8", "surrogateescape"))
    on_success, on_error = rule.on_success, rule.on_error
    return Expect(
        number,
        rule.kind,
        text,
        regex,
        negate=rule.negate,
        min_recv=rule.min_recv,
        ok=rule.ok_status or "L7OK",
        error=rule.error_status or "L7RSP",
        timeout=rule.tout_status or "L7TOUT",
        on_success=None if on_success is None else (lambda data: on_success),
        on_error=None if on_error is None else (lambda data: on_error),
        comment=comment,
    )


# -- redis ---------------------------------------------------------------------------------


def _redis(check: cfg.TcpCheck) -> list[Step]:
    return [
        Send(1, _constant(b"*1\r\n$4\r\nPING\r\n")),
        Expect(
            2,
            "string",
            b"+PONG\r\n",
            error="L7STS",
            on_error=first_line,
            on_success=lambda data: "Redis server is ok",
        ),
    ]


# -- mysql ---------------------------------------------------------------------------------


def _mysql_login(check: cfg.TcpCheck) -> bytes:
    """The client's login packet for `user U` (no password), then COM_QUIT."""
    user = (check.user or "").encode("utf-8") + b"\0"
    if check.variant == "pre-41":
        body = bytes.fromhex("0080000001") + user + b"\0"
    else:
        body = bytes.fromhex("0082000000800001") + b"\x21" + bytes(23) + user + b"\0"
    header = struct.pack("<I", len(body))[:3] + b"\x01"
    return header + body + bytes.fromhex("0100000001")


def _mysql_packet(offset_of: int) -> Custom:
    def judge(
        rule: Expect, data: bytes, closed: bool, last: bool, duration_ms: int
    ) -> health.CheckResult | Next | None:
        offset = 0
        if offset_of and len(data) >= 3:
            offset = 4 + int.from_bytes(data[:3], "little")
        if len(data) < offset + 4:
            return result("L7RSP", None, duration_ms) if closed else None
        length = int.from_bytes(data[offset : offset + 3], "little")
        if len(data) < offset + length + 4:
            return result("L7RSP", None, duration_ms) if closed else None
        if data[offset + 4] == 0xFF:  # an error packet: code, then "#SQLSTATE" and text
            code = int.from_bytes(data[offset + 5 : offset + 7], "little")
            info = data[offset + 7 :].split(b"\0", 1)[0].decode("utf-8", "replace")
            return result("L7STS", info, duration_ms, code)
        if not last:
            return NEXT
        version = data[5:].split(b"\0", 1)[0].decode("utf-8", "replace")
        return result(rule.ok, version, duration_ms)

    return judge


def _mysql(check: cfg.TcpCheck) -> list[Step]:
    steps: list[Step] = [Connect(1, linger=True)]
    if check.user is None:
        steps.append(Expect(2, "custom", custom=_mysql_packet(0)))
        return steps
    login = _mysql_login(check)
    steps.append(Send(2, _constant(login)))
    steps.append(Expect(3, "custom", custom=_mysql_packet(0)))
    steps.append(Expect(4, "custom", custom=_mysql_packet(1)))
    return steps


# -- postgresql ----------------------------------------------------------------------------


def _pgsql(check: cfg.TcpCheck) -> list[Step]:
    user = (check.user or "").encode("utf-8")
    startup = struct.pack(">I", 15 + len(user)) + bytes.fromhex("00030000") + b"user\0"
    startup += user + b"\0\0"
    ready = re.compile(rb"^52000000[A-Z0-9]{2}000000(00|02|03|04|05|06|07|09|0A)")
    return [
        Connect(1, linger=True),
        Send(2, _constant(startup)),
        Expect(
            3,
            "rstring",
            regex=re.compile(rb"^E"),
            negate=True,
            min_recv=5,
            on_error=_c_string_at_6,
        ),
        Expect(
            4,
            "rbinary",
            regex=ready,
            min_recv=9,
            error="L7STS",
            on_success=lambda data: "PostgreSQL server is ok",
            on_error=lambda data: "PostgreSQL unknown error",
        ),
    ]


def _c_string_at_6(data: bytes) -> str | None:
    """`res.payload(6,0)` as a text: the ErrorResponse's first field (its severity)."""
    return data[6:].split(b"\0", 1)[0].decode("utf-8", "replace") or None


# -- smtp ----------------------------------------------------------------------------------


def _smtp_code(data: bytes) -> int:
    return int(data[:3]) if data[:3].isdigit() else 0


def _smtp(check: cfg.TcpCheck) -> list[Step]:
    def text(data: bytes) -> str | None:
        return first_line(data, 4, ltrim=True)

    greeting = (check.command + "\r\n").encode("utf-8")
    return [
        Connect(1, linger=True),
        Expect(
            2,
            "rstring",
            regex=re.compile(rb"^[0-9]{3}[ \r]"),
            min_recv=4,
            on_error=first_line,
        ),
        Expect(
            3,
            "rstring",
            regex=re.compile(rb"^2[0-9]{2}[ \r]"),
            min_recv=4,
            error="L7STS",
            on_error=text,
            code=_smtp_code,
        ),
        Send(4, _constant(greeting)),
        Expect(
            5,
            "rstring",
            regex=re.compile(rb"^(2[0-9]{2}-[^\r]*\r\n)*2[0-9]{2}[ \r]"),
            error="L7STS",
            on_error=text,
            on_success=text,
            code=_smtp_code,
        ),
    ]


# -- ldap ----------------------------------------------------------------------------------

_NOT_LDAP = "Not LDAPv3 protocol"


def _ldap_bind_response(
    rule: Expect, data: bytes, closed: bool, last: bool, duration_ms: int
) -> health.CheckResult | Next | None:
    """An LDAPv3 BindResponse (RFC 4511, 4.2.2) with resultCode success (4.1.9)."""
    at = 1
    size = data[at]
    length_bytes = size & 0x7F if size & 0x80 else 0
    if length_bytes not in (0, 2, 4):
        return result("L7RSP", _NOT_LDAP, duration_ms)
    if len(data) < at + 1 + length_bytes:
        return None if not closed else result("L7RSP", None, duration_ms)
    length = int.from_bytes(data[at + 1 : at + 1 + length_bytes], "big") if length_bytes else size
    at += 1 + length_bytes
    if len(data) - at < length:
        return None if not closed else result("L7RSP", None, duration_ms)
    if data[at : at + 4] != b"\x02\x01\x01\x61":
        return result("L7RSP", _NOT_LDAP, duration_ms)
    at += 4
    skip = data[at] & 0x7F if data[at] & 0x80 else 0
    at += 1 + skip
    if data[at : at + 2] != b"\x0a\x01":
        return result("L7RSP", _NOT_LDAP, duration_ms)
    code = data[at + 2]
    if code:
        info = "See RFC: http://tools.ietf.org/html/rfc4511#section-4.1.9"
        return result("L7STS", info, duration_ms, code)
    return result(rule.ok, "Success", duration_ms)


def _ldap(check: cfg.TcpCheck) -> list[Step]:
    return [
        Send(1, _constant(bytes.fromhex("300C020101600702010304008000"))),
        Expect(
            2,
            "rbinary",
            regex=re.compile(rb"^30"),
            min_recv=14,
            on_error=lambda data: _NOT_LDAP,
        ),
        Expect(3, "custom", custom=_ldap_bind_response),
    ]


# -- ssl-hello-chk -------------------------------------------------------------------------

# 39 common SSLv3/TLS 1.0 cipher suites (0x0001-0x001B, 0x002F-0x003A).
_SUITES = b"".join(struct.pack(">H", n) for n in [*range(0x01, 0x1C), *range(0x2F, 0x3B)])


def _client_hello(now: float) -> bytes:
    """An SSLv3 CLIENT HELLO (RFC 2246, A.3/A.4) with the time (`now`, Unix seconds)
    in its random."""
    random = struct.pack(">I", int(now) & 0xFFFFFFFF) + b"HAPROXYSSLCHK\nHAPROXYSSLCHK\n"
    hello = b"\x03\x00" + random + b"\x00" + struct.pack(">H", len(_SUITES)) + _SUITES
    hello += b"\x01\x00"
    handshake = b"\x01" + struct.pack(">I", len(hello))[1:] + hello
    return b"\x16\x03\x00" + struct.pack(">H", len(handshake)) + handshake


def _ssl_hello(check: cfg.TcpCheck) -> list[Step]:
    return [
        Send(1, _client_hello),
        Expect(
            2,
            "rbinary",
            regex=re.compile(rb"^1[56]"),
            min_recv=5,
            ok="L6OK",
            error="L6RSP",
            timeout="L6TOUT",
        ),
    ]
