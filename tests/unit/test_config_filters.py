"""`filter` lines as `haproxy -c` 2.6 reads them: `filter compression` (once per proxy,
needed for compression once other filters are declared), `filter trace` (a warning: its
debugging output has no equivalent in poise), the filters poise does not have yet, and
HAProxy's errors for the rest."""

from __future__ import annotations

import pytest

from poise.config.haproxy import parse

BASE = """\
defaults
    mode http
    timeout client 1s
    timeout server 1s
    timeout connect 1s
frontend fe
    bind 127.0.0.1:8080
{lines}
    default_backend be
backend be
    server s 127.0.0.1:8081
"""


def check(lines: str) -> tuple[bool, list[str]]:
    text = BASE.format(lines="\n".join(f"    {line}" for line in lines.splitlines()))
    config, diagnostics = parse([("f.cfg", text)], {})
    return config is not None, [f"{d.severity.value}: {d.message}" for d in diagnostics]


def test_compression_with_its_filter_and_a_trace() -> None:
    text = BASE.format(
        lines="    filter trace name BEFORE\n    filter compression\n"
        "    filter trace name AFTER random-parsing hexdump\n    compression algo gzip"
    )
    config, diagnostics = parse([("f.cfg", text)], {})
    assert config is not None
    fe = config.proxy("fe")
    assert fe is not None and fe.compression is not None
    assert [d.keyword for d in diagnostics] == ["filter trace", "filter trace"]
    assert all(d.severity.value == "warning" for d in diagnostics)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            "filter trace\ncompression algo gzip",
            "error: frontend 'fe': require an explicit filter declaration to use HTTP compression",
        ),
        (
            "filter compression\nfilter compression",
            "error: 'fe: Proxy supports only one compression filter",
        ),
        ("filter compression x", "error: 'filter compression' : unknown keyword 'x'."),
        ("filter trace name", "error: 'trace' : 'name' option without value"),
        ("filter trace loud", "error: 'filter trace' : unknown keyword 'loud'."),
        ("filter cache", "error: cache : expects a <name> argument"),
        ("filter spoe", "error: the 'spoe' filter is not implemented yet in poise"),
        (
            "filter bogus",
            "error: unknown keyword 'bogus'. Registered keywords : cache, compression, "
            "fcgi-app, opentracing, spoe, trace",
        ),
    ],
)
def test_haproxys_errors(lines: str, message: str) -> None:
    ok, messages = check(lines)
    assert not ok
    assert message in messages


def test_not_in_defaults() -> None:
    text = BASE.replace("defaults\n", "defaults\n    filter compression\n").format(lines="")
    config, diagnostics = parse([("f.cfg", text)], {})
    assert config is None
    assert any("not allowed in a 'defaults' section" in d.message for d in diagnostics)
