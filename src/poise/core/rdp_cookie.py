"""The RDP cookie of a Remote Desktop client's first packet, as HAProxy 2.6 reads it
(payload.c, fetch_rdp_cookie_name): the key of `balance rdp-cookie[(NAME)]` and of the
`req.rdp_cookie` fetch.

An RDP client opens with an X.224 Connection Request whose user data may carry a routing
cookie, `Cookie: mstshash=USER\\r\\n` (MS-RDPBCGR 2.2.1.1). HAProxy does not decode the TPKT
and X.224 headers: it expects "Cookie:" at byte 11 (4 bytes of TPKT and 7 of X.224),
compared without case, then spaces, then NAME (without case) and "=", or any name when
none is given, and takes the value up to the CR of a CRLF.

The answer is the value, or NOT_FOUND, or INCOMPLETE when more bytes could still make it
(HAProxy's SMP_F_MAY_CHANGE, on which `tcp-request content` waits up to inspect-delay).
"""

from __future__ import annotations

from enum import Enum

HEADER = 11  # TPKT (4 bytes) and the X.224 Connection Request header (7)
COOKIE = b"cookie:"


class Missing(Enum):
    NOT_FOUND = "not found"
    INCOMPLETE = "incomplete"


NOT_FOUND = Missing.NOT_FOUND
INCOMPLETE = Missing.INCOMPLETE


def rdp_cookie(data: bytes, name: str | None = "mstshash") -> bytes | Missing:
    """The value of cookie `name` (any cookie when None or "") in the first bytes `data`."""
    left = len(data) - HEADER
    if left <= len(COOKIE):
        return INCOMPLETE
    at = HEADER
    if data[at : at + len(COOKIE)].lower() != COOKIE:
        return NOT_FOUND
    at += len(COOKIE)
    while at < len(data) and data[at] == 0x20:
        at += 1
    wanted = (name or "").encode("latin-1")
    if wanted:
        if len(data) - at <= len(wanted):
            return INCOMPLETE
        if data[at + len(wanted)] != 0x3D or data[at : at + len(wanted)].lower() != wanted.lower():
            return NOT_FOUND
        at += len(wanted) + 1
    else:
        while at < len(data) and data[at] != 0x3D:
            if data[at] in (0x0D, 0x0A):
                return NOT_FOUND
            at += 1
        if at >= len(data):
            return INCOMPLETE
        at += 1
    start = at
    end = data.find(b"\r", start)
    if end < 0 or end + 1 >= len(data):
        return INCOMPLETE
    if data[end + 1] != 0x0A:
        return NOT_FOUND
    return data[start:end]
