"""HAProxy's analysers on the way in, as pure functions in its order (issue 12): the
request head read and checked (HAProxy's wait-for-request), then the switching rules that
choose the backend. Each returns a value the shell (net/http.py) acts on; none writes
anything. The frontend's and backend's `http-request` rules are core/http/rules.py's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import httptools

from poise.core.http import heads, rules, validate
from poise.core.http.headers import Headers
from poise.core.http.heads import MAX_FIELDS, RequestHead
from poise.core.http.message import Request

if TYPE_CHECKING:
    from poise.core.backend import Backend
    from poise.core.frontend import Frontend
    from poise.core.txn import Conn


def read_request(raw: bytes, conn: Conn) -> Request | str:
    """The request head in `raw` (one whole head, its line ends CRLF, checked by
    validate.check_request_head) as httptools reads it, with the facts of the client
    connection it came on; or why it is refused (a 400)."""
    raw = raw.lstrip(b"\r\n")  # empty lines before a request are ignored (RFC 9112 2.2)
    collector = RequestHead()
    parser = httptools.HttpRequestParser(collector)
    method = ""
    try:
        parser.feed_data(raw)
    except httptools.HttpParserUpgrade:
        pass
    except httptools.HttpParserInvalidMethodError:
        read = heads.read_unknown_method(raw)  # a method llhttp does not know
        if isinstance(read, str):
            return read
        method, collector, parser = read
    except httptools.HttpParserError as exc:
        return f"malformed request: {exc}"
    if len(collector.items) > MAX_FIELDS:  # HAProxy's tune.http.maxhdr
        return "too many header fields"
    return Request(
        method or parser.get_method().decode("latin-1"), collector.url.decode("latin-1"),
        parser.get_http_version(), Headers(collector.items), conn.client_ip,
        conn.client_port, conn.dst_ip, conn.dst_port, conn.ssl, conn.sni, conn.client_cert,
        conn=conn,  # the `sess` variables live as long as the client connection
    )  # fmt: skip


def check_request(req: Request) -> bool | validate.HttpProblem:
    """The request's own checks (validate.check_request), then a WebSocket upgrade's:
    whether it is one (True), or the problem that refuses it."""
    problem = validate.check_request(req)
    if problem is not None:
        return problem
    # Only a request with an Upgrade header can be one (validate.py).
    return "upgrade" in req.headers.index() and validate.is_websocket_upgrade(req)


def select_backend(
    frontend: Frontend, req: Request, backends: Mapping[str, Backend]
) -> Backend | None:
    """The switching rules: the first `use_backend` whose condition holds, else the
    `default_backend` (a `listen` section: itself); None when there is none."""
    if frontend.proxy.use_backends:
        name = rules.select_backend(frontend.rules, req)
        return backends.get(name) if name is not None else None
    return frontend.backend  # default_backend (a `listen`: itself), as routed
