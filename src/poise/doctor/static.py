"""What `poise doctor -f CONFIG` can tell from the configuration alone: the classic mistakes
of a balanced set-up (the balancer in its own pool, cookie persistence where TLS is not
terminated, WebSockets cut by `timeout client`, no health checks, `balance source` behind a
NAT), and the facts the live checks compare against (bind addresses, cookie values). Pure.

Timeouts follow configuration.txt 4.2: `timeout client` is the frontend's, `timeout server`
and `timeout tunnel` the backend's; once a connection is upgraded (WebSocket), `timeout
tunnel` replaces both when it is set. Durations are shown in HAProxy's units ("30s", "1h").
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from poise.config.diagnostics import Diagnostic, Severity
from poise.config.model import Address, Algorithm, Bind, Config, Mode, Proxy, Server
from poise.core.dyncookie import dynamic_cookie
from poise.doctor.report import Check, Status

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

# A WebSocket application pings every 20 to 30 s at best; an idle timeout below a minute
# closes a quiet one. The advice is HAProxy's usual `timeout tunnel 1h`.
TUNNEL_IDLE_MIN_MS = 60_000
# Balancing algorithms that send one client (or one key) to one server without a cookie.
STICKY_ALGORITHMS = frozenset({Algorithm.SOURCE, Algorithm.HDR, Algorithm.URL_PARAM})
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 shared address space
PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
# The link pass's warnings for a `cookie` line in `mode tcp` (config/link_http.py, link.py).
_IGNORED_COOKIE = re.compile(r"cookie will be ignored for (?:backend|listen) '([^']+)'")
_IGNORED_SERVER_COOKIE = re.compile(
    r"(?:backend|listen) '([^']+)': ignoring cookie for server '([^']+)'"
)


# --- small helpers -------------------------------------------------------------------------


def duration(ms: int) -> str:
    """Milliseconds in HAProxy's largest exact unit: 30000 -> "30s", 3600000 -> "1h"."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _ip(text: str) -> IP | None:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _within(ip: IP, networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def _local(ip: IP, local_addresses: frozenset[IP]) -> bool:
    return ip in local_addresses or _within(ip, LOOPBACK)


def _bind_host(address: Address) -> str:
    """A bind's address as it listens: "" is every IPv4 address (`bind :80`)."""
    if address.host:
        return address.host
    return "::" if address.family == "ipv6" else "0.0.0.0"


def _live_binds(config: Config) -> Iterator[tuple[Proxy, Bind]]:
    for proxy in config.frontends:
        if proxy.disabled:
            continue
        for bind in proxy.binds:
            if bind.address.family != "unix" and bind.address.port is not None:
                yield proxy, bind


def _backends_of(config: Config, frontend: Proxy, every: bool = True) -> list[Proxy]:
    """The backends a frontend sends to: itself for a `listen`, its `default_backend`, and
    (with `every`) its `use_backend` targets."""
    names = [frontend.name] if frontend.is_backend else []
    if frontend.default_backend:
        names.append(frontend.default_backend)
    if every:
        names.extend(rule.backend for rule in frontend.use_backends)
    found: list[Proxy] = []
    for name in dict.fromkeys(names):
        backend = next((p for p in config.backends if p.name == name), None)
        if backend is not None:
            found.append(backend)
    return found


def _frontends_on(config: Config, port: int) -> list[Proxy]:
    seen = [proxy for proxy, bind in _live_binds(config) if bind.address.port == port]
    return list({proxy.name: proxy for proxy in seen}.values())


def _served(servers: Sequence[Server]) -> list[Server]:
    return [s for s in servers if not s.disabled]


def _names(items: Sequence[str]) -> str:
    return ", ".join(items)


# --- config.self-server --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Listener:
    host: IP | None  # None: every address of its family
    wildcard_family: int  # 4, 6 (dual stack: any), or 0 when host is set
    port: int


@dataclass(frozen=True, slots=True)
class _Balancer:
    """Where this balancer is: what it listens on, and its host's addresses."""

    listeners: tuple[_Listener, ...]
    local: frozenset[IP]

    @property
    def ports(self) -> set[int]:
        return {listener.port for listener in self.listeners}

    def loops(self, ip: IP, ports: set[int]) -> bool:
        """Would a connection to `ip` on one of `ports` come back to the balancer?"""
        return any(_listens_on(li, ip, self.local) and li.port in ports for li in self.listeners)


