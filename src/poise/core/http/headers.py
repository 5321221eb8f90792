"""An HTTP header block in arrival order, as the wire had it.

Names keep their case (they are forwarded as received); lookups ignore case. Values are
`str` decoded as latin-1, so every byte survives a round trip. A block that was edited
says so (`modified`), so the shell forwards the raw head when nothing changed and
rebuilds it only when a rule or poise itself changed a header.
"""

from __future__ import annotations

from collections.abc import Iterator


class Headers:
    __slots__ = ("items", "modified")

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        # (name as received, value); lookups compare name.lower().
        self.items: list[tuple[str, str]] = items if items is not None else []
        self.modified = False

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def get(self, name: str) -> str | None:
        """The first value of `name`, or None."""
        wanted = name.lower()
        for key, value in self.items:
            if key.lower() == wanted:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.items if key.lower() == wanted]

    def values(self, name: str) -> list[str]:
        """Every comma-separated element of every `name` header (RFC 9110 5.3), stripped."""
        return [
            part.strip()
            for value in self.get_all(name)
            for part in value.split(",")
            if part.strip()
        ]

    def has(self, name: str) -> bool:
        return self.get(name) is not None

    def add(self, name: str, value: str) -> None:
        self.items.append((name, value))
        self.modified = True

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
