"""The request body as the rules see it under `option http-buffer-request`: what was
held of it (core/http/body_wait.py decodes a chunked one here) and the fetches that read
it (configuration.txt 7.3.6): `req.body` (the bytes, as a binary sample), `req.body_len`
(how many are held), `req.body_size` (the length the client announced: its
Content-Length, or the sizes of the chunks seen so far) and `req.body_param([NAME])`
(a `NAME=value` parameter of a form body, the value left URL-encoded as HAProxy leaves
it). Without the option nothing is held and these fetches give nothing. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from poise.core.http.message import Request, Response
from poise.core.values import Value

Values = Callable[[Request, Response | None], Sequence[Value]]
_NONE: tuple[Value, ...] = ()


def decode_chunks(buf: bytes | bytearray, end: int) -> tuple[bytes, int, int]:
    """The data of the chunks in `buf[:end]`, the sizes the chunk lines announced (a
    chunk cut short counts whole), and where the message ends in `buf` when the last
    chunk and the trailers are in (else -1). A malformed chunk stops here: forwarding
    the body refuses it (core/http/chunked.py)."""
    parts: list[bytes] = []
    pos = declared = 0
    end = min(end, len(buf))
    while True:
        newline = buf.find(b"\n", pos, end)
        if newline < 0:
            return b"".join(parts), declared, -1
        size_text = bytes(buf[pos:newline]).split(b";", 1)[0].strip(b" \t\r")
        try:
            size = int(size_text, 16)
        except ValueError:
            return b"".join(parts), declared, -1
        pos = newline + 1
        if size == 0:  # the trailers end with an empty line
            if buf.startswith(b"\r\n", pos):
                return b"".join(parts), declared, pos + 2
            last = buf.find(b"\r\n\r\n", pos, end)
            return b"".join(parts), declared, last + 4 if last >= 0 else -1
        declared += size
        parts.append(bytes(buf[pos : min(pos + size, end)]))
        pos += size + 2  # the chunk's CRLF
        if pos > end:
            return b"".join(parts), declared, -1


def fetcher(name: str, args: tuple[str, ...]) -> Values:
    """The fetch `name` (one of `req.body`, `req.body_len`, `req.body_size`,
    `req.body_param`) with its arguments."""
    if name == "req.body":
        return _body
    if name == "req.body_len":
        return _body_len
    if name == "req.body_size":
        return _body_size
    wanted = args[0] if args else ""

    def body_param(req: Request, resp: Response | None) -> Sequence[Value]:
        body = req.body
        if not body:
            return _NONE
        found: list[Value] = []
        for param in body.split("&"):
            key, equal, value = param.partition("=")
            if equal and (not wanted or key == wanted):
                found.append(value)
        return found

    return body_param


def _body(req: Request, resp: Response | None) -> Sequence[Value]:
    body = req.body
    return _NONE if body is None else (body,)


def _body_len(req: Request, resp: Response | None) -> Sequence[Value]:
    body = req.body
    return _NONE if body is None else (len(body),)


def _body_size(req: Request, resp: Response | None) -> Sequence[Value]:
    return _NONE if req.body is None else (req.body_size,)