def _listeners(config: Config) -> list[_Listener]:
    found: list[_Listener] = []
    for _, bind in _live_binds(config):
        host = _bind_host(bind.address)
        port = bind.address.port
        assert port is not None
        if host in ("0.0.0.0", "::"):
            family = 4 if host == "0.0.0.0" else 6
            found.append(_Listener(None, family, port))
        elif (ip := _ip(host)) is not None:
            found.append(_Listener(ip, 0, port))
    return found


def _listens_on(listener: _Listener, ip: IP, local: frozenset[IP]) -> bool:
    if listener.host is not None:
        return listener.host == ip
    if not _local(ip, local):
        return False
    # `bind :::443` accepts IPv4 too (dual stack), `bind :443` IPv4 only.
    return listener.wildcard_family == 6 or ip.version == 4


def _server_ports(server: Server, bind_ports: set[int]) -> set[int]:
    """The ports a server is reached on: its own, or (written without a port) the port the
    client connected to, which is one of the bound ports."""
    return {server.address.port} if server.address.port is not None else bind_ports


def _self_server_check(
    backend: Proxy,
    server: Server,
    ip: IP,
    pool_elsewhere: list[str],
    balancer: _Balancer,
) -> Check | None:
    """FAIL when the balancer listens on the server's address and port (a loop); WARN when
    the server shares the balancer's host on a bound port, or in a pool of other hosts."""
    where = f"server {backend.name}/{server.name} ({_show(ip, server)})"
    ports = _server_ports(server, balancer.ports)
    if balancer.loops(ip, ports):
        return Check(
            "config.self-server",
            Status.FAIL,
            f"{where} is this balancer's own address: requests would loop back into poise",
            f"point {backend.name}/{server.name} at a real server's address and port",
        )
    if not _local(ip, balancer.local):
        return None
    if bound := sorted(ports & balancer.ports):
        saw = (
            f"{where} is this balancer's host, on port {bound[0]} that a frontend binds on "
            "other addresses: it reaches another service on this host, not a pool member"
        )
    elif pool_elsewhere:
        saw = f"{where} is on the balancer's own host, in a pool with {_names(pool_elsewhere)}"
    else:
        return None
    return Check(
        "config.self-server",
        Status.WARN,
        saw,
        "keep the management server out of the pool: a service sharing the balancer's host "
        "answers on the wrong interface or refuses connections; balance dedicated servers",
    )


def _self_server_checks(
    config: Config, addrs: Mapping[tuple[str, str], str], local: frozenset[IP]
) -> list[Check]:
    balancer = _Balancer(tuple(_listeners(config)), local)
    checks: list[Check] = []
    for backend in (b for b in config.backends if not b.disabled):
        located = [
            (server, ip)
            for server in _served(backend.servers)
            if (ip := _ip(addrs.get((backend.name, server.name), server.address.host)))
        ]
        elsewhere = [server.name for server, ip in located if not _local(ip, local)]
        for server, ip in located:
            check = _self_server_check(backend, server, ip, elsewhere, balancer)
            if check is not None:
                checks.append(check)
    if not checks:
        checks.append(Check("config.self-server", Status.PASS, "no server is the balancer"))
    return checks


def _show(ip: IP, server: Server) -> str:
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    port = server.address.port
    return f"{host}:{port}" if port is not None else host


# --- config.tcp-cookie ---------------------------------------------------------------------


def _ignored_cookies(diagnostics: Sequence[Diagnostic]) -> dict[str, list[str]]:
    """The `mode tcp` backends whose `cookie` lines the link pass ignored, each with the
    servers whose `cookie VALUE` it ignored."""
    found: dict[str, list[str]] = {}
    for diagnostic in diagnostics:
        if diagnostic.severity is not Severity.WARNING:
            continue
        if match := _IGNORED_COOKIE.search(diagnostic.message):
            found.setdefault(match[1], [])
        elif match := _IGNORED_SERVER_COOKIE.search(diagnostic.message):
            found.setdefault(match[1], []).append(match[2])
    return found


