"""The runtime commands of maps and ACL files (management.txt 9.3: `show map`, `add map`,
`set map`, `del map`, `clear map` and the same for `acl`), on config/patterns.py's
references, in HAProxy 2.6's words.

A reference is named by its file or by `#ID` (the ids `show map` and `show acl` list,
numbered as HAProxy numbers them), an entry by its key or by `#ID` (`0x...`, the first
column of `show map FILE`). A change is seen by the next request that looks the file up
(core/patterns.py). A command that fails changes nothing: a payload is checked whole
before any of it is added. Versions (`@VER`, `prepare`, `commit`) are not supported.
"""

from __future__ import annotations

import ipaddress

from poise.admin.commands_base import Answer, Request
from poise.config import patterns
from poise.config.patterns import Entry, PatternRef

_UNKNOWN = {
    "map": "Unknown map identifier. Please use #<id> or <file>.\n",
    "acl": "Unknown ACL identifier. Please use #<id> or <file>.\n",
}
_SHARED = (
    "This ACL is shared with a map containing samples. You must use the command 'add map' "
    "to add values.\n"
)
_VERSIONS = "Versions ('@<ver>') are not supported by poise.\n"


def _find(name: str, kind: str | None) -> PatternRef | None:
    """The reference named `#ID` or by its file; `kind` ("map" or "acl"): only one used
    that way."""
    for ref in patterns.REFERENCES.values():
        named = (name.startswith("#") and name[1:] == str(ref.ident)) or name == ref.path
        if named and (kind is None or (ref.is_map if kind == "map" else ref.is_acl)):
            return ref
    return None


def _listed(ref: PatternRef) -> str:
    users = ", by ".join(
        f"{'acl' if user.kind == 'acl' else 'map'} at file '{user.where.file}' line "
        f"{user.where.line}"
        for user in ref.users
    )
    count = len(ref.entries) * max(len(ref.users), 1)
    return (
        f"{ref.ident} ({ref.path}) pattern loaded from file '{ref.path}' used by {users}. "
        f"curr_ver=0 next_ver=0 entry_cnt={count}\n"
    )


def _entry(entry: Entry) -> str:
    if entry.value is None:
        return f"0x{entry.ident:x} {entry.key}\n"
    return f"0x{entry.ident:x} {entry.key} {entry.value}\n"


def _show(req: Request, kind: str) -> Answer:
    if req.arg(2).startswith("@"):
        return Answer(_VERSIONS)
    if not req.arg(2):
        refs = sorted(patterns.REFERENCES.values(), key=lambda r: r.ident)
        wanted = [r for r in refs if (r.is_map if kind == "map" else r.is_acl)]
        return Answer("# id (file) description\n" + "".join(_listed(r) for r in wanted))
    ref = _find(req.arg(2), kind)
    if ref is None:
        return Answer(_UNKNOWN[kind])
    return Answer("".join(_entry(e) for e in ref.entries))


def cmd_show_map(req: Request) -> Answer:
    return _show(req, "map")


def cmd_show_acl(req: Request) -> Answer:
    return _show(req, "acl")


def _bad_key(ref: PatternRef, key: str) -> str | None:
    if ref.ip_keys:
        try:
            ipaddress.ip_network(key, strict=False)
        except ValueError:
            return f"'{key}' is not a valid IPv4 or IPv6 address.\n"
    return None


def cmd_add_map(req: Request) -> Answer:
    """`add map MAP KEY VALUE`, or `add map MAP` with a payload of `KEY VALUE` lines."""
    if req.arg(2).startswith("@"):
        return Answer(_VERSIONS)
    payload = req.payload
    if not ((req.arg(4) and payload is None) or (req.arg(2) and not req.arg(3) and payload)):
        return Answer(
            "'add map' expects three parameters (map identifier, key and value) or one "
            "parameter (map identifier) and a payload\n"
        )
    ref = _find(req.arg(2), None)
    if ref is None:
        return Answer(_UNKNOWN["map"])
    if payload is None:
        pairs = [(req.arg(3), req.arg(4))]
    else:
        pairs = []
        for line in payload.split("\n"):
            key, _, value = line.strip(" \t").partition(" ")
            if not key:
                continue
            if not value.strip(" \t"):
                return Answer(f"Missing value for key '{key}'.\n")
            pairs.append((key, value.strip(" \t")))
    for key, _ in pairs:
        bad = _bad_key(ref, key)
        if bad:
            return Answer(bad)
    for key, value in pairs:
        ref.add(key, value)
    return Answer("")


def cmd_add_acl(req: Request) -> Answer:
    if req.arg(2).startswith("@"):
        return Answer(_VERSIONS)
    if not req.arg(3):
        return Answer("'add acl' expects two parameters: ACL identifier and pattern.\n")
    ref = _find(req.arg(2), None)
    if ref is not None and ref.is_map:
        return Answer(_SHARED)
    ref = _find(req.arg(2), "acl")
    if ref is None:
        return Answer(_UNKNOWN["acl"])
    ref.add(req.arg(3), None)
    return Answer("")


def _matching(ref: PatternRef, key: str) -> list[Entry]:
    if key.startswith("#"):
        return [e for e in ref.entries if f"#0x{e.ident:x}" == key.lower()]
    return [e for e in ref.entries if e.key == key]


def cmd_set_map(req: Request) -> Answer:
    if not req.arg(4):
        return Answer("'set map' expects three parameters: map identifier, key and value.\n")
    ref = _find(req.arg(2), "map")
    if ref is None:
        return Answer(_UNKNOWN["map"])
    found = _matching(ref, req.arg(3))
    if not found:
        return Answer("entry not found.\n")
    for entry in found:
        entry.value = req.arg(4)
    ref.changed()
    return Answer("")


def _delete(req: Request, kind: str) -> Answer:
    if not req.arg(3):
        if kind == "acl":
            return Answer("This command expects two parameters: ACL identifier and key.\n")
        return Answer("This command expects two parameters: map identifier and key.\n")
    ref = _find(req.arg(2), kind)
    if ref is None:
        return Answer(_UNKNOWN[kind])
    found = _matching(ref, req.arg(3))
    if not found:
        return Answer("Key not found.\n")
    ref.entries = [e for e in ref.entries if e not in found]
    ref.changed()
    return Answer("")


def cmd_del_map(req: Request) -> Answer:
    return _delete(req, "map")


def cmd_del_acl(req: Request) -> Answer:
    return _delete(req, "acl")


def _clear(req: Request, kind: str) -> Answer:
    if req.arg(2).startswith("@"):
        return Answer(_VERSIONS)
    if not req.arg(2):
        return Answer("Missing map identifier.\n" if kind == "map" else "Missing ACL identifier.\n")
    ref = _find(req.arg(2), kind)
    if ref is None:
        return Answer(_UNKNOWN[kind])
    ref.entries = []
    ref.changed()
    return Answer("")


def cmd_clear_map(req: Request) -> Answer:
    return _clear(req, "map")


def cmd_clear_acl(req: Request) -> Answer:
    return _clear(req, "acl")
