"""A running model without sockets for the stats page and exporter tests: a configuration
parsed and linked as `poise run` does, real Backends with their balancers and
ServerStates, and the frontends' run-time counters, seen through a stats.View at a
chosen clock reading."""

from __future__ import annotations

import random

from poise.admin import stats
from poise.config import model
from poise.config.haproxy import parse
from poise.core.backend import Backend
from poise.core.balancer.factory import make_balancer
from poise.core.frontend import Frontend
from poise.core.health import Health, l4_failed, l4_passed
from poise.core.http.headers import Headers
from poise.core.http.message import Request
from poise.core.server import ServerState

CONFIG = """
global
    node lb1
    description the test balancer
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:8080
    http-request use-service prometheus-exporter if { path /metrics }
    default_backend app
backend app
    cookie SRV insert
    server web1 127.0.0.1:8001 check cookie w1
    server web2 127.0.0.1:8002 check weight 20 maxconn 10 maxqueue 5
    server web3 127.0.0.1:8003 backup
listen stats
    bind 127.0.0.1:8090
    acl local src 127.0.0.1
    stats uri /haproxy?stats
    stats refresh 5s
    stats auth admin:secret
    stats auth ops:pw2
    stats realm Poise\\ Stats
    stats admin if local
    stats show-legends
listen tcpapp
    mode tcp
    bind 127.0.0.1:9000
    server t1 127.0.0.1:9001
"""
STARTED = 1000.0  # the loop clock when the process started
START_TIME = 1_795_000_000.0


def config(text: str = CONFIG) -> model.Config:
    parsed, diagnostics = parse([("test.cfg", text)], {})
    errors = [str(d) for d in diagnostics if d.severity.value == "error"]
    assert parsed is not None and not errors, errors
    return parsed


class World:
    def __init__(self, text: str = CONFIG) -> None:
        self.config = config(text)
        rng = random.Random(0)
        self.backends: dict[str, Backend] = {}
        for proxy in self.config.backends:
            servers = [ServerState(s, proxy.name) for s in proxy.servers]
            allbackups = model.Option.ALLBACKUPS in proxy.options
            self.backends[proxy.name] = Backend(
                proxy,
                servers,
                lambda states, p=proxy, ab=allbackups: make_balancer(  # type: ignore[misc]
                    p.balance, states, ab, rng
                ),
            )
        # A running process derives maxconn from its descriptor limit when it is unset.
        self.maxconn = self.config.global_.maxconn or 4096
        self.frontends = {
            proxy.name: Frontend(proxy, None, None, self.maxconn) for proxy in self.config.frontends
        }
        self.info = stats.AdminInfo(
            pid=4242,
            started=STARTED,
            start_time=START_TIME,
            version="0.1.0",
            release_date="2026/11/21",
            node="lb1",
            description="the test balancer",
        )

    def view(self, now: float = STARTED + 65) -> stats.View:
        return stats.View(
            info=self.info,
            frontends=self.frontends,
            backends=self.backends,
            maxconn=self.maxconn,
            actconn=1,
            cum_conns=sum(fe.cum_conn for fe in self.frontends.values()),
            stopping=False,
            now=now,
        )

    def proxy(self, name: str) -> model.Proxy:
        found = self.config.proxy(name)
        assert found is not None
        return found

    def page(self, name: str = "stats") -> model.StatsPage:
        page = self.proxy(name).stats
        assert page is not None
        return page

    def server(self, backend: str, name: str) -> ServerState:
        server = self.backends[backend].server(name)
        assert server is not None
        return server

    def checked(self) -> None:
        """The checks have run: web1 passes, web2 fails (and went down)."""
        web1, web2 = self.server("app", "web1"), self.server("app", "web2")
        web1.health = Health.for_server(web1.config)
        web1.health.record(l4_passed(1))
        web2.health = Health.for_server(web2.config)
        web2.health.record(l4_failed("Connection refused", 0))
        web2.up = False
        web2.failed_checks = 1
        web2.last_change = STARTED + 5


def request(
    uri: str,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    src: str = "127.0.0.1",
    version: str = "1.1",
) -> Request:
    return Request(method, uri, version, Headers(list(headers or [])), src, 40000)


ADMIN = ("Authorization", "Basic YWRtaW46c2VjcmV0")  # admin:secret
OPS = ("Authorization", "Basic b3BzOnB3Mg==")  # ops:pw2