def _tcp_cookie_checks(config: Config, diagnostics: Sequence[Diagnostic] | None) -> list[Check]:
    tcp = [b for b in config.backends if b.mode is Mode.TCP and not b.disabled]
    if not tcp:
        return [Check("config.tcp-cookie", Status.PASS, "no mode tcp backend")]
    if diagnostics is None:
        return []  # the link pass dropped the cookie lines: only its warnings tell
    ignored = _ignored_cookies(diagnostics)
    checks: list[Check] = []
    for backend in tcp:
        if backend.name not in ignored:
            continue
        servers = ignored[backend.name]
        also = f" (and `cookie` on {_names(servers)})" if servers else ""
        checks.append(
            Check(
                "config.tcp-cookie",
                Status.FAIL,
                f"backend {backend.name} is mode tcp and has a cookie line{also}: no cookie is "
                "read or set where HTTP is not parsed, so sessions are not sticky",
                "terminate TLS on the balancer (`mode http` and `bind ... ssl crt FILE`) to "
                "persist by cookie, or stay in mode tcp with `balance source` and "
                "`hash-type consistent`",
            )
        )
    if not checks:
        names = _names([b.name for b in tcp])
        checks.append(Check("config.tcp-cookie", Status.PASS, f"no cookie in mode tcp ({names})"))
    return checks


# --- config.tunnel-timeout -----------------------------------------------------------------


def _routes(config: Config) -> list[tuple[Proxy, Proxy]]:
    """(frontend, backend) for every frontend that listens and each backend it uses."""
    routes: list[tuple[Proxy, Proxy]] = []
    for frontend in config.frontends:
        if not frontend.disabled and frontend.binds:
            routes.extend((frontend, b) for b in _backends_of(config, frontend))
    return routes


def _idle_timeouts(frontend: Proxy, backend: Proxy) -> list[tuple[str, int]]:
    """The timeouts that close an idle upgraded connection without `timeout tunnel`."""
    found = [("client", frontend.timeouts.client), ("server", backend.timeouts.server)]
    return [(name, ms) for name, ms in found if ms]


def _tunnel_check(frontend: Proxy, backend: Proxy) -> Check:
    """In mode http a WebSocket becomes a tunnel after `101 Switching Protocols`; in mode
    tcp every connection is one (a WebSocket passed through with its TLS included)."""
    route = f"frontend {frontend.name}"
    if frontend is not backend:
        route += f" -> backend {backend.name}"
    what = "WebSocket" if frontend.mode is Mode.HTTP else "connection (a WebSocket passed through)"
    tunnel = backend.timeouts.tunnel
    if tunnel:
        saw = f"{route}: timeout tunnel {duration(tunnel)}"
        return Check("config.tunnel-timeout", Status.PASS, saw)
    idle = _idle_timeouts(frontend, backend)
    if not idle:
        saw = f"{route}: no timeout tunnel, client or server: an idle {what} stays open"
        return Check("config.tunnel-timeout", Status.PASS, saw)
    name, ms = min(idle, key=lambda item: item[1])
    if ms >= TUNNEL_IDLE_MIN_MS:
        saw = f"{route}: no timeout tunnel; an idle {what} lasts timeout {name} ({duration(ms)})"
        return Check("config.tunnel-timeout", Status.PASS, saw)
    return Check(
        "config.tunnel-timeout",
        Status.WARN,
        f"{route}: no timeout tunnel, so a {what} idle longer than timeout {name} "
        f"({duration(ms)}) is closed",
        f"set `timeout tunnel 1h` in backend {backend.name} (or its defaults section)",
    )


def _tunnel_checks(config: Config) -> list[Check]:
    routes = _routes(config)
    if not routes:
        return [Check("config.tunnel-timeout", Status.PASS, "no frontend listens")]
    return [_tunnel_check(frontend, backend) for frontend, backend in routes]


# --- config.health-checks ------------------------------------------------------------------


def _health_checks(config: Config) -> list[Check]:
    checks: list[Check] = []
    for backend in (b for b in config.backends if not b.disabled):
        servers = _served(backend.servers)
        unchecked = [s.name for s in servers if not s.check]
        if len(servers) > 1 and unchecked:
            checks.append(
                Check(
                    "config.health-checks",
                    Status.WARN,
                    f"backend {backend.name}: {_names(unchecked)} without `check` "
                    f"({len(unchecked)} of {len(servers)} servers): a dead one keeps getting "
                    "traffic until each connection fails",
                    "add `check` to every server line (or `default-server check`)",
                )
            )
    if not checks:
        checks.append(
            Check("config.health-checks", Status.PASS, "every server of a pool has `check`")
        )
    return checks


