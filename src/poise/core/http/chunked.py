"""Where a chunked body ends (RFC 9112 7.1), found without decoding it.

poise forwards a chunked body as the bytes it received; it only needs to know where the
message ends, so that what follows is the next message, and to refuse a malformed chunk
size (a classic smuggling vector). The scanner keeps its state between reads and only
looks at chunk-size lines and the trailer section: chunk data is skipped by length, so
the cost does not grow with the size of the body.
"""

from __future__ import annotations

import re
from enum import Enum

# A chunk-size line longer than this is refused (HAProxy allows 16 hex digits and a
# bounded extension; a few KiB of extensions is already abuse).
MAX_LINE = 4096
# RFC 9112 7.1.1: chunk-size [ BWS ";" chunk-ext ]; no control characters anywhere.
SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[^\x00-\x08\x0a-\x1f\x7f]*)?")
# RFC 9112 7.1.2 / 5: a trailer is a field line: token ":" value, no obs-fold.
TRAILER_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00-\x08\x0a-\x1f\x7f]*")


class State(Enum):
    SIZE = "size"  # reading a chunk-size line
    DATA = "data"  # skipping chunk data
    DATA_END = "data-end"  # expecting the CRLF after chunk data
    TRAILERS = "trailers"  # reading trailer lines until an empty one
    DONE = "done"


class ChunkError(ValueError):
    """The body is not valid chunked coding; the message must be refused."""


class ChunkedScanner:
    __slots__ = ("line", "remaining", "state")

    def __init__(self) -> None:
        self.state = State.SIZE
        self.remaining = 0  # bytes of chunk data (or of its CRLF) still to skip
        self.line = b""  # a partial line carried over from the previous read

    @property
    def done(self) -> bool:
        return self.state is State.DONE

    def feed(self, data: bytes | memoryview, start: int = 0) -> int:
        """Scan `data[start:]`; return the offset just past the end of the message, or
        len(data) when the message goes on. Raises ChunkError on malformed input."""
        view = bytes(data) if isinstance(data, memoryview) else data
        pos = start
        end = len(view)
        while pos < end:
            state = self.state
            if state is State.DATA:
                step = min(self.remaining, end - pos)
                pos += step
                self.remaining -= step
                if self.remaining == 0:
                    self.state = State.DATA_END
                    self.remaining = 2
            elif state is State.DATA_END:
                expected = b"\r\n"[2 - self.remaining :]
                got = view[pos : pos + self.remaining]
                if not expected.startswith(got):
                    raise ChunkError("chunk data not followed by CRLF")
                pos += len(got)
                self.remaining -= len(got)
                if self.remaining == 0:
                    self.state = State.SIZE
            elif state is State.DONE:
                return pos
            else:
                newline = view.find(b"\n", pos)
                if newline < 0:
                    self.line += view[pos:]
                    if len(self.line) > MAX_LINE:
                        raise ChunkError("chunk-size line too long")
                    return end
                line = self.line + view[pos : newline + 1]
                self.line = b""
                pos = newline + 1
                if len(line) > MAX_LINE:
                    raise ChunkError("chunk-size line too long")
                if not line.endswith(b"\r\n"):
                    raise ChunkError("bare LF in chunked coding")  # RFC 9112 7.1
                if state is State.SIZE:
                    self.size_line(line[:-2])
                elif line == b"\r\n":  # the empty line that ends the trailers
                    self.state = State.DONE
                    return pos
                elif not TRAILER_LINE.fullmatch(line, 0, len(line) - 2):
                    raise ChunkError("malformed trailer field")
        return pos

    def size_line(self, line: bytes) -> None:
        """`chunk-size [ chunk-ext ]`: hex digits, then optional `;ext` (RFC 9112 7.1.1)."""
        match = SIZE_LINE.fullmatch(line)
        if match is None:
            raise ChunkError(f"invalid chunk size line {line[:20]!r}")
        size = int(match.group(1), 16)
        if size == 0:
            self.state = State.TRAILERS
        else:
            self.state = State.DATA
            self.remaining = size
