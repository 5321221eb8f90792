"""One `poise doctor` run: the probes in a client's order (name, TCP, TLS, HTTP, cookies,
WebSocket), each observation judged as it comes (judge.py), and with `-f CONFIG` the
configuration's own checks (static.py). A probe that finds the service unreachable ends the
live part: what follows could only fail for the same reason.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

from poise.config.diagnostics import Diagnostic, has_errors
from poise.config.model import Config
from poise.doctor import judge, judge_session, probe_ws, probes, static
from poise.doctor.facts import (
    SERVER_HEADERS,
    Connected,
    Persistence,
    Reply,
    Resolved,
    Target,
    Verified,
    cookie_header,
    parse_nameserver,
    parse_resolve,
    parse_url,
    set_cookies,
)
from poise.doctor.report import Check, Status


@dataclass(frozen=True, slots=True)
class Options:
    url: str
    ca_file: str | None = None
    resolve: tuple[str, ...] = ()
    nameserver: str | None = None
    config_files: tuple[str, ...] = ()
    keepalived: tuple[str, ...] = ()
    websocket: str | None = None
    requests: int = 10
    idle: float | None = None
    timeout: float = 5.0
    server_headers: tuple[str, ...] = ()


@dataclass(slots=True)
class Setup:
    """What `-f` and `-k` say: the configuration, its servers' addresses, the VIPs."""

    config: Config | None = None
    addrs: dict[tuple[str, str], str] | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    vips: dict[str, str] | None = None


def doctor(options: Options) -> tuple[Target, list[Check]]:
    """Every check, in order. Raises UsageError for a URL or option it cannot use."""
    target = parse_url(options.url)
    overrides = [parse_resolve(text) for text in options.resolve]
    nameserver = parse_nameserver(options.nameserver) if options.nameserver else None
    checks: list[Check] = []
    setup = load_setup(options, checks)
    local = probes.local_addresses() if setup.config is not None else frozenset[str]()
    resolved = probes.resolve(target, overrides, nameserver, options.timeout)
    checks.append(judge.judge_dns(resolved))
    if setup.config is not None:
        binds = static.bind_addresses(setup.config, target.port)
        found = judge.judge_binds(resolved, target.port, binds, local, setup.vips or {})
        checks.extend([found] if found else [])
    connected = live(options, target, resolved, setup, checks)
    if setup.config is not None:
        checks.extend(
            static.config_checks(setup.config, setup.addrs or {}, local, setup.diagnostics)
        )
        if connected is not None and connected.local:
            nat = static.source_nat_check(
                setup.config, target.port, connected.local, connected.address
            )
            checks.extend([nat] if nat else [])
    return target, checks


def load_setup(options: Options, checks: list[Check]) -> Setup:
    """Load `-f` (as `poise check` does) and `-k`; a file that does not load is a FAIL."""
    setup = Setup()
    if options.config_files:
        from poise.system.load import load_config, resolve_servers

        config, diagnostics = load_config(options.config_files, os.environ)
        if config is not None:
            setup.addrs, more = resolve_servers(config)
            diagnostics = [*diagnostics, *more]
        if config is None or has_errors(diagnostics):
            checks.append(_unloadable("config", diagnostics))
        else:
            setup.config, setup.diagnostics = config, diagnostics
    if options.keepalived:
        setup.vips = load_vips(options.keepalived, checks)
    return setup


def load_vips(paths: Sequence[str], checks: list[Check]) -> dict[str, str]:
    """The VIPs of every vrrp_instance, by address (as `poise vrrp` reads the files)."""
    from poise.config.keepalived import parse
    from poise.vrrp.system import DiskSource

    vips: dict[str, str] = {}
    for path in paths:
        config, diagnostics = parse(path, DiskSource())
        if config is None or has_errors(diagnostics):
            checks.append(_unloadable("config.keepalived", diagnostics))
            continue
        for instance in config.instances:
            for vip in instance.virtual_ipaddress:
                vips[str(vip.ip)] = instance.name
    return vips