# --- config.persistence --------------------------------------------------------------------


def _persistence_check(backend: Proxy) -> Check | None:
    servers = [s for s in _served(backend.servers) if not s.backup]
    if backend.mode is not Mode.HTTP or len(servers) < 2:
        return None
    if backend.cookie is not None:
        dynamic = backend.cookie.dynamic and backend.cookie.dynamic_key is not None
        missing = [] if dynamic else [s.name for s in servers if s.cookie is None]
        if not missing:
            return None
        return Check(
            "config.persistence",
            Status.WARN,
            f"backend {backend.name}: cookie {backend.cookie.name} but {_names(missing)} "
            "have no `cookie VALUE`: their clients are not sticky",
            "give every server its own value: `server NAME ADDR cookie VALUE`",
        )
    if backend.balance.algorithm in STICKY_ALGORITHMS:
        return None
    return Check(
        "config.persistence",
        Status.WARN,
        f"backend {backend.name}: {len(servers)} servers, balance "
        f"{backend.balance.algorithm.value} and no cookie: a client's requests go to any "
        "server, so its session is not sticky",
        "add `cookie SERVERID insert indirect nocache maxlife 1d` and `cookie VALUE` on each "
        "server (or `balance source` with `hash-type consistent`)",
    )


def _persistence_checks(config: Config) -> list[Check]:
    found = [_persistence_check(b) for b in config.backends if not b.disabled]
    checks = [check for check in found if check is not None]
    return checks or [
        Check("config.persistence", Status.PASS, "every HTTP pool is sticky (cookie or hash)")
    ]


# --- the interface -------------------------------------------------------------------------


def config_checks(
    config: Config,
    addrs: Mapping[tuple[str, str], str],
    local_addresses: frozenset[str],
    diagnostics: Sequence[Diagnostic] | None = None,
) -> list[Check]:
    """The static checks (names `config.*`). `addrs` is the resolved IP of each
    (backend, server); `local_addresses` the IPs of this host's interfaces.
    `diagnostics` are load_config's: poise drops a `cookie` line in `mode tcp` with a
    warning, so `config.tcp-cookie` can only see it there (without them the check is left
    out when there is a mode tcp backend)."""
    local = frozenset(ip for text in local_addresses if (ip := _ip(text)) is not None)
    return [
        *_self_server_checks(config, addrs, local),
        *_tcp_cookie_checks(config, diagnostics),
        *_tunnel_checks(config),
        *_health_checks(config),
        *_persistence_checks(config),
    ]


def bind_addresses(config: Config, port: int) -> list[str]:
    """The IP addresses the frontends listen on for `port` ("0.0.0.0" or "::" for a
    wildcard bind); empty when no frontend binds that port."""
    hosts = [
        _bind_host(bind.address) for _, bind in _live_binds(config) if bind.address.port == port
    ]
    return list(dict.fromkeys(hosts))


def cookie_servers(config: Config) -> dict[str, dict[str, str]]:
    """For every persistence cookie name, the `backend/server` each cookie value names.
    A server without `cookie VALUE` gets no cookie and is left out; when several servers
    share a value, the first one declared is named (HAProxy picks the first usable one)."""
    found: dict[str, dict[str, str]] = {}
    for backend in config.backends:
        if backend.cookie is None:
            continue
        values = found.setdefault(backend.cookie.name, {})
        key = backend.cookie.dynamic_key if backend.cookie.dynamic else None
        for server in backend.servers:
            value = server.cookie
            if value is None and key is not None:  # `cookie ... dynamic`: HAProxy's value
                value = dynamic_cookie(key, server.address.host, server.address.port)
            if value is not None:
                values.setdefault(value, f"{backend.name}/{server.name}")
    return found


