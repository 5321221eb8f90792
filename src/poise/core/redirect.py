"""`redirect location|prefix|scheme`: the Location a request is sent to, and the response,
byte for byte as HAProxy 2.6 writes it (lower-case header names; `cache-control: no-cache`
on the temporary codes 302, 303 and 307, not on the permanent 301 and 308).
"""

from __future__ import annotations

from poise.config.model import Redirect

REASONS = {
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
}


def location(rule: Redirect, uri: str, host: str | None) -> str:
    """Where `rule` sends a request for `uri` (path and query) with Host `host`."""
    if rule.kind == "location":
        return rule.target
    if rule.drop_query:
        uri = uri.split("?", 1)[0]
        if rule.append_slash and not uri.endswith("/"):
            uri += "/"
    if rule.kind == "prefix":
        return uri if rule.target == "/" else rule.target + uri
    return f"{rule.target}://{host or ''}{uri}"


def response(rule: Redirect, target: str, close: bool) -> bytes:
    head = (
        f"HTTP/1.1 {rule.code} {REASONS[rule.code]}\r\ncontent-length: 0\r\nlocation: {target}\r\n"
    )
    if rule.code in (302, 303, 307):
        head += "cache-control: no-cache\r\n"
    if close:
        head += "connection: close\r\n"
    return (head + "\r\n").encode("latin-1", "replace")
