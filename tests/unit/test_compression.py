"""HTTP compression (core/http/compression.py, config `compression`): the algorithm a
request chooses, the responses HAProxy 2.6 compresses and the head it sends, and the body
encoded piece by piece. The expected values are HAProxy 2.6.12's answers to the same
requests (`haproxy -db` on the same configuration, headers read with curl)."""

from __future__ import annotations

import zlib

import pytest

from poise.config.haproxy import parse
from poise.config.model_http import Compression, CompressionAlgo
from poise.core.http import compression
from poise.core.http.compression import ChunkDecoder, Encoder, accepted, choose, qvalue
from poise.core.http.headers import Headers
from poise.core.http.message import Request, Response
from poise.core.http.validate import Framing

BASE = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
BASE += "    timeout server 1s\n"
BODY = b"hello world, " * 200


def request(*headers: tuple[str, str], method: str = "GET", version: str = "1.1") -> Request:
    return Request(method, "/", version, Headers(list(headers)))


def response(*headers: tuple[str, str], status: int = 200, version: str = "1.1") -> Response:
    return Response(status, "OK", version, Headers(list(headers)))


def length(n: int = len(BODY)) -> Framing:
    return Framing("length", n)


# --- the configuration -----------------------------------------------------------------------


def test_algorithms_are_listed_last_named_first_over_the_defaults() -> None:
    text = (
        BASE + "    compression algo gzip\n    compression type text/\n"
        "    compression offload\n"  # a warning: offload is not inherited
        "frontend f\n    bind :80\n    compression algo deflate raw-deflate\n"
        "    compression algo identity\n    compression type application/json\n"
        "    compression offload\n    default_backend b\n"
        "backend b\n    server s 10.0.0.1:80\n"
        "listen t\n    mode tcp\n    bind :81\n    server s 10.0.0.1:81\n"
    )
    config, diagnostics = parse([("h.cfg", text)], {})
    assert config is not None
    assert [str(d) for d in diagnostics] == [
        "h.cfg:8: warning: 'compression': 'offload' ignored in 'defaults' section."
    ]
    front, back, tcp = (config.proxy(name) for name in ("f", "b", "t"))
    assert front is not None and back is not None and tcp is not None
    assert front.compression == Compression(
        ("identity", "raw-deflate", "deflate", "gzip"), ("application/json", "text/"), True
    )
    assert back.compression == Compression(("gzip",), ("text/",), False)
    assert tcp.compression is None  # TCP mode: nothing to compress


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("compression", "'compression' expects 'algo', 'type' or 'offload'"),
        ("compression direction both", "'compression' expects 'algo', 'type' or 'offload'"),
        ("compression algo", "'compression' expects <algorithm>."),
        ("compression algo gzip br", "'compression' : 'br' is not a supported algorithm."),
        ("compression type", "'compression' expects <type>."),
    ],
)
def test_bad_compression_lines_as_haproxy_words_them(line: str, message: str) -> None:
    text = BASE + f"listen f\n    bind :80\n    {line}\n    server s 10.0.0.1:80\n"
    config, diagnostics = parse([("h.cfg", text)], {})
    assert config is None
    assert [str(d) for d in diagnostics] == [f"h.cfg:8: error: 'compression': {message}"]


# --- the request -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (["gzip"], "gzip"),
        (["GZIP"], "gzip"),
        (["x-gzip"], None),
        (["br", "deflate"], "deflate"),  # the list's first deflate: the one named last
        (["gzip;q=0"], None),
        (["gzip;q=0.5, deflate;q=0.5"], "gzip"),  # equal q: the first value
        (["gzip;q=0.5, deflate;q=0.6"], "deflate"),
        (["gzip; q=0.001", "identity;q=0.002"], "identity"),
        (["*"], "identity"),  # `*`: the first of the list
        (["br;q=1, *;q=0.1"], "identity"),
        ([], None),
    ],
)
def test_accept_encoding_chooses_as_haproxy(accept: list[str], chosen: str | None) -> None:
    # `compression algo gzip` then `compression algo raw-deflate deflate identity`:
    algos: tuple[CompressionAlgo, ...] = ("identity", "deflate", "raw-deflate", "gzip")
    assert accepted(algos, accept) == chosen


def test_q_values_read_as_haproxy_reads_them() -> None:
    assert [qvalue(p) for p in ("", ";q=0", ";q=0.5", "; q=1", ";a=b;q=0.25", ";q=2", ";q=x")] == [
        1000,
        0,
        500,
        1000,
        250,
        1000,
        1000,
    ]


def test_choice_backend_over_frontend_offload_and_identity() -> None:
    gzip_only = Compression(("gzip",))
    offload = Compression((), (), True)
    req = request(("Accept-Encoding", "gzip, br"))
    encoder = choose(offload, gzip_only, req)
    assert encoder is not None and encoder.algo == "gzip"
    assert not req.headers.has("accept-encoding")  # offload: the server compresses nothing
    req = request(("Accept-Encoding", "br"))
    assert choose(None, gzip_only, req) is None and req.headers.has("accept-encoding")
    with_identity = Compression(("identity", "gzip"), ("text/",))
    encoder = choose(with_identity, gzip_only, request(("Accept-Encoding", "br")))
    assert encoder is not None and (encoder.algo, encoder.types) == ("identity", ("text/",))
    assert choose(None, None, req) is None and choose(Compression(), None, req) is None


