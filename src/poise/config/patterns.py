"""Pattern files: the files of ACLs (`-f FILE`, `-M -f FILE`) and of maps (`map(FILE)`,
configuration.txt 7.1 and 7.3.1), read once while the configuration is parsed and then
shared, as HAProxy's pattern references are, by every ACL and map that names them.

A `PatternRef` is the one runtime object of a file: its entries (key, value) in order, a
version that goes up at each change, and who uses it. The runtime commands (`add map`,
`del acl` ..., admin/commands_maps.py) change its entries, and every matcher built on it
(core/patterns.py) sees the change at its next lookup. This is the one mutable object the
parser makes: a map is runtime state by nature.

While `parse()` runs, `loading(read_file)` gives the parser's deeper functions (a
converter's arguments, an ACL's flags) the file reader and the line being parsed, without
threading them through every call. REFERENCES then holds the files of the configuration
last parsed, which the core finds by name. Pure: files are read by the loader's function.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from poise.config.haproxy_draft import Problem
from poise.config.model_http import Userlist
from poise.config.where import Where

ReadFile = Callable[[str], bytes]


@dataclass(frozen=True, slots=True)
class User:
    kind: str  # "map" (a map converter, or an ACL with -M) or "acl"
    where: Where


@dataclass(slots=True, eq=False)
class Entry:
    ident: int  # unique: `show map` shows it, `del map FILE #ID` names it
    key: str
    value: str | None  # None: an ACL pattern


@dataclass(slots=True, eq=False)
class PatternRef:
    """One pattern file, as HAProxy's `show map`/`show acl` list it (`ident` is its #id)."""

    ident: int
    path: str
    entries: list[Entry] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    version: int = 0
    # IPs only (a map used by map_ip): what an added key must be, checked at `add map`.
    ip_keys: bool = False

    def changed(self) -> None:
        self.version += 1

    def add(self, key: str, value: str | None) -> Entry:
        entry = Entry(new_entry_id(), key, value)
        self.entries.append(entry)
        self.changed()
        return entry

    @property
    def is_map(self) -> bool:
        return any(user.kind == "map" for user in self.users)

    @property
    def is_acl(self) -> bool:
        return any(user.kind == "acl" for user in self.users) or self.acl_map

    @property
    def acl_map(self) -> bool:
        """Used by an ACL with -M (listed by both `show map` and `show acl`)."""
        return any(user.kind == "acl-map" for user in self.users)


_ENTRY_IDS = [0x5600_0000_0000]


def new_entry_id() -> int:
    _ENTRY_IDS[0] += 0x50
    return _ENTRY_IDS[0]


@dataclass(slots=True)
class _Loading:
    read_file: ReadFile | None
    refs: dict[str, PatternRef] = field(default_factory=dict)
    next_id: int = 0
    where: Where | None = None
    # Backends named by fetches (nbsrv(NAME) ...): (fetch, NAME or BACKEND/SERVER, line).
    backends: list[tuple[str, str, Where]] = field(default_factory=list)
    # Userlists named by http_auth(L) ...: (fetch, L, the groups an ACL wants, line).
    userlists: list[tuple[str, str, tuple[str, ...], Where]] = field(default_factory=list)
    # The proxy section being read (None: a `defaults` one), and the stick tables named
    # by fetches and rules: (keyword, table, line).
    proxy: str | None = None
    tables: list[tuple[str, str, Where]] = field(default_factory=list)


_CURRENT: contextvars.ContextVar[_Loading | None] = contextvars.ContextVar(
    "poise_pattern_loading", default=None
)
# The pattern files and the userlists of the configuration last parsed, by name.
REFERENCES: dict[str, PatternRef] = {}
USERLISTS: dict[str, Userlist] = {}


@contextlib.contextmanager
def loading(read_file: ReadFile | None) -> Iterator[_Loading]:
    """While a configuration is parsed: the files it names are read with `read_file`."""
    state = _Loading(read_file)
    token = _CURRENT.set(state)
    try:
        yield state
    finally:
        _CURRENT.reset(token)


def refer_to_backend(fetch: str, name: str) -> None:
    """A fetch names a backend (or BACKEND/SERVER): checked when all sections are read."""
    state = _CURRENT.get()
    if state is not None and state.where is not None:
        state.backends.append((fetch, name, state.where))


def in_section(proxy: str | None) -> None:
    """The proxy section whose lines are read now (None: a `defaults` section)."""
    state = _CURRENT.get()
    if state is not None:
        state.proxy = proxy


def current_proxy() -> str | None:
    state = _CURRENT.get()
    return state.proxy if state is not None else None


def refer_to_table(keyword: str, name: str) -> None:
    """A fetch or a rule names a stick table: checked when all sections are read."""
    state = _CURRENT.get()
    if state is not None and state.where is not None:
        state.tables.append((keyword, name, state.where))