def _candidate_timeouts(frontend: Proxy, backend: Proxy) -> list[tuple[str, str, int]]:
    """(keyword, where, ms) of every timeout that can close an idle WebSocket on this
    route: `timeout tunnel` once upgraded (in mode tcp: at once) if set, else client and
    server; in mode http, before the upgrade, http-keep-alive and http-request."""
    found: list[tuple[str, str, int | None]] = []
    if backend.timeouts.tunnel:
        found.append(("tunnel", f"backend {backend.name}", backend.timeouts.tunnel))
    else:
        found.append(("client", f"frontend {frontend.name}", frontend.timeouts.client))
        found.append(("server", f"backend {backend.name}", backend.timeouts.server))
    if frontend.mode is Mode.TCP:
        return [(name, where, ms) for name, where, ms in found if ms]
    keep_alive = frontend.timeouts.http_keep_alive or backend.timeouts.http_keep_alive
    found.append(("http-keep-alive", f"frontend {frontend.name}", keep_alive))
    found.append(("http-request", f"frontend {frontend.name}", frontend.timeouts.http_request))
    return [(name, where, ms) for name, where, ms in found if ms]


def _matches(ms: int, seconds_open: float) -> bool:
    """A close after `seconds_open` s is explained by a timer of `ms` when it fired then:
    not later than the close, and not much earlier (timers are checked late, not early)."""
    seconds = ms / 1000
    return seconds <= seconds_open + 0.5 and seconds >= seconds_open * 0.8 - 1


def idle_close_cause(config: Config, port: int, seconds_open: float) -> str:
    """Which timeout most likely closed a WebSocket that stayed idle `seconds_open`
    seconds on the frontend bound to `port`, in a sentence naming the keyword and its
    value (or saying no configured timeout matches)."""
    frontends = _frontends_on(config, port)
    if not frontends:
        return f"no frontend binds port {port}"
    candidates: list[tuple[str, str, int]] = []
    for frontend in frontends:
        for backend in _backends_of(config, frontend, every=False) or [frontend]:
            candidates.extend(_candidate_timeouts(frontend, backend))
    matching = [c for c in candidates if _matches(c[2], seconds_open)]
    if matching:
        longest = max(ms for _, _, ms in matching)
        fired = [(n, w) for n, w, ms in dict.fromkeys(matching) if ms == longest]
        cause = " and ".join(f"timeout {n} {duration(longest)} ({w})" for n, w in fired)
        if fired[0][0] in ("client", "server"):
            return (
                f"{cause} closed it: with no timeout tunnel it applies to a WebSocket; "
                "set timeout tunnel 1h"
            )
        return f"{cause} closed it"
    listed = _names([f"timeout {n} {duration(ms)}" for n, _, ms in dict.fromkeys(candidates)])
    return (
        f"no configured timeout matches {seconds_open:g}s ({listed or 'none set'}): "
        "the server, the client or a firewall/NAT idle timer closed it"
    )


def _is_public(ip: IP) -> bool:
    return not (
        _within(ip, PRIVATE)
        or _within(ip, LOOPBACK)
        or _within(ip, LINK_LOCAL)
        or _within(ip, (CARRIER_GRADE_NAT,))
    )


def _nat_reason(source: IP, target: IP) -> str | None:
    if _within(source, (CARRIER_GRADE_NAT,)):
        return f"{source} is in 100.64.0.0/10, a carrier-grade NAT's shared address space"
    if _within(source, PRIVATE) and _is_public(target):
        return (
            f"{source} is a private address reaching the public {target}: a NAT between "
            "client and balancer"
        )
    return None


def source_nat_check(config: Config, port: int, source_ip: str, target_ip: str) -> Check | None:
    """`config.source-nat`: a WARN when the backend behind `port` balances by `source` and
    the client's address (`source_ip`, as the client connected to `target_ip`) looks like
    it is behind a NAT, so many clients would share one server. None when not relevant."""
    backends = [
        backend
        for frontend in _frontends_on(config, port)
        for backend in _backends_of(config, frontend, every=False)
        if backend.balance.algorithm is Algorithm.SOURCE
    ]
    source, target = _ip(source_ip), _ip(target_ip)
    if not backends or source is None or target is None:
        return None
    names = _names(list(dict.fromkeys(b.name for b in backends)))
    reason = _nat_reason(source, target)
    if reason is None:
        saw = f"backend {names} balances by source; {source} reaches {target} with no NAT seen"
        return Check("config.source-nat", Status.PASS, saw)
    return Check(
        "config.source-nat",
        Status.WARN,
        f"backend {names} balances by source and {reason}: every client behind it shares one "
        "address, so they all land on one server",
        "persist by cookie instead (`mode http`, TLS terminated with `bind ... ssl crt`, "
        "`cookie SERVERID insert` and `cookie VALUE` per server)",
    )
