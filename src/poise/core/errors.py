"""HAProxy's built-in error responses, byte for byte as HAProxy 2.6 sends them (the
`errorfile` directive will replace them per proxy).
"""

from __future__ import annotations

_PAGES = {
    400: ("Bad request", "Your browser sent an invalid request."),
    403: ("Forbidden", "Request forbidden by administrative rules."),
    408: ("Request Time-out", "Your browser didn't send a complete request in time."),
    500: ("Internal Server Error", "An internal server error occurred."),
    502: ("Bad Gateway", "The server returned an invalid or incomplete response."),
    503: ("Service Unavailable", "No server is available to handle this request."),
    504: ("Gateway Time-out", "The server didn't respond in time."),
}


def _page(code: int) -> bytes:
    reason, text = _PAGES[code]
    body = f"<html><body><h1>{code} {reason}</h1>\n{text}\n</body></html>\n"
    return (
        f"HTTP/1.1 {code} {reason}\r\n"
        f"Content-length: {len(body)}\r\n"
        "Cache-Control: no-cache\r\n"
        "Connection: close\r\n"
        "Content-Type: text/html\r\n"
        "\r\n" + body
    ).encode()


ERROR_PAGES: dict[int, bytes] = {code: _page(code) for code in _PAGES}
