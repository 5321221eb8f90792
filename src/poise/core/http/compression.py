"""HTTP compression as HAProxy 2.6 does it (`compression algo|type|offload`,
configuration.txt 4.2; its compression filter): which algorithm a request accepts, whether
its response is compressed, and the encoder that compresses the body as it streams.

On the request (after the backend's rules): the algorithms are the backend's, else the
frontend's; a `User-Agent` of an old `Mozilla/4` browser gets none; the first
`Accept-Encoding` value with the highest q-value (above 0) that names an algorithm (`*`
names the first) chooses it, else `identity` when it is configured. `offload` takes the
request's Accept-Encoding out once an algorithm is chosen.

On the response: compressed only when both messages are HTTP/1.1, the method is not HEAD,
the status is 200 to 203, the body has a length (Content-Length above 0, or chunked), no
Content-Encoding, no `Cache-Control: no-transform`, one valid ETag at most, and a content
type that is not multipart and starts with one of `compression type` (when given; a
response with no type is then not compressed). The head then loses its Content-Length,
goes chunked, has its ETag made weak and gets `Vary: Accept-Encoding` and the
Content-Encoding (none for identity), in the order HAProxy adds them.

The body: each piece the server sends is decoded from its chunks if it was chunked, fed
to zlib (level 1, HAProxy's `tune.comp.maxlevel` default) and flushed (Z_SYNC_FLUSH, as
HAProxy flushes each buffer it forwards), and goes out as one chunk; nothing waits for
the whole body, and a stream holds zlib's fixed window only. zlib is pure computation.
"""

from __future__ import annotations

import re
import zlib

from poise.config.model_http import Compression, CompressionAlgo
from poise.core.http.headers import Headers
from poise.core.http.message import Request, Response
from poise.core.http.validate import Framing

# tune.comp.maxlevel's default: HAProxy compresses at level 1.
LEVEL = 1
# zlib's window bits per algorithm: gzip framing, zlib framing, none.
_WBITS: dict[CompressionAlgo, int] = {"gzip": 31, "deflate": 15, "raw-deflate": -15}
# The name a client and the Content-Encoding use (raw-deflate is offered as deflate).
_TOKEN_NAME: dict[CompressionAlgo, str] = {
    "identity": "identity",
    "gzip": "gzip",
    "deflate": "deflate",
    "raw-deflate": "deflate",
}
_COMPRESSED_STATUSES = frozenset({200, 201, 202, 203})
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]*")
_ETAG = re.compile(r'(?:W/)?"[^"]*"')


def choose(
    backend: Compression | None, frontend: Compression | None, req: Request
) -> Encoder | None:
    """The encoder for this request's response (not started), or None: no algorithm is
    configured or the request accepts none. With `offload`, the request's Accept-Encoding
    is taken out of `req.headers` once an algorithm is chosen."""
    algos = backend.algos if backend is not None and backend.algos else ()
    if not algos and frontend is not None:
        algos = frontend.algos
    if not algos:
        return None
    headers = req.headers
    if old_browser(headers.get("user-agent")):
        return None
    algo = accepted(algos, headers.get_all("accept-encoding"))
    if algo is not None:
        if (backend is not None and backend.offload) or (frontend is not None and frontend.offload):
            headers.delete("accept-encoding")
    elif "identity" in algos:
        algo = "identity"  # identity needs no header
    else:
        return None
    types = backend.types if backend is not None and backend.types else ()
    if not types and frontend is not None:
        types = frontend.types
    return Encoder(algo, types)


def old_browser(agent: str | None) -> bool:
    """A `Mozilla/4` User-Agent that is not MSIE 6 with XP SP2 nor MSIE 7 and later
    (HAProxy's test, byte for byte)."""
    if agent is None or not agent.startswith("Mozilla/4"):
        return False
    return (
        len(agent) < 31
        or agent[25:30] != "MSIE "
        or agent[30] < "6"
        or (agent[30] == "6" and (len(agent) < 54 or agent[51:54] != "SV1"))
    )


def accepted(algos: tuple[CompressionAlgo, ...], lines: list[str]) -> CompressionAlgo | None:
    """The algorithm the Accept-Encoding values choose: the first value with the highest
    q-value above 0 that names one (`*` names the first of the list)."""
    best: CompressionAlgo | None = None
    best_q = 0
    for line in lines:
        for item in line.split(","):
            value = item.strip(" \t")
            token = _TOKEN.match(value)
            name = token.group(0).lower() if token else ""
            q = qvalue(value[len(name) :])
            if q <= best_q:
                continue
            for algo in algos:
                if value.startswith("*") or _TOKEN_NAME[algo] == name:
                    best, best_q = algo, q
                    break
    return best