def refer_to_userlist(fetch: str, name: str, groups: tuple[str, ...] = ()) -> None:
    """A fetch names a userlist (and an ACL groups of it): checked at the end."""
    state = _CURRENT.get()
    if state is not None and state.where is not None:
        state.userlists.append((fetch, name, groups, state.where))


def missing_userlists(
    state: _Loading, groups: Callable[[str], list[str] | None]
) -> list[tuple[Where, str]]:
    """HAProxy's messages for the userlists and groups that do not exist."""
    found = []
    for fetch, name, wanted, where in state.userlists:
        known = groups(name)
        if known is None:
            found.append(
                (
                    where,
                    f"unable to find userlist '{name}' referenced in arg 1 of ACL keyword "
                    f"'{fetch}'.",
                )
            )
            continue
        for group in wanted:
            if group not in known:
                found.append((where, f"acl {fetch}(): invalid group '{group}'."))
    return found


def missing_backends(
    state: _Loading, servers: Callable[[str], list[str] | None]
) -> list[tuple[Where, str]]:
    """HAProxy's messages for the backends and servers fetches name that do not exist;
    `servers(NAME)` gives a backend's servers, None when there is no such backend."""
    found = []
    for fetch, name, where in state.backends:
        backend, slash, server = name.partition("/")
        names = servers(backend)
        if names is None:
            found.append(
                (
                    where,
                    f"unable to find backend '{backend}' referenced in arg 1 of sample fetch "
                    f"keyword '{fetch}'.",
                )
            )
        elif slash and server not in names:
            found.append(
                (
                    where,
                    f"unable to find server '{server}' in proxy '{backend}', referenced in "
                    f"arg 1 of sample fetch keyword '{fetch}'.",
                )
            )
    return found


def at_line(where: Where) -> None:
    """The line being parsed (for `show map`'s "used by map at file 'F' line N")."""
    state = _CURRENT.get()
    if state is not None:
        state.where = where


def anonymous() -> None:
    """An ACL expression's own (inline) patterns: HAProxy numbers them as a reference too,
    so the files' #ids are HAProxy's."""
    state = _CURRENT.get()
    if state is not None:
        state.next_id += 1


def parse_map_file(text: str) -> list[tuple[str, str]]:
    """A map file: per line, the first word is the key and the rest (blanks around it
    stripped) the value; empty lines and lines starting with '#' are skipped."""
    entries = []
    for raw in text.splitlines():
        line = raw.strip(" \t\r")
        if not line or line.startswith("#"):
            continue
        cut = next((i for i, c in enumerate(line) if c in " \t"), len(line))
        entries.append((line[:cut], line[cut:].strip(" \t")))
    return entries


def parse_acl_file(text: str) -> list[str]:
    """An ACL file: one pattern per line, leading blanks stripped, empty lines and lines
    starting with '#' skipped (configuration.txt 7.1)."""
    patterns = []
    for raw in text.splitlines():
        line = raw.lstrip(" \t")
        if line and not line.startswith("#"):
            patterns.append(line)
    return patterns


def load(path: str, kind: str) -> PatternRef:
    """The reference of file `path`, read on its first use; `kind`: "map" (a map
    converter), "acl-map" (an ACL's -M -f), "acl" (an ACL's -f) or "check" (only to
    look at what was loaded)."""
    state = _CURRENT.get()
    if state is None or state.read_file is None:
        raise Problem(f"cannot read pattern file '{path}' here")
    ref = state.refs.get(path)
    if kind == "check" and ref is not None:
        return ref
    if ref is None:
        try:
            text = state.read_file(path).decode("utf-8", errors="surrogateescape")
        except OSError as exc:
            what = "map" if kind != "acl" else "pattern"
            raise Problem(f"failed to open {what} file '{path}': {exc.strerror or exc}") from None
        ref = PatternRef(state.next_id, path)
        state.next_id += 1
        if kind == "acl":
            ref.entries = [Entry(new_entry_id(), p, None) for p in parse_acl_file(text)]
        else:
            ref.entries = [Entry(new_entry_id(), k, v) for k, v in parse_map_file(text)]
        state.refs[path] = ref
    elif kind != "acl" and not ref.is_map and not ref.acl_map:
        # An ACL file used as a map later: its lines are read again as key and value.
        text = state.read_file(path).decode("utf-8", errors="surrogateescape")
        ref.entries = [Entry(new_entry_id(), k, v) for k, v in parse_map_file(text)]
    if state.where is not None:
        ref.users.append(User(kind, state.where))
    return ref


def publish(refs: dict[str, PatternRef], userlists: Sequence[Userlist] = ()) -> None:
    """The files and userlists of a configuration that parsed: the core finds them by
    name."""
    REFERENCES.clear()
    REFERENCES.update(refs)
    USERLISTS.clear()
    USERLISTS.update((u.name, u) for u in userlists)
