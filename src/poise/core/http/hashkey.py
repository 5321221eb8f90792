"""The keys of HAProxy's HTTP hashing algorithms.

`balance uri`, `balance url_param NAME` and `balance hdr(NAME)` (configuration.txt 4.2,
"balance") hash one part of the request, so that the same URI, parameter or header value
reaches the same server on every node and worker; `source` hashes the client address. The
part is taken as HAProxy's backend.c takes it (get_server_uh, get_server_ph, get_server_hh)
and hashed by balancer/source.py as HAProxy hashes it, so a key lands on the server HAProxy
chooses for it.

When the part is absent (no query parameter of that name, no header or an empty one),
`hash_key` returns None and the backend balances the request round robin, as HAProxy does
(Balancer.pick_without_key). `rdp-cookie` has no key in an HTTP request (HAProxy reads it
from a TCP payload only): None as well.
"""

from __future__ import annotations

import ipaddress

from poise.config import model
from poise.core.http.headers import Headers, split_values
from poise.core.http.message import Request

A = model.Algorithm


def hash_key(balance: model.Balance, req: Request) -> bytes | None:
    """What the backend's algorithm hashes for `req`: bytes, or None when the request
    lacks it (balance round robin then). Algorithms that hash nothing get b""."""
    algorithm = balance.algorithm
    options = balance.options
    if algorithm is A.URI:
        return uri_key(
            req.uri,
            whole=options.whole,
            length=options.length,
            depth=options.depth,
            path_only=options.path_only,
        )
    if algorithm is A.URL_PARAM:
        return url_param_key(req.uri, balance.argument or "")
    if algorithm is A.HDR:
        return header_key(req.headers, balance.argument or "", domain_only=options.use_domain_only)
    if algorithm is A.SOURCE:
        return source_key(req.src)
    if algorithm is A.RDP_COOKIE:
        return None
    return b""


def uri_key(
    uri: str, *, whole: bool = False, length: int = 0, depth: int = 0, path_only: bool = False
) -> bytes:
    """`balance uri`: the request URI as received, up to the "?" (all of it with
    `whole`), at most `length` characters, at most `depth` directories (the hash stops
    at the depth+1-th "/"). `path_only` starts at the path's first "/", dropping the
    scheme and authority of an absolute-form URI."""
    if path_only:
        uri = request_path(uri)
    if length:
        uri = uri[:length]
    slashes = 0
    end = 0
    for char in uri:
        if char == "/":
            slashes += 1
            if depth and slashes == depth + 1:
                break
        elif char == "?" and not whole:
            break
        end += 1
    return uri[:end].encode("latin-1")


def request_path(uri: str) -> str:
    """The path (with its query) of a request URI, as HAProxy's http_get_path: from the
    first "/" after `scheme://authority` in absolute form, the URI itself in origin form,
    and "" for "*" or a URI without a path."""
    if not uri or uri[0] == "*":
        return ""
    start = 0
    if uri[0].isascii() and uri[0].isalpha():
        scheme = 1
        while scheme < len(uri) and (
            (uri[scheme].isascii() and uri[scheme].isalnum()) or uri[scheme] in "+-."
        ):
            scheme += 1
        if not uri.startswith("://", scheme):
            return ""
        start = scheme + 3
    slash = uri.find("/", start)
    return uri[slash:] if slash >= 0 else ""


def url_param_key(uri: str, name: str) -> bytes | None:
    """`balance url_param NAME`: the value of the first `NAME=` parameter of the query
    string (parameters split on "&", the name compared case-sensitively, the value up to
    the next "&", not decoded; it may be empty), or None when there is none."""
    mark = uri.find("?")
    if mark < 0 or not name:
        return None
    size = len(name)
    end = len(uri)
    params = mark + 1
    while end - params > size:
        if uri[params + size] == "=" and uri.startswith(name, params):
            start = params + size + 1
            stop = uri.find("&", start)
            return uri[start : stop if stop >= 0 else end].encode("latin-1")
        amp = uri.find("&", params)
        if amp < 0:
            return None
        params = amp + 1
    return None


def header_key(headers: Headers, name: str, *, domain_only: bool = False) -> bytes | None:
    """`balance hdr(NAME)`: the first value of the first NAME header (up to a comma
    outside quotes, trimmed), or None when the header is absent or that value empty.
    `domain_only` keeps the label before the last dot ("haproxy.1wt.eu" -> "1wt")."""
    line = headers.get(name)
    if line is None:
        return None
    value = split_values(line)[0]
    if not value:
        return None
    if domain_only:
        value = main_domain(value)
    return value.encode("latin-1")


def main_domain(value: str) -> str:
    """HAProxy's use_domain_only: walking back from the end, the text between the last
    dot and the dot before it ("www.example.com" -> "example"); a value without a dot is
    kept whole. HAProxy 2.6 also reads the byte just past the value: when that byte is a
    dot it hashes the last label instead. It is the next header's name when one follows
    (never a dot in practice), but stale buffer data after the last header, so for that
    header HAProxy itself is not deterministic; poise assumes no dot."""
    size = len(value)
    end = size
    index = size
    domain = False
    while index > 0:
        if domain:
            if value[index - 1] == ".":
                break
        elif index < size and value[index] == ".":
            end = index
            domain = True
        index -= 1
    return value[index:end]


def source_key(src: str) -> bytes | None:
    """`balance source`: the client address as 4 (IPv4) or 16 (IPv6) bytes, None when the
    client has no IP address (a unix socket)."""
    try:
        return ipaddress.ip_address(src).packed
    except ValueError:
        return None
