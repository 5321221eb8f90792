"""HAProxy's built-in error responses, byte for byte as HAProxy 2.6 sends them (captured
from Debian's haproxy 2.6.12; `errorfile` replaces them per proxy).

HAProxy 2.6 writes them in two forms:
- a request it cannot parse (400) or that does not arrive in time (408) is answered by
  the HTTP/1 layer: capitalised header names, `Connection: close`, and the connection
  ends (`PARSE_ERRORS`);
- every other answer of its own (deny, 502, 503, 504, `return`) is an ordinary response:
  lower-case header names, and the connection stays open for the next request
  (`reply()`).
"""

from __future__ import annotations

PAGES: dict[int, tuple[str, str]] = {
    200: ("OK", "Service ready."),
    400: ("Bad request", "Your browser sent an invalid request."),
    401: ("Unauthorized", "You need a valid user and password to access this content."),
    403: ("Forbidden", "Request forbidden by administrative rules."),
    404: ("Not Found", "The resource could not be found."),
    405: (
        "Method Not Allowed",
        "A request was made of a resource using a request method not supported by that resource",
    ),
    407: ("Unauthorized", "You need a valid user and password to access this content."),
    408: ("Request Time-out", "Your browser didn't send a complete request in time."),
    410: ("Gone", "The resource is no longer available and will not be available again."),
    413: ("Payload Too Large", "The request entity exceeds the maximum allowed."),
    425: ("Too Early", "Your browser sent early data."),
    429: ("Too Many Requests", "You have sent too many requests in a given amount of time."),
    500: ("Internal Server Error", "An internal server error occurred."),
    501: (
        "Not Implemented",
        ".The server does not support the functionality required to fulfill the request.",
    ),
    502: ("Bad Gateway", "The server returned an invalid or incomplete response."),
    503: ("Service Unavailable", "No server is available to handle this request."),
    504: ("Gateway Time-out", "The server didn't respond in time."),
}


def _body(code: int) -> str:
    reason, text = PAGES.get(code, PAGES[500])
    return f"<html><body><h1>{code} {reason}</h1>\n{text}\n</body></html>\n"


def reply(code: int, close: bool = False) -> bytes:
    """HAProxy's own answer with status `code` (deny, 502, 503, 504)."""
    reason = PAGES.get(code, PAGES[500])[0]
    body = _body(code)
    connection = "connection: close\r\n" if close else ""
    return (
        f"HTTP/1.1 {code} {reason}\r\ncontent-length: {len(body)}\r\n"
        f"cache-control: no-cache\r\ncontent-type: text/html\r\n{connection}\r\n{body}"
    ).encode()


def _parse_error(code: int) -> bytes:
    reason = PAGES.get(code, PAGES[500])[0]
    body = _body(code)
    return (
        f"HTTP/1.1 {code} {reason}\r\nContent-length: {len(body)}\r\n"
        "Cache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n" + body
    ).encode()


def parse_error(code: int) -> bytes:
    """The answer to a request poise refuses to parse or forward; the connection then
    closes."""
    page = PARSE_ERRORS.get(code)
    return page if page is not None else _parse_error(code)


PARSE_ERRORS: dict[int, bytes] = {code: _parse_error(code) for code in (400, 408, 413, 501)}
