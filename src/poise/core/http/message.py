"""An HTTP request and response head as poise sees them, with the connection facts that
ACL fetches and logs need. Pure data, filled by the shell from httptools' callbacks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from poise.core.http.headers import Headers

if TYPE_CHECKING:
    from poise.core.fetch import Value
    from poise.core.http.cache import CacheState
    from poise.core.stickfetch import Counter
    from poise.core.txn import Conn


@dataclass(slots=True)
class Request:
    method: str
    uri: str  # as received: origin-form (/path?query), or absolute-form
    version: str  # "1.0" or "1.1"
    headers: Headers = field(default_factory=Headers)
    # The connection it came on.
    src: str = ""
    src_port: int = 0
    dst: str = ""
    dst_port: int = 0
    ssl: bool = False  # ssl_fc: the client connection is TLS
    sni: str | None = None  # ssl_fc_sni
    client_cert: bool = False  # ssl_c_used: the client presented a certificate
    client_verify: int = 0  # ssl_c_verify: its verification result (0: verified)
    # The transaction's variables (core/variables.py), None until one is set.
    vars: dict[str, Value] | None = None
    # The client connection's record, which holds the `sess` variables (None: they last
    # for this request only).
    conn: Conn | None = None
    # The request line as received, kept when a rule rewrites it (set-path ...): the log
    # shows it, as HAProxy's %r does.
    received_line: str | None = None
    # `set-dst` or `set-dst-port` changed `dst`/`dst_port`: a transparent server
    # connects there (core/http/address_rules.py).
    dst_set: bool = False
    # What `cache-use` and `cache-store` know of this transaction (core/http/cache.py).
    cache: CacheState | None = None
    # `option http-buffer-request`: the body held before the rules (latin-1: one
    # character per byte) and the size the client announced (core/request_body.py).
    body: str | None = None
    body_size: int = 0
    body_end: int = -1  # where the whole body ends in the client's buffer (-1: not all in)
    # `set-log-level` ("": the line's own level) and `set-timeout server|tunnel`, in
    # seconds (core/http/txn_rules.py).
    log_level: str = ""
    server_timeout: float | None = None
    tunnel_timeout: float | None = None
    # The frontend's capture slots (`capture ... header`, `declare capture`, `http-request
    # capture`), which capture rules fill, and their lengths (request, response).
    captures: list[str | None] | None = None
    resp_captures: list[str | None] | None = None
    capture_lengths: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
    # The stick counters this request tracks (`http-request track-sc0` ...), None: none.
    track: list[Counter | None] | None = None
    # `early-hint` rules' 103 responses, sent before the rules' verdict is acted on.
    hints: list[bytes] | None = None

    @property
    def path(self) -> str:
        """The path without the query string (HAProxy's `path` fetch)."""
        uri = self.uri
        if "://" in uri[:10]:  # absolute-form: skip scheme://authority
            slash = uri.find("/", uri.find("://") + 3)
            uri = uri[slash:] if slash >= 0 else "/"
        return uri.split("?", 1)[0]

    @property
    def query(self) -> str | None:
        _, mark, query = self.uri.partition("?")
        return query if mark else None

    @property
    def request_line(self) -> str:
        return f"{self.method} {self.uri} HTTP/{self.version}"


@dataclass(slots=True)
class Response:
    status: int
    reason: str
    version: str
    headers: Headers = field(default_factory=Headers)


def keep_alive(version: str, headers: Headers) -> bool:
    """Does the sender of this message want the connection kept after it (RFC 9112 9.3)?
    HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.

    (httptools' should_keep_alive() cannot be asked once a whole message was parsed:
    llhttp has already reset its flags for the next message by then.)"""
    lines = headers.index().get("connection")
    if not lines:  # the common case, answered without building any list
        return version != "1.0"
    if len(lines) == 1 and "," not in lines[0]:  # one token (`close`): no set to build
        token = lines[0].strip().lower()
        return token != "close" and (version != "1.0" or token == "keep-alive")
    tokens = {token.strip().lower() for line in lines for token in line.split(",")}
    if "close" in tokens:
        return False
    return version != "1.0" or "keep-alive" in tokens