@pytest.mark.parametrize(
    ("agent", "old"),
    [
        ("Mozilla/4.0 (compatible; MSIE 5.0; Windows)", True),
        ("Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)", False),
        ("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)", True),
        ("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)", False),
        ("Mozilla/4.0", True),
        ("Mozilla/5.0 (X11; Linux x86_64)", False),
        (None, False),
    ],
)
def test_old_browsers_get_no_compression(agent: str | None, old: bool) -> None:
    assert compression.old_browser(agent) is old


# --- the response ----------------------------------------------------------------------------


def started(
    resp: Response,
    req: Request | None = None,
    framing: Framing | None = None,
    types: tuple[str, ...] = (),
    algo: CompressionAlgo = "gzip",
) -> Encoder | None:
    encoder = Encoder(algo, types)
    return encoder.start(req or request(), resp, framing or length())


def test_a_compressed_head_as_haproxy_sends_it() -> None:
    resp = response(
        ("Content-Type", "text/html"),
        ("ETag", '"abc"'),
        ("Vary", "Cookie"),
        ("Content-Length", str(len(BODY))),
    )
    assert started(resp) is not None
    assert resp.headers.items == [
        ("Content-Type", "text/html"),
        ("ETag", 'W/"abc"'),
        ("Vary", "Cookie"),
        ("Transfer-Encoding", "chunked"),
        ("Vary", "Accept-Encoding"),
        ("Content-Encoding", "gzip"),
    ]
    resp = response(("Transfer-Encoding", "chunked"), ("ETag", 'W/"x"'))
    assert started(resp, framing=Framing("chunked", 0), algo="identity") is not None
    assert resp.headers.items == [
        ("Transfer-Encoding", "chunked"),
        ("ETag", 'W/"x"'),
        ("Vary", "Accept-Encoding"),
    ]


@pytest.mark.parametrize(
    ("headers", "status", "types"),
    [
        ((("Content-Encoding", "br"),), 200, ()),
        ((("Cache-Control", "public, No-Transform"),), 200, ()),
        ((("ETag", "abc"),), 200, ()),
        ((("ETag", '"a"'), ("ETag", '"b"')), 200, ()),
        ((("Content-Type", "multipart/mixed"),), 200, ("multipart",)),
        ((("Content-Type", "image/png"),), 200, ("text/",)),
        ((), 200, ("text/",)),  # no type while types are listed
        ((("Content-Type", "text/html"),), 206, ()),
        ((("Content-Type", "text/html"),), 404, ()),
    ],
)
def test_responses_left_alone(
    headers: tuple[tuple[str, str], ...], status: int, types: tuple[str, ...]
) -> None:
    resp = response(*headers, status=status)
    assert started(resp, types=types) is None
    assert resp.headers.items == list(headers) and not resp.headers.modified


def test_messages_left_alone() -> None:
    html = ("Content-Type", "TEXT/HTML; charset=utf-8")
    assert started(response(html), types=("text/html",)) is not None
    assert started(response(html), req=request(version="1.0")) is None
    assert started(response(html, version="1.0")) is None
    assert started(response(html), req=request(method="HEAD")) is None
    assert started(response(html), framing=length(0)) is None
    assert started(response(html), framing=Framing("close", 0)) is None
    assert started(response(html, status=203)) is not None


# --- the body --------------------------------------------------------------------------------


def unchunk(wire: bytes) -> tuple[list[bytes], bytes]:
    """The chunks of a chunked body and its trailer section."""
    chunks: list[bytes] = []
    while True:
        line, _, wire = wire.partition(b"\r\n")
        size = int(line, 16)
        if size == 0:
            return chunks, wire
        chunks.append(wire[:size])
        assert wire[size : size + 2] == b"\r\n"
        wire = wire[size + 2 :]


@pytest.mark.parametrize(("algo", "wbits"), [("gzip", 31), ("deflate", 15), ("raw-deflate", -15)])
def test_each_piece_goes_out_as_a_chunk_that_decodes_at_once(
    algo: CompressionAlgo, wbits: int
) -> None:
    encoder = started(response(), algo=algo)
    assert encoder is not None
    decoder = zlib.decompressobj(wbits)
    for piece in (BODY[:100], BODY[100:1000]):
        chunks, rest = unchunk(encoder.feed(piece, False) + b"0\r\n")
        assert len(chunks) == 1 and rest == b""
        # A sync flush: what was sent so far decodes now, without the rest.
        assert decoder.decompress(chunks[0]) == piece
    chunks, trailers = unchunk(encoder.feed(BODY[1000:], True))
    assert trailers == b"\r\n"
    assert decoder.decompress(b"".join(chunks)) + decoder.flush() == BODY[1000:]
    assert decoder.eof


def test_a_chunked_body_is_decoded_and_its_trailers_kept() -> None:
    encoder = started(response(("Transfer-Encoding", "chunked")), framing=Framing("chunked", 0))
    assert encoder is not None
    wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n"
    out = b"".join(encoder.feed(wire[i : i + 1], i == len(wire) - 1) for i in range(len(wire)))
    chunks, trailers = unchunk(out)
    assert zlib.decompress(b"".join(chunks), 31) == b"hello world"
    assert trailers == b"X-Sum: 1\r\n\r\n"


def test_identity_rechunks_as_it_came() -> None:
    encoder = started(response(), algo="identity")
    assert encoder is not None
    assert encoder.feed(b"abc", False) == b"3\r\nabc\r\n"
    assert encoder.feed(b"", True) == b"0\r\n\r\n"


def test_the_chunk_decoder_alone() -> None:
    decoder = ChunkDecoder()
    assert decoder.feed(b"3\r\nab") == b"ab"
    assert decoder.feed(b"c\r\n0\r\n\r\nleft") == b"c"
    assert decoder.state == 4 and decoder.trailers == b""
