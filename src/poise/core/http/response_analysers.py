"""HAProxy's analysers on the way back, as pure functions in its order (issue 12): the
response read and checked (how the body ends, which connections survive it), the `http-response`
rules, the persistence cookie on the response, and the head the client gets. Each returns
a value the shell (net/http.py) acts on; none writes anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httptools

from poise.core.errors import reply
from poise.core.http import heads, persistence, rules, validate
from poise.core.http.headers import Headers
from poise.core.http.message import Request, Response, keep_alive

if TYPE_CHECKING:
    from poise.config import model
    from poise.core.backend import Backend
    from poise.core.frontend import Frontend
    from poise.core.server import ServerState


def read_response(raw: bytes) -> Response | str:
    """The response head in `raw` (one whole head) as httptools reads it, or why it is
    refused (a 502)."""
    collector = heads.ResponseHead()
    parser = httptools.HttpResponseParser(collector)
    refused = heads.feed_response(parser, raw, collector)
    if refused:
        return refused
    reason = collector.reason.decode("latin-1")
    headers = Headers(collector.items)
    return Response(parser.get_status_code(), reason, parser.get_http_version(), headers)


# What the response checks decided: how the body ends; whether the server connection may
# serve another request (it did not ask to close, the body does not end by its close);
# whether the client's may (not when the body ends with the server's close). A plain
# tuple: this runs for every response that is not a plain one.
Checked = tuple[validate.Framing, bool, bool]


def check_response(req: Request, resp: Response) -> Checked | validate.HttpProblem:
    """The response's framing (RFC 9112 6.3) and what it leaves of both connections, or the
    problem that makes it a 502."""
    framing = validate.response_framing(req.method, resp.status, resp)
    if isinstance(framing, validate.HttpProblem):
        return framing
    if framing.kind == "close":
        return framing, False, False
    return framing, keep_alive(resp.version, resp.headers), True


def rule_programs(backend: Backend | None, frontend: Frontend) -> list[rules.Rules]:
    """The backend's rules (if any, and not the frontend's own), then the frontend's:
    HAProxy's order for http-response rules and for error files."""
    if backend is None or backend.proxy is frontend.proxy:
        return [frontend.rules]
    return [backend.rules, frontend.rules]


def error_page(
    backend: Backend | None, frontend: Frontend, req: Request | None, status: int, *, close: bool
) -> tuple[bytes, bool]:
    """poise's answer with `status` in the server's place (502, 503, 504): the backend's
    or frontend's `errorfile` for it, else HAProxy's page; whether the connection closes."""
    if req is None:
        return reply(status, close=True), True
    return rules.error_reply(rule_programs(backend, frontend), status, req, close=close)


def response_rules(
    backend: Backend | None, frontend: Frontend, req: Request, resp: Response
) -> rules.Verdict | None:
    """The `http-response` rules of each proxy in HAProxy's order (rule_programs), header
    edits made on `resp.headers`; the first verdict that ends the response (deny, return,
    redirect), or None when it goes on to the client."""
    if backend is not None and backend.proxy is not frontend.proxy:
        verdict = rules.response_rules(backend.rules, req, resp)
        if verdict.kind != "continue":
            return verdict
    verdict = rules.response_rules(frontend.rules, req, resp)
    return verdict if verdict.kind != "continue" else None


def response_cookie(
    cookie: model.Cookie,
    match: persistence.CookieMatch | None,
    server: ServerState,
    req: Request,
    resp: Response,
    *,
    now: float,
) -> str:
    """The backend's persistence cookie on the response of `server` (set, refreshed or
    removed on `resp.headers`, `match` being what the request's cookie said); the two
    cookie characters of the termination state (`%tsc`)."""
    match = match or persistence.CookieMatch(None, "N")
    response_status = persistence.response_cookie(
        cookie, match, server, resp.headers, now, request_method=req.method, status=resp.status
    )
    return persistence.cookie_flags(cookie, match.status, response_status)


def client_head(raw: bytes, req: Request, resp: Response, keep_client: bool) -> bytes:
    """The response head for the client: its connection header made to match what poise
    will do with the client connection; `raw` itself when no header changed."""
    headers = resp.headers
    index = headers.index()
    if keep_client and req.version != "1.0":
        # The server closing its side does not close the client's: drop its `close`
        # (a `keep-alive` token is harmless to an HTTP/1.1 client and is left as is).
        if "connection" in index and not keep_alive("1.1", headers):
            headers.delete("connection")
            headers.delete("keep-alive")
    elif keep_client:  # an HTTP/1.0 client keeping its connection is told so
        headers.delete("keep-alive")
        headers.set("Connection", "keep-alive")
    elif [v.lower() for v in headers.values("connection")] != ["close"]:
        headers.delete("connection")
        headers.delete("keep-alive")
        headers.add("Connection", "close")
    if not headers.modified:
        return raw
    line = f"HTTP/{resp.version} {resp.status} {resp.reason}\r\n".encode("latin-1")
    return line + headers.encode() + b"\r\n"


def closing_plain_head(raw: bytes, req: Request) -> bytes:
    """A plain response head (validate.plain_length, checked by httptools) for a client
    whose connection closes after it: its Connection lines out and `Connection: close`
    at its end, the bytes client_head makes, by editing the bytes rather than reading
    the head into a Response and writing it again (issue 16: a `Connection: close`
    request costs about 24,000 instructions less, bench/README.md). A head written in
    another layout than client_head's takes client_head itself."""
    if raw[12:13] != b" " or not heads.written_as_rebuilt(raw):
        resp = read_response(raw)
        assert not isinstance(resp, str)  # httptools took it already (heads.plain_status)
        return client_head(raw, req, resp, False)
    return heads.CONNECTION_LINE.sub(b"", raw[:-2]) + b"Connection: close\r\n\r\n"
