"""The chunked-body scanner finds the exact end of a message however the bytes are split
across reads, and refuses malformed chunk sizes (RFC 9112 7.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.core.http.chunked import ChunkedScanner, ChunkError


def encode(chunks: list[bytes], trailers: list[bytes]) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c)
    return body + b"0\r\n" + b"".join(t + b"\r\n" for t in trailers) + b"\r\n"


def scan(data: bytes, cuts: list[int]) -> int:
    """Feed `data` in pieces; return the offset (in `data`) where the message ended."""
    scanner = ChunkedScanner()
    offset = 0
    for piece in [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]:
        end = scanner.feed(piece)
        if scanner.done:
            return offset + end
        offset += len(piece)
    raise AssertionError("message did not end")


@given(
    st.lists(st.binary(max_size=300), max_size=8),
    st.lists(st.from_regex(rb"\A[A-Za-z-]{1,10}: [a-z]{0,10}\Z"), max_size=2),
    st.binary(max_size=40),
    st.data(),
)
def test_the_end_is_found_whatever_the_split(
    chunks: list[bytes], trailers: list[bytes], after: bytes, data: st.DataObject
) -> None:
    message = encode(chunks, trailers)
    stream = message + after
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=6)))
    cuts = [c for c in cuts if 0 < c < len(stream)]
    assert scan(stream, cuts) == len(message)


def test_chunk_extensions_are_skipped() -> None:
    assert scan(b"3;name=value\r\nabc\r\n0\r\n\r\nNEXT", []) == 24


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nab\r\n0\r\n\r\n",  # not hex
        b"-1\r\nab\r\n0\r\n\r\n",
        b"0x3\r\nabc\r\n0\r\n\r\n",
        b"3\nabc\r\n0\r\n\r\n",  # bare LF
        b"3\r\nabcXX0\r\n\r\n",  # data not followed by CRLF
        b"11111111111111111\r\n",  # more than 16 hex digits
        b"\r\n",  # empty size
    ],
)
def test_malformed_chunked_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(ChunkError):
        ChunkedScanner().feed(body)


@pytest.mark.parametrize(
    "body",
    [
        b"3 \r\nabc\r\n0\r\n\r\n",  # whitespace after the size, no extension
        b"3;a\rb\r\nabc\r\n0\r\n\r\n",  # bare CR in an extension
        b"3;a\x00\r\nabc\r\n0\r\n\r\n",  # NUL in an extension
        b"0\r\nName : v\r\n\r\n",  # space before the colon in a trailer
        b"0\r\nName: v\r\n folded\r\n\r\n",  # obs-fold in a trailer
    ],
)
def test_what_llhttp_refuses_in_chunked_bodies_is_refused(body: bytes) -> None:
    with pytest.raises(ChunkError):
        ChunkedScanner().feed(body)


def test_whitespace_before_an_extension_is_allowed() -> None:
    assert scan(b"3 ;a=b\r\nabc\r\n0\r\n\r\n", []) == 18
