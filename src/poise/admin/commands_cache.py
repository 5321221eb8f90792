"""`show cache` (management.txt 9.3): each `cache` section and its entries, in HAProxy
2.6's layout:

    0x7f89683ce03a: c1 (shctx:0x7f89683ce000, available blocks:4096)
    0x7f89683ce0c8 hash:20433970 vary:0x0000000000000000 size:330 (1 blocks), refcount:0, expire:240

The addresses are the objects' identities (HAProxy prints its memory's); `hash` is the
first four bytes of the entry's SHA-1 key as HAProxy reads them (little-endian), entries
in the order of that number as HAProxy walks its tree; `vary` the secondary key of
`process-vary on` (the accepted encodings, then the Referer's hash, four bytes each);
`size` the bytes poise keeps (HAProxy counts its internal HTX form: the same response
weighs a little more there); blocks of 1 kB, as HAProxy's memory is counted; `refcount`
0 (no answer holds an entry: poise copies it out); `expire` the seconds left. Available
blocks are the section's whole size in blocks: HAProxy's count of blocks no reader holds,
which entries at rest do not reduce either.
"""

from __future__ import annotations

from poise.admin.commands_base import Answer, Request
from poise.core.http import cache

BLOCK = 1024  # HAProxy's shctx block


def cmd_show_cache(req: Request) -> Answer:
    view = req.view
    now = int(view.info.start_time + (view.now - view.info.started))
    return Answer(show_cache(now))


def show_cache(now: int) -> str:
    lines = []
    for section in cache.CACHES.values():
        base = id(section)
        blocks = section.config.total_max_size // BLOCK
        lines.append(
            f"{base + 0x3A:#x}: {section.config.name} (shctx:{base:#x}, available blocks:{blocks})"
        )
        rows = []
        for key, entries in section.entries.items():
            for entry in entries:
                encoding, referer = entry.secondary
                vary = encoding.to_bytes(4, "little").hex() + referer.to_bytes(4, "little").hex()
                used = max(1, -(-entry.size // BLOCK))
                rows.append(
                    (
                        int.from_bytes(key[:4], "little"),
                        f"{id(entry):#x} hash:{int.from_bytes(key[:4], 'little')} "
                        f"vary:0x{vary} size:{entry.size} ({used} blocks), refcount:0, "
                        f"expire:{entry.expire - now}",
                    )
                )
        lines += [row for _, row in sorted(rows, key=lambda r: r[0])]
    return "".join(f"{line}\n" for line in lines)
