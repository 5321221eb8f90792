"""Health checks at run time: one timer per checked server, a probe per tick, and the
verdict applied to the model (the pure rise/fall machine in core/health.py decides).

Check timing is HAProxy's: the first checks are spread over the interval so that servers
are not all probed at once; then `inter` when the server is fully up, `fastinter` while it
is changing state, `downinter` when it is fully down.

A backend with `option httpchk` is probed over HTTP (checks/http.py), one with a protocol
check (`option tcp-check`, `redis-check`, ...) by its steps (checks/tcpcheck.py), others
with a TCP connection (checks/probe.py). With `option log-health-checks`, every check that changes
the status or the counter is logged ("Health check for server ..."), and the UP/DOWN
lines that follow leave the check's details out, as HAProxy does then.

With several workers (`nbthread N`), worker 0 alone probes and logs; the others apply its
results (checks/shared.py).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping

from poise.checks import shared
from poise.checks.http import HttpProbe
from poise.checks.probe import tcp_check
from poise.checks.shared import SharedChecks
from poise.checks.tcpcheck import TcpCheckProbe
from poise.config import model
from poise.core import health, slowstart, traffic
from poise.core.backend import Backend, start
from poise.core.server import ServerState
from poise.core.tcpcheck_rules import program
from poise.core.termination import Cause
from poise.net.admin_socket import shut_down_sessions
from poise.net.context import Context
from poise.net.logsink import LogSink, console
from poise.net.proxied import check_flags


class ServerCheck:
    __slots__ = ("backend", "checks", "health", "http", "seq", "server", "task", "tcp")

    def __init__(
        self,
        checks: HealthChecks,
        backend: Backend,
        server: ServerState,
        http: HttpProbe | None = None,
        tcp: TcpCheckProbe | None = None,
    ) -> None:
        self.checks = checks
        self.backend = backend
        self.server = server
        self.http = http  # the backend's HTTP check
        self.tcp = tcp  # its protocol check; neither: a TCP connection check
        config = server.config
        self.health = health.Health.for_server(config)
        if not server.up:  # DOWN from a server-state file (admin/server_state.py)
            self.health.health = 0
        server.health = self.health  # the stats show its counter and last result
        self.task: asyncio.Task[None] | None = None
        self.seq = 0  # results recorded (checks/shared.py orders the workers' by it)

    def target(self) -> tuple[str, int]:
        config = self.server.config
        host = config.check_addr or self.server.addr
        port = config.check_port or self.server.port or 0
        return host, port

    def timeout(self) -> float:
        """HAProxy: with `timeout check`, the connect part is bounded by
        min(timeout connect, inter); without it, the whole check by `inter`."""
        inter = self.server.config.inter
        timeouts = self.backend.proxy.timeouts
        if timeouts.check is not None and timeouts.connect is not None:
            return min(timeouts.connect, inter) / 1000.0
        return inter / 1000.0

    def check_timeout(self) -> float | None:
        """`timeout check` in seconds, None when unset (0 means unset, as in HAProxy)."""
        check = self.backend.proxy.timeouts.check
        return check / 1000.0 if check else None

    async def probe(self) -> health.CheckResult:
        host, port = self.target()
        # check-ssl: (TLS, check's SNI)
        tls = self.checks.ctx.io[self.backend].check_tls.get(self.server.id)
        proxy = check_flags(self.server.config)  # `check-send-proxy`, `send-proxy`
        # From the server's `source`, as its traffic (net/source.py); a unix server's
        # checks go over its socket unless `addr` sends them elsewhere.
        source = self.server.config.source
        unix = self.server.config.address.family == "unix" and not self.server.config.check_addr
        config = self.server.config
        socks4 = config.socks4 if config.check_via_socks4 else None  # `check-via-socks4`
        if self.http is not None:
            return await self.http.run(
                host,
                port,
                self.timeout(),
                self.check_timeout(),
                tls,
                proxy=proxy,
                source=source,
                unix=unix,
                socks4=socks4,
            )
        if self.tcp is not None:
            return await self.tcp.run(
                host,
                port,
                self.timeout(),
                self.check_timeout(),
                tls,
                proxy=proxy,
                server_proxy=self.server.config.proxy_protocol,
                source=source,
                unix=unix,
                socks4=socks4,
            )
        return await tcp_check(
            host, port, self.timeout(), tls, proxy, source=source, unix=unix, socks4=socks4
        )

    async def run(self, first_delay: float) -> None:
        await asyncio.sleep(first_delay)
        config = self.server.config
        servers = self.backend.servers
        while self.server in servers:  # `del server` ends the checks of that server
            result = await self.probe()
            if self.server not in servers:
                return
            self.apply(result)
            delay = self.health.next_delay(config.inter, config.fastinter, config.downinter)
            await asyncio.sleep(self.checks.spread(delay) / 1000.0)

    def apply(self, result: health.CheckResult) -> None:
        raw = result
        server = self.server
        backend = self.backend
        http_check = backend.proxy.http_check
        if self.http is not None and http_check is not None and http_check.disable_on_404:
            result = health.disable_on_404(result, server.up)
        was_up = self.health.is_up
        before = self.health.health, self.health.failed_checks
        transition = self.health.record(result)
        self.seq += 1
        shared = self.checks.shared
        if shared is not None and shared.leader:
            shared.tell(self, before, raw)
        server.failed_checks = self.health.failed_checks
        logs_checks = model.Option.LOG_HEALTH_CHECKS in self.backend.proxy.options
        if logs_checks and self.health.report:
            message = health.health_check_message(
                backend.name,
                server.name,
                result,
                self.health,
                backup=server.backup,
                drain=server.weight == 0,
            )
            self.checks.report(self.backend, message)
        # With log-health-checks the check's details were just logged: HAProxy leaves
        # them out of the UP/DOWN line.
        cause = None if logs_checks else result
        if transition is None:
            if server.up and result.passed and result.conditional != server.stopping:
                self.nolb(result.conditional, cause)
            return
        was_stopping, server.stopping = server.stopping, False
        server.up = self.health.is_up
        now = asyncio.get_running_loop().time()
        traffic.server_state(server.traffic, server.up, server.last_change, now)
        server.last_change = now
        if server.up:
            slowstart.begin(server, now)  # back from DOWN: `slowstart` ramps it up
        else:
            slowstart.end(server)
        requeued_before = backend.requeued
        sessions = server.cur_sess
        goes = backend.changed()
        requeued = backend.requeued - requeued_before
        active, backups = health.count_usable(backend.servers)
        if was_up and not server.up:
            message = health.server_down_message(
                backend.name,
                server.name,
                active=active,
                backups=backups,
                backup=server.backup,
                result=cause,
                sessions=sessions,
                requeued=requeued,
                queued=server.queued,
                was_draining=was_stopping,
            )
            self.checks.report(self.backend, message)
            if server.config.shutdown_on_down:
                shut_down_sessions(self.checks.ctx, [server], Cause.DOWN)
            self.backend_down()
        else:
            self.shutdown_backups()
            message = health.server_up_message(
                backend.name,
                server.name,
                active=active,
                backups=backups,
                backup=server.backup,
                result=cause,
                requeued=requeued,
                queued=server.queued,
            )
            self.checks.report(self.backend, message)
        start(goes)

    def adopt(
        self, seq: int, counter: int, failed: int, last: health.CheckResult, stopping: bool
    ) -> None:
        """Take another worker's state of this check (checks/shared.py: a worker that
        starts), without a log line: the change was logged when it happened."""
        self.seq = seq
        self.health.health = max(0, min(counter, self.health.top))
        self.health.failed_checks = self.server.failed_checks = failed
        self.health.last = last
        server = self.server
        up = self.health.is_up
        if up == server.up and stopping == server.stopping:
            return
        server.up, server.stopping = up, stopping and up
        server.last_change = now = asyncio.get_running_loop().time()
        if up:
            slowstart.begin(server, now)
        else:
            slowstart.end(server)
        start(self.backend.changed())

    def nolb(self, stopping: bool, cause: health.CheckResult | None) -> None:
        """`http-check disable-on-404`: a running server goes NOLB on a 404 (no new
        clients; its queue goes to the others), and back UP on a 2xx or 3xx."""
        server, backend = self.server, self.backend
        server.stopping = stopping
        server.last_change = asyncio.get_running_loop().time()
        requeued_before = backend.requeued
        goes = backend.changed()
        requeued = backend.requeued - requeued_before
        active, backups = health.count_usable(backend.servers)
        name, backup = server.name, server.backup
        if stopping:
            message = health.server_stopping_message(
                backend.name, name, active=active, backups=backups, backup=backup,
                result=cause, requeued=requeued, queued=server.queued,
            )  # fmt: skip
        else:
            message = health.server_up_message(
                backend.name, name, active=active, backups=backups, backup=backup,
                result=cause, requeued=requeued, queued=server.queued,
            )  # fmt: skip
        self.checks.report(backend, message)
        if stopping:
            self.backend_down()
        else:
            self.shutdown_backups()
        start(goes)

    def backend_down(self) -> None:
        """HAProxy's alert when the backend's last usable server goes."""
        backend = self.backend
        if not backend.has_server:
            kind = "proxy" if backend.proxy.is_frontend else "backend"
            self.checks.report(backend, health.backend_down_message(backend.name, kind))

    def shutdown_backups(self) -> None:
        """`on-marked-up shutdown-backup-sessions`: an active server that can take clients
        again ends the sessions of the backend's backup servers (HAProxy's SF_ERR_UP)."""
        server = self.server
        if server.config.shutdown_backups_on_up and not server.backup and server.usable:
            backups = [s for s in self.backend.servers if s.backup]
            shut_down_sessions(self.checks.ctx, backups, Cause.UP)


class HealthChecks:
    def __init__(
        self,
        ctx: Context,
        sinks: Mapping[str, LogSink],
        rng: random.Random,
        spread_checks: int = 0,
    ) -> None:
        self.ctx = ctx
        self.spread_checks = spread_checks
        self.sinks = sinks
        self.rng = rng
        self.checks: list[ServerCheck] = []
        # With several workers (`nbthread`): worker 0 probes, the others apply its
        # verdicts (checks/shared.py).
        self.shared: SharedChecks | None = None
        self.sharing: asyncio.Task[None] | None = None

    def start(self) -> None:
        for backend in self.ctx.backends.values():
            http_check = backend.proxy.http_check
            http = HttpProbe(http_check) if http_check is not None else None
            tcp_check = backend.proxy.tcp_check
            tcp = TcpCheckProbe(program(tcp_check)) if tcp_check is not None else None
            for server in backend.servers:
                if server.config.check:
                    self.checks.append(ServerCheck(self, backend, server, http, tcp))
        if self.checks and self.ctx.siblings.count > 1:
            self.sharing = shared.begin(self)
        else:
            self.run_all()

    def run_all(self) -> None:
        """Start probing every checked server."""
        count = len(self.checks)
        loop = self.ctx.loop
        for position, check in enumerate(self.checks):
            # Spread the first checks over the interval, as HAProxy does.
            first = check.server.config.inter * position / max(count, 1) / 1000.0
            check.task = loop.create_task(check.run(first))

    def spread(self, delay: float) -> float:
        """`spread-checks N`: each interval varies at random by up to N percent."""
        if not self.spread_checks:
            return delay
        return delay * (1 + self.rng.uniform(-self.spread_checks, self.spread_checks) / 100)

    def stop(self) -> None:
        if self.sharing is not None:
            self.sharing.cancel()
        for check in self.checks:
            if check.task is not None:
                check.task.cancel()

    def report(self, backend: Backend, message: health.LogMessage) -> None:
        """On the terminal (as HAProxy's warnings) and to the backend's log targets."""
        if self.shared is not None and not self.shared.leader:
            return  # worker 0 logs it
        level = message.level.keyword
        console("ALERT" if message.level is health.Severity.EMERG else "WARNING", message.console)
        if backend.log is not None:
            backend.log.send(level, message.text)