def _unloadable(name: str, diagnostics: Sequence[Diagnostic]) -> Check:
    errors = [str(d) for d in diagnostics if d.severity.value == "error"]
    first = errors[0] if errors else "no configuration"
    return Check(
        name,
        Status.FAIL,
        f"the configuration does not load: {first}",
        "fix it (poise check -f FILE / -k FILE names every problem); the checks that need it "
        "were skipped",
    )


def live(
    options: Options, target: Target, resolved: Resolved, setup: Setup, checks: list[Check]
) -> Connected | None:
    """The probes over the network; the TCP connection when there was one."""
    if not resolved.addresses:
        return None
    address = resolved.addresses[0]
    sock, connected = probes.connect(address, target.port, options.timeout)
    checks.append(judge.judge_tcp(connected))
    if sock is None:
        return None
    if target.tls and not tls_checks(options, target, address, sock, checks):
        return connected
    if not target.tls:
        sock.close()
    persistence = Persistence(
        static.cookie_servers(setup.config) if setup.config is not None else {},
        tuple(h.lower() for h in options.server_headers) + SERVER_HEADERS,
    )
    jar = http_checks(options, target, address, persistence, checks)
    if jar is not None and options.websocket:
        websocket_checks(
            options, target, address, setup=setup, persistence=persistence, jar=jar, checks=checks
        )
    return connected


def tls_checks(
    options: Options, target: Target, address: str, sock: socket.socket, checks: list[Check]
) -> bool:
    """tls.handshake, tls.chain, tls.san, tls.expiry; False when there is no TLS at all."""
    tls, handshake = probes.handshake(sock, target.sni)
    checks.append(judge.judge_handshake(handshake))
    if tls is None or handshake.der is None:
        return False
    tls.close()
    cert = judge.certificate(handshake.der)
    trusted, reason = probes.verify_chain(
        address, target.port, target.sni, options.ca_file, options.timeout
    )
    checks.append(judge.judge_chain(Verified(trusted, options.ca_file, reason), cert))
    checks.append(judge.judge_san(cert, target.host))
    checks.append(judge.judge_expiry(cert, dt.datetime.now(dt.UTC)))
    return True


def http_checks(
    options: Options,
    target: Target,
    address: str,
    persistence: Persistence,
    checks: list[Check],
) -> dict[str, str] | None:
    """http, http.server, sticky, spread; the cookie jar, None when HTTP did not work."""
    first = probes.http_get(target, address, options.timeout)
    checks.append(judge.judge_http(first, target.path, target.tls))
    server = judge_session.judge_server(first, persistence)
    checks.extend([server] if server else [])
    if first.error:
        return None
    jar = set_cookies(first.all("set-cookie"))
    sticky: list[Reply] = [first]
    while len(sticky) < options.requests and not sticky[-1].error:
        reply = probes.http_get(target, address, options.timeout, cookie_header(jar))
        jar.update(set_cookies(reply.all("set-cookie")))
        sticky.append(reply)
    spread: list[Reply] = []
    while len(spread) < options.requests and not (spread and spread[-1].error):
        spread.append(probes.http_get(target, address, options.timeout))
    if options.requests > 1:
        checks.append(judge_session.judge_sticky(sticky, persistence))
        checks.append(judge_session.judge_spread(spread, persistence))
    return jar


def websocket_checks(
    options: Options,
    target: Target,
    address: str,
    *,
    setup: Setup,
    persistence: Persistence,
    jar: dict[str, str],
    checks: list[Check],
) -> None:
    """websocket, and with --idle websocket.idle."""
    assert options.websocket is not None
    ws, upgrade = probe_ws.upgrade(
        target, address, options.websocket, options.timeout, cookie_header(jar)
    )
    checks.append(judge_session.judge_websocket(upgrade, persistence))
    if options.idle is None:
        if ws is not None:
            ws.close()
        return
    if ws is None:
        return
    idle = probe_ws.stay_idle(ws, options.idle, options.timeout)
    cause = None
    if idle.closed_after is not None and setup.config is not None:
        cause = static.idle_close_cause(setup.config, target.port, idle.closed_after)
    checks.append(judge_session.judge_idle(idle, cause))