def qvalue(params: str) -> int:
    """The q-value among a value's parameters in thousandths (1000 when absent), read as
    HAProxy reads it: up to three decimals, capped at 1000."""
    for item in params.split(";")[1:]:
        param = item.strip(" \t")
        if not param.startswith("q="):
            continue
        digits = param[2:]
        if not digits[:1].isdigit():
            return 1000
        q = int(digits[0]) * 1000
        if digits[1:2] == ".":
            for weight, char in zip((100, 10, 1), digits[2:5], strict=False):
                if not char.isdigit():
                    break
                q += int(char) * weight
        return min(q, 1000)
    return 1000


class Encoder:
    """One response's compression: `start` decides and edits the head; `feed` turns each
    piece of the body as received into the chunks the client gets."""

    __slots__ = ("algo", "chunks", "types", "zlib")

    def __init__(self, algo: CompressionAlgo, types: tuple[str, ...]) -> None:
        self.algo = algo
        self.types = types
        self.zlib: zlib._Compress | None = None
        self.chunks: ChunkDecoder | None = None

    def start(self, req: Request, resp: Response, framing: Framing) -> Encoder | None:
        """This encoder, ready for the body, when the response is compressed (its headers
        edited on `resp.headers`); None when it is not."""
        headers = resp.headers
        kind, length = framing.kind, framing.length
        if (
            req.version == "1.0"
            or resp.version == "1.0"
            or req.method == "HEAD"
            or resp.status not in _COMPRESSED_STATUSES
            or not (kind == "chunked" or (kind == "length" and length > 0))
            or not self.compressible(headers)
        ):
            return None
        headers.delete("content-length")
        if kind == "chunked":
            self.chunks = ChunkDecoder()
        else:
            headers.add("Transfer-Encoding", "chunked")
        for position, (name, value) in enumerate(headers.items):
            if name.lower() == "etag" and value.startswith('"'):
                headers.replace_at(position, name, "W/" + value)  # in place, as HAProxy
        headers.add("Vary", "Accept-Encoding")
        if self.algo != "identity":
            headers.add("Content-Encoding", _TOKEN_NAME[self.algo])
            self.zlib = zlib.compressobj(LEVEL, zlib.DEFLATED, _WBITS[self.algo])
        return self

    def compressible(self, headers: Headers) -> bool:
        """The header rules of HAProxy's compression filter for a response."""
        if headers.has("content-encoding"):
            return False
        for line in headers.get_all("cache-control"):
            if any(word.strip(" \t").lower() == "no-transform" for word in line.split(",")):
                return False
        etags = headers.get_all("etag")
        if len(etags) > 1 or (etags and not _ETAG.fullmatch(etags[0])):
            return False
        content_type = headers.get("content-type")
        if content_type is None:
            return not self.types
        lowered = content_type.lower()
        if lowered.startswith("multipart"):
            return False
        return not self.types or any(lowered.startswith(t.lower()) for t in self.types)

    def feed(self, data: bytes, last: bool) -> bytes:
        """The chunks for the client made of `data`, the body bytes as received (chunked
        or not); with `last`, the end of the body (the last chunk and the trailers)."""
        chunks = self.chunks
        payload = data if chunks is None else chunks.feed(data)
        compressor = self.zlib
        if compressor is not None:
            out = compressor.compress(payload) if payload else b""
            if last:
                out += compressor.flush(zlib.Z_FINISH)
            elif payload:
                out += compressor.flush(zlib.Z_SYNC_FLUSH)
        else:
            out = payload
        wire = b"%x\r\n%s\r\n" % (len(out), out) if out else b""
        if last:
            trailers = chunks.trailers if chunks is not None else b""
            wire += b"0\r\n" + trailers + b"\r\n"
        return wire


class ChunkDecoder:
    """The data of a chunked body (RFC 9112 7.1), read piece by piece. The framer
    (core/http/chunked.py) has already refused a malformed body; this one only takes the
    data out, and keeps the trailer lines to send after the last chunk."""

    __slots__ = ("line", "remaining", "state", "trailers")

    def __init__(self) -> None:
        self.state = 0  # 0: size line, 1: data, 2: CRLF after data, 3: trailers, 4: done
        self.remaining = 0
        self.line = b""
        self.trailers = b""

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end and self.state != 4:
            if self.state == 1:
                step = min(self.remaining, end - pos)
                out.append(data[pos : pos + step])
                pos += step
                self.remaining -= step
                if not self.remaining:
                    self.state, self.remaining = 2, 2
            elif self.state == 2:
                step = min(self.remaining, end - pos)
                pos += step
                self.remaining -= step
                if not self.remaining:
                    self.state = 0
            else:
                newline = data.find(b"\n", pos)
                if newline < 0:
                    self.line += data[pos:]
                    break
                line = self.line + data[pos : newline + 1]
                self.line = b""
                pos = newline + 1
                if self.state == 0:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                    self.state, self.remaining = (1, size) if size else (3, 0)
                elif line == b"\r\n":
                    self.state = 4
                else:
                    self.trailers += line
        return b"".join(out)
