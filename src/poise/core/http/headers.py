"""An HTTP header block in arrival order, as the wire had it.

Names keep their case (they are forwarded as received); lookups ignore case. Values are
`str` decoded as latin-1, so every byte survives a round trip. A block that was edited
says so (`modified`), so the shell forwards the raw head when nothing changed and
rebuilds it only when a rule or poise itself changed a header.
"""

from __future__ import annotations

from collections.abc import Iterator


class Headers:
    __slots__ = ("_index", "_indexed", "items", "modified", "spliced")

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        # (name as received, value), in order.
        self.items: list[tuple[str, str]] = items if items is not None else []
        self.modified = False
        # Lower-case name -> values, built on the first lookup: a request is looked at
        # several times (framing, connection, host, cookies, rules), each then costs a
        # dict lookup rather than a scan of every header.
        self._index: dict[str, list[str]] = {}
        self._indexed: list[tuple[str, str]] | None = None
        # `items` when the only change was taking one line out, which the head's bytes
        # can then lose as they are (request_analysers.server_headers, request_head).
        self.spliced: list[tuple[str, str]] | None = None

    def index(self) -> dict[str, list[str]]:
        if self._indexed is not self.items:
            index: dict[str, list[str]] = {}
            for key, value in self.items:
                index.setdefault(key.lower(), []).append(value)
            self._index = index
            self._indexed = self.items
        return self._index

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, name: str) -> str | None:
        """The first value of `name`, or None."""
        found = self.index().get(name.lower())
        return found[0] if found else None

    def get_all(self, name: str) -> list[str]:
        return list(self.index().get(name.lower(), ()))

    def values(self, name: str) -> list[str]:
        """Every comma-separated element of every `name` header (RFC 9110 5.3), stripped."""
        return [
            part.strip()
            for value in self.get_all(name)
            for part in value.split(",")
            if part.strip()
        ]

    def replace_at(self, position: int, name: str, value: str) -> None:
        """Replace the header line at `position` (rules that rewrite a value in place)."""
        self.items[position] = (name, value)
        self.modified = True
        self.spliced = None
        self._indexed = None

    def has(self, name: str) -> bool:
        return name.lower() in self.index()

    def add(self, name: str, value: str) -> None:
        self.items.append((name, value))
        self.modified = True
        self.spliced = None
        self._indexed = None

    def set(self, name: str, value: str) -> None:
        """Replace every `name` header by one (appended at the end, as HAProxy does)."""
        self.delete(name)
        self.add(name, value)

    def delete(self, name: str) -> int:
        wanted = name.lower()
        kept = [(k, v) for k, v in self.items if k.lower() != wanted]
        removed = len(self.items) - len(kept)
        if removed:
            self.items = kept
            self.modified = True
        return removed

    def encode(self) -> bytes:
        """The block as it goes on the wire (each line ends with CRLF; no final CRLF)."""
        return "".join(f"{k}: {v}\r\n" for k, v in self.items).encode("latin-1")


def split_values(line: str) -> list[str]:
    """The comma-separated elements of a header line, trimmed; commas inside quoted
    strings do not split (RFC 9110 5.6)."""
    if '"' not in line:
        return [part.strip(" \t") for part in line.split(",")]
    parts: list[str] = []
    start = 0
    quoted = escaped = False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif quoted:
            if char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == ",":
            parts.append(line[start:index].strip(" \t"))
            start = index + 1
    parts.append(line[start:].strip(" \t"))
    return parts
