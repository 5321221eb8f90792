"""The responses poise generates for `http-request deny|return|redirect` and
`http-response deny`, byte for byte as HAProxy 2.6 sends them (compared with a live
HAProxy 2.6.12 on 127.0.0.1).

HAProxy turns every generated response (its built-in error pages, an `errorfile`, a
`return` payload) into its internal message form and lets its HTTP/1 layer write it:
- header names come out in lower case, in their order; a `Connection` header of the
  message is dropped, and only says whether the connection closes;
- a message closes the connection when it says `Connection: close` or has no
  Content-Length (its end could not be told otherwise); among the built-in pages, 400 and
  408 close;
- the connection header is then decided as for any response: `connection: close` on an
  HTTP/1.1 message when the connection closes, `connection: keep-alive` when it stays
  open and the client or the message speaks HTTP/1.0, nothing otherwise;
- the answer to a HEAD request has no body (its headers keep the length).
A `return` response is built as: status line, the `hdr` headers, `content-length`
(not on a 204), `content-type` (when there is a payload), then the connection header.
"""

from __future__ import annotations

from dataclasses import dataclass

from poise.config.errorfile import parse_response
from poise.core.errors import PAGES as ERROR_TEXTS
from poise.core.http.message import Request

# HAProxy 2.6's reason phrases (http_get_reason); other codes get their class's phrase.
REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    203: "Non-Authoritative Information",
    204: "No Content",
    205: "Reset Content",
    206: "Partial Content",
    207: "Multi-Status",
    210: "Content Different",
    226: "IM Used",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    303: "See Other",
    304: "Not Modified",
    305: "Use Proxy",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    310: "Too many Redirects",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Time-out",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Requested range unsatisfiable",
    417: "Expectation failed",
    418: "I'm a teapot",
    421: "Misdirected Request",
    422: "Unprocessable Content",
    423: "Locked",
    424: "Method failure",
    425: "Too Early",
    426: "Upgrade Required",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    449: "Retry With",
    450: "Blocked by Windows Parental Controls",
    451: "Unavailable For Legal Reasons",
    456: "Unrecoverable Error",
    499: "client has closed connection",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway or Proxy Error",
    503: "Service Unavailable",
    504: "Gateway Time-out",
    505: "HTTP Version not supported",
    506: "Variant also negotiate",
    507: "Insufficient storage",
    508: "Loop detected",
    509: "Bandwidth Limit Exceeded",
    510: "Not extended",
    511: "Network authentication required",
    520: "Web server is returning an unknown error",
}
_CLASS_REASONS = {1: "Informational", 2: "Success", 3: "Redirection", 4: "Client Error"}
_CLASS_REASONS[5] = "Server Error"

# Among HAProxy's built-in pages, those that close the connection.
_CLOSING_PAGES = frozenset({400, 408})


def reason(status: int) -> str:
    return REASONS.get(status) or _CLASS_REASONS.get(status // 100, "Other")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A generated response but for its connection header: `head` is the status line and
    header lines (each with CRLF), `close` whether the message itself closes the
    connection; `empty` an empty `errorfile` (nothing is sent, the connection closes)."""

    status: int
    http10: bool
    head: bytes
    body: bytes
    close: bool = False
    empty: bool = False


def _page(status: int) -> Prepared:
    """A built-in error page (core/errors.py holds HAProxy's texts)."""
    title, text = ERROR_TEXTS[status]
    body = f"<html><body><h1>{status} {title}</h1>\n{text}\n</body></html>\n".encode()
    head = (
        f"HTTP/1.1 {status} {title}\r\ncontent-length: {len(body)}\r\n"
        "cache-control: no-cache\r\ncontent-type: text/html\r\n"
    ).encode()
    return Prepared(status, False, head, body, close=status in _CLOSING_PAGES)


PAGES: dict[int, Prepared] = {status: _page(status) for status in ERROR_TEXTS}


def errorfile(content: bytes) -> Prepared:
    """A whole response from a file, as HAProxy sends it (the file was checked when the
    configuration was loaded)."""
    message = parse_response(content)
    if message is None:
        return Prepared(0, False, b"", b"", close=True, empty=True)
    # Without a reason phrase HAProxy still writes the space after the status.
    lines = [f"{message.version} {message.status} {message.reason}"]
    close = not message.header("content-length")
    for name, value in message.headers:
        if name.lower() == "connection":
            tokens = {token.strip().lower() for token in value.split(",")}
            close = close or "close" in tokens
        else:
            lines.append(f"{name.lower()}: {value}")
    head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
    return Prepared(message.status, message.version == "HTTP/1.0", head, message.body, close)


def built(
    status: int,
    headers: list[tuple[str, str]],
    content_type: str | None,
    body: bytes,
) -> Prepared:
    """A `return` response (and a `deny` with a payload)."""
    lines = [f"HTTP/1.1 {status} {reason(status)}"]
    lines.extend(f"{name.lower()}: {value}" for name, value in headers)
    if status != 204:
        lines.append(f"content-length: {len(body)}")
    if content_type is not None:
        lines.append(f"content-type: {content_type}")
    head = ("\r\n".join(lines) + "\r\n").encode("latin-1", "replace")
    return Prepared(status, False, head, body)


def client_closes(req: Request) -> bool:
    """Whether the client asked to close after this request (RFC 9112 9.3: HTTP/1.0
    closes unless it says keep-alive; HTTP/1.1 stays open unless it says close)."""
    tokens = {token.lower() for token in req.headers.values("connection")}
    if req.version == "1.0":
        return "keep-alive" not in tokens
    return "close" in tokens


def finish(prepared: Prepared, req: Request, close: bool) -> tuple[bytes, bool]:
    """The bytes to send for a prepared response, and whether the connection closes
    after them (`close`: the client or poise's connection mode wants it closed)."""
    if prepared.empty:
        return b"", True
    close = close or prepared.close
    head = prepared.head
    if close:
        if not prepared.http10:
            head += b"connection: close\r\n"
    elif prepared.http10 or req.version == "1.0":
        head += b"connection: keep-alive\r\n"
    body = b"" if req.method == "HEAD" else prepared.body
    return head + b"\r\n" + body, close


def redirect_keep_alive(response: bytes, req: Request, close: bool) -> bytes:
    """core/redirect.py writes HAProxy's redirects but for the keep-alive announce an
    HTTP/1.0 client gets when its connection stays open."""
    if close or req.version != "1.0":
        return response
    return response[:-2] + b"connection: keep-alive\r\n\r\n"
