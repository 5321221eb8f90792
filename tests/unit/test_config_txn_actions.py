"""`http-request tarpit`, `set-timeout`, `set-log-level` and `timeout tarpit` as the
parser reads them, with HAProxy 2.6's messages for what it refuses (haproxy -c on the
same lines)."""

from __future__ import annotations

import pytest

from poise.config.haproxy import parse

BASE = """defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
listen l
    bind :80
    server s 127.0.0.1:1
"""


def errors(line: str, section: str = "listen l") -> list[str]:
    text = BASE.replace("listen l\n", f"{section}\n    {line}\n")
    if section.startswith("frontend"):
        text = text.replace("    server s 127.0.0.1:1\n", "")
    _, diagnostics = parse([("t.cfg", text)], {})
    return [str(d) for d in diagnostics if d.severity.value == "error"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "http-request set-log-level foo",
            "expects exactly 1 argument (log level name or 'silent').",
        ),
        ("http-request set-timeout server 1x", "unexpected character 'x' in rule"),
        ("http-request set-timeout server", "expects exactly 2 arguments"),
        ("http-request set-timeout client 1s", "supports 'server'/'tunnel' (got 'client')"),
        ("http-request tarpit deny_status 600", "Unexpected status code '600'"),
    ],
)
def test_refused_as_haproxy_refuses_them(line: str, message: str) -> None:
    found = errors(line)
    assert len(found) == 1 and message in found[0] and found[0].startswith("t.cfg:7:")


def test_set_timeout_needs_a_backend() -> None:
    found = errors("http-request set-timeout server 1s", "frontend f")
    assert len(found) == 1 and "no backend capability" in found[0]


def test_accepted_with_their_values() -> None:
    text = BASE + "    timeout tarpit 2s\n    http-request tarpit deny_status 429\n"
    text += "    http-request set-timeout tunnel 2m\n"
    text += "    http-request set-timeout server var(txn.t)\n"
    text += "    http-response set-log-level silent\n"
    config, diagnostics = parse([("t.cfg", text)], {})
    assert config is not None, [str(d) for d in diagnostics]
    proxy = config.proxies[0]
    assert proxy.timeouts.tarpit == 2000
    tarpit, tunnel, server = proxy.http_request_rules
    assert tarpit.reply is not None and tarpit.reply.status == 429
    assert (tunnel.name, tunnel.status) == ("tunnel", 120000)
    assert server.sample is not None and server.sample.fetch == "var"
    assert proxy.http_response_rules[0].name == "silent"
