"""The running frontend and backend (core/frontend.py, core/backend.py): one object per
proxy holding its derived settings, its compiled rules and its counters, and the
frontend's admission (its `maxconn`)."""

from __future__ import annotations

from poise.config import model
from poise.config.haproxy import parse
from poise.core.backend import Backend
from poise.core.balancer.factory import make_balancer
from poise.core.frontend import Frontend
from poise.core.http import rules
from poise.core.server import ServerState

CONFIG = """\
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    retries 2
frontend fe
    bind :80
    maxconn 2
    option httpclose
    http-request deny if { path /no }
    default_backend be
backend be
    timeout queue 7s
    option forwardfor
    http-request set-header X-A 1
    server a 127.0.0.1:8080
listen both
    bind :81
    http-response set-header X-B 2
    server b 127.0.0.1:8081
"""


def config() -> model.Config:
    found, diagnostics = parse([("t.cfg", CONFIG)], {}, lambda path: b"")
    assert found is not None, [str(d) for d in diagnostics]
    return found


def running_backend(proxy: model.Proxy) -> Backend:
    servers = [ServerState(s, proxy.name) for s in proxy.servers]
    return Backend(proxy, servers, lambda states: make_balancer(proxy.balance, states, False))


def proxy(cfg: model.Config, name: str) -> model.Proxy:
    found = cfg.proxy(name)
    assert found is not None
    return found


def test_a_backend_derives_its_settings_and_compiles_its_rules_once() -> None:
    be = running_backend(proxy(config(), "be"))
    assert be.max_retries == 2 and be.retries == 0  # `retries` configured; wretr counted
    assert be.connect_timeout == 5.0 and be.queue_timeout == 7.0 and be.server_timeout == 30.0
    assert be.forwardfor and be.request_rules and not be.closes_server
    assert isinstance(be.rules, rules.Rules) and len(be.rules.request) == 1
    assert be.rules.proxy is be.proxy


def test_a_frontend_admits_up_to_its_maxconn() -> None:
    cfg = config()
    be = running_backend(proxy(cfg, "be"))
    fe = Frontend(proxy(cfg, "fe"), be, None, 4096)
    assert fe.maxconn == 2 and fe.closes_client and fe.client_timeout == 30.0
    assert fe.room()
    fe.admit()
    fe.admit()
    assert not fe.room() and (fe.cur_conn, fe.cum_conn, fe.max_conn_seen) == (2, 2, 2)
    fe.leave()
    assert fe.room() and (fe.cur_conn, fe.cum_conn, fe.max_conn_seen) == (1, 2, 2)
    assert fe.rules is not be.rules and len(fe.rules.request) == 1


def test_a_listen_section_is_one_proxy_with_one_set_of_rules() -> None:
    both = proxy(config(), "both")
    be = running_backend(both)
    fe = Frontend(both, be, None, 4096)
    assert fe.rules is be.rules and len(be.rules.response) == 1


def test_the_rules_module_keeps_no_cache() -> None:
    """Compiled rules belong to the running proxies, not to module-level dicts."""
    found = [n for n, v in vars(rules).items() if isinstance(v, dict) and not n.startswith("__")]
    assert not found
