"""http-request set-path|set-pathq|set-query|set-uri|replace-path|replace-pathq|
replace-uri|set-method (core/http/uri_rules.py): the request line each gives, as HAProxy
2.6.12 gave it for the same rule and request (its `%[method] %[url]` after the rule)."""

from __future__ import annotations

import pytest

from poise.core.http import rules
from poise.core.http.headers import Headers
from poise.core.http.message import Request
from tests.unit.test_http_rules import frontend


@pytest.mark.parametrize(
    ("rule", "line", "expected"),
    [
        ("set-path /x%[path]", "GET /a/b?q=1", "GET /x/a/b?q=1"),
        ("set-path /new", "GET http://h.example/a?q=1", "GET http://h.example/new?q=1"),
        ("set-path /p", "OPTIONS *", "OPTIONS /p"),
        ("set-pathq /z", "GET /a?q=1", "GET /z"),
        ("set-query a=1", "GET /a", "GET /a?a=1"),
        ("set-query %[str()]", "GET /a", "GET /a"),
        ("set-query %[str()]", "GET /a?q=1", "GET /a?"),
        ("set-query b=2", "GET /a?q=1", "GET /a?b=2"),
        ("set-uri /u?v", "GET /a?q=1", "GET /u?v"),
        ("replace-path /foo/(.*) /\\1", "GET /foo/bar?q=1", "GET /bar?q=1"),
        ("replace-path (.*) /foo\\1", "GET /bar?q=1", "GET /foo/bar?q=1"),
        ("replace-pathq ([^?]*)(\\?(.*))? \\1/foo\\2", "GET /bar?q=1", "GET /bar/foo?q=1"),
        (
            "replace-uri ^http://(.*) https://\\1",
            "GET http://h.example/x",
            "GET https://h.example/x",
        ),
        ("replace-path /nomatch/(.*) /\\1", "GET /foo/bar", "GET /foo/bar"),
        ("replace-path b X", "GET /abc", "GET X"),
        ("set-method PUT", "GET /a", "PUT /a"),
    ],
)
def test_the_request_line_after_the_rule(rule: str, line: str, expected: str) -> None:
    program = rules.Rules(frontend(f"    http-request {rule}\n"))
    method, uri = line.split(" ", 1)
    req = Request(method, uri, "1.1", Headers([("Host", "h.example")]))
    assert rules.request_rules(program, req) is rules.CONTINUE
    assert f"{req.method} {req.uri}" == expected
    # The shell writes the request line again only for a head marked as modified; the
    # log shows the line as received (HAProxy's %r).
    changed = f"{method} {uri}" != expected
    assert req.headers.modified == changed
    assert req.received_line == (f"{line} HTTP/1.1" if changed else None)
