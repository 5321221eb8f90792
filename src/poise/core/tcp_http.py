"""HTTP fetches on a TCP connection's bytes: in `mode tcp` HAProxy 2.6 reads the bytes its
content rules hold as an HTTP/1 request when they begin with a whole request head, so
`path_beg`, `hdr(host)`, `method`... work in a TCP frontend's `tcp-request content` and
`use_backend` rules (the classic `tcp-request content accept if HTTP` then `use_backend
web if { path_beg /web }`, which an HTTP backend then serves: net/upgrade.py). Until the
head is whole they find nothing. Pure.
"""

from __future__ import annotations

from poise.core.http.message import Request
from poise.core.http.request_analysers import read_request
from poise.core.http.validate import check_request_head


def read_head(req: Request, data: bytes) -> None:
    """Fill `req` (the connection as layer-4 rules see it: addresses, no request) with the
    method, target, version and headers of the request head `data` begins with, once it
    is whole and valid; otherwise leave it as it is."""
    if req.method:
        return  # read already
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return
    raw = data[: end + 4]
    if check_request_head(raw) is not None:
        return
    conn = req.conn
    if conn is None:
        return
    parsed = read_request(raw, conn)
    if isinstance(parsed, Request):
        req.method, req.uri, req.version = parsed.method, parsed.uri, parsed.version
        req.headers = parsed.headers
