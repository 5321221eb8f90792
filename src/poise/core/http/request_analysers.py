"""HAProxy's analysers on the way in, as pure functions in its order (issue 12): the
request head read (HAProxy's wait-for-request; the checks are validate.py's), the switching
rules that choose the backend, then the head for the server (hop-by-hop headers,
X-Forwarded-For, the connection), the persistence cookie, and the head's bytes. Each
returns a value the shell (net/http.py) acts on; none writes anything. The frontend's and
backend's `http-request` rules are core/http/rules.py's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import httptools

from poise.config import model
from poise.core.http import heads, persistence, rules, validate
from poise.core.http.headers import Headers
from poise.core.http.heads import MAX_FIELDS, RequestHead
from poise.core.http.message import Request

if TYPE_CHECKING:
    from poise.core.backend import Backend
    from poise.core.frontend import Frontend
    from poise.core.server import ServerState
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


def monitor(frontend: Frontend, req: Request, close: bool) -> rules.Verdict:
    """`monitor-uri`, HAProxy's first analyser after the head is read (before any
    `http-request` rule): a request for the monitor URI gets 200, or 503 when a `monitor
    fail` condition holds (the proxy's `errorfile` for them, if any), and is never
    forwarded nor logged; it counts as intercepted. A URI starting with `/` is compared
    with the request's path and query (also in an absolute-form target), else with the
    whole target, as HAProxy 2.6 compares them. Any other request goes on (CONTINUE)."""
    uri = frontend.monitor_uri
    target = req.uri
    if uri is None or not (target == uri or (uri[0] == "/" and _path(target) == uri)):
        return rules.CONTINUE
    frontend.intercepted += 1
    status = 503 if any(fails(req, None) for fails in frontend.monitor_fail) else 200
    response, closes = rules.error_reply((frontend.rules,), status, req, close=close)
    return rules.Verdict("reply", status, response, closes, "monitor-uri", "LR--", log=False)


def _path(target: str) -> str:
    """The path and query of a request target: all of an origin-form one, what follows
    the authority of an absolute-form one (RFC 9112 3.2), else nothing."""
    if target.startswith("/"):
        return target
    scheme_end = target.find("://")
    if scheme_end < 0:
        return ""
    path = target.find("/", scheme_end + 3)
    return target[path:] if path >= 0 else ""


def select_backend(
    frontend: Frontend, req: Request, backends: Mapping[str, Backend]
) -> Backend | None:
    """The switching rules: the first `use_backend` whose condition holds, else the
    `default_backend` (a `listen` section: itself); None when there is none."""
    if frontend.proxy.use_backends:
        name = rules.select_backend(frontend.rules, req)
        return backends.get(name) if name is not None else None
    return frontend.backend  # default_backend (a `listen`: itself), as routed


def server_headers(
    req: Request, frontend: Frontend, backend: Backend, client_ip: str, websocket: bool
) -> bool:
    """The request's headers made ready for the server (edited on `req.headers`):
    hop-by-hop headers out (an upgrade keeps its own), X-Forwarded-For in (`option
    forwardfor`), the connection kept or closed. Whether the server connection is kept."""
    keep_server = not (frontend.closes_server or backend.closes_server or websocket)
    headers = req.headers
    drop = validate.hop_by_hop(headers)
    if websocket:
        drop -= {"connection", "upgrade"}
    if drop:
        index = headers.index()
        spliced = not headers.modified and len(index.get("connection", ())) == 1
        for name in drop:
            if name in index:  # (the Connection header's tokens are most often no field)
                spliced = spliced and name == "connection"
                headers.delete(name)
        if spliced:  # one Connection line out, nothing else changed (request_head)
            headers.spliced = headers.items
    if backend.forwardfor or frontend.forwardfor:
        proxy = backend.proxy
        validate.forwarded_for(
            req,
            client_ip,
            proxy.forwardfor_except,
            proxy.forwardfor_header,
            proxy.forwardfor_if_none,
        )
    if frontend.proxy.originalto is not None or backend.proxy.originalto is not None:
        original_to(req, frontend.proxy.originalto, backend.proxy.originalto)
    # As HAProxy 2.6's H1 mux: a connection to close says `close` in HTTP/1.1 (1.0 closes
    # by default), one kept (or pretended kept) says `keep-alive` in HTTP/1.0.
    if not keep_server and not websocket and not backend.pretends_keepalive:
        if req.version != "1.0":  # an upgrade keeps its own
            headers.add("Connection", "close")
    elif req.version == "1.0" and not websocket:
        headers.add("Connection", "keep-alive")
    return keep_server


def original_to(
    req: Request, frontend: model.OriginalTo | None, backend: model.OriginalTo | None
) -> None:
    """`option originalto` in the frontend or the backend, as HAProxy 2.6 applies it
    after X-Forwarded-For: a field with the address the client connected to (`dst`:
    before NAT, or as `set-dst` left it), named as the backend says, else the frontend,
    unless that address is in either one's `except` network (same family only)."""
    found = validate.client_address(req.dst)
    if found is None:
        return
    address, text = found
    for option in (frontend, backend):
        if option is not None and option.except_net is not None:
            network = validate.network(option.except_net)
            if address.version == network.version and address in network:
                return
    option = backend or frontend
    assert option is not None
    req.headers.add(option.header, text)


def request_persistence(
    cookie: model.Cookie,
    backend: Backend,
    req: Request,
    now: float,
    *,
    rule: bool | None = None,
    assigned: ServerState | None = None,
) -> persistence.CookieMatch:
    """What the request's persistence cookie (the backend's `cookie`) says: the server it
    designates, if it takes the request, and the log's status character; the cookie is
    taken out of what the server gets when HAProxy would (core/http/persistence.py).
    `rule`: what `force-persist` (True) or `ignore-persist` (False) said, None: nothing;
    `assigned`: the server a `use-server` rule chose."""
    proxy = backend.proxy
    return persistence.request_cookie(
        cookie,
        req.headers,
        backend.servers,
        now,
        persist=model.Option.PERSIST in proxy.options,
        redispatch=proxy.redispatch not in (None, 0) and rule is not True,
        force=rule is True,
        ignore=rule is False,
        assigned=assigned,
    )


def request_head(raw: bytes, req: Request) -> bytes:
    """The head's bytes for the server: `raw` as it came when no header changed; with
    its one Connection line spliced out when that is the only change (issue 16: a
    `Connection: close` request), when `raw` is written as the rebuild would write it."""
    headers = req.headers
    if not headers.modified:
        return raw
    if (
        headers.spliced is headers.items
        and not raw.startswith(b"\r\n")
        and heads.written_as_rebuilt(raw)
    ):
        return heads.CONNECTION_LINE.sub(b"", raw, 1)
    line = f"{req.method} {req.uri} HTTP/{req.version}\r\n".encode("latin-1")
    return line + req.headers.encode() + b"\r\n"
