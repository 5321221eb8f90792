"""The HTTP rules part of the configuration model (config/model.py): ACLs and their
conditions, sample fetches and log-format strings, `use_backend`, `redirect`,
`http-request` / `http-response` rules and their replies, error files, captures and the
stats page, as immutable data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from poise.config.where import Where

if TYPE_CHECKING:
    from poise.config.model_stick import StickAction

# --- ACLs, samples and log-format strings (configuration.txt 7 and 8.2.6) -------------

# How an ACL compares a sample with its patterns (configuration.txt 7.1); "meth" is the
# `method` ACL's own matching (known methods exactly, others as strings).
MatchMethod = Literal[
    "found",
    "bool",
    "int",
    "ip",
    "str",
    "bin",
    "beg",
    "end",
    "sub",
    "reg",
    "dom",
    "dir",
    "len",
    "meth",
]


@dataclass(frozen=True, slots=True)
class Sample:
    """A sample expression: `fetch(args),converter(args),...` (configuration.txt 7.3).
    `fetch` is the canonical name (deprecated aliases are resolved: `hdr_cnt` is
    `req.hdr_cnt`); `text` is the expression as written, for messages."""

    fetch: str
    args: tuple[str, ...] = ()
    converters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    text: str = ""


@dataclass(frozen=True, slots=True)
class AclPattern:
    """One value an ACL compares its sample with. `operator` is for integer matching:
    eq, ge, gt, le or lt ("" is equality, or a range written `low:high`)."""

    value: str
    ignore_case: bool = False
    operator: str = ""


@dataclass(frozen=True, slots=True)
class AclTest:
    """One `acl` line, or one anonymous `{ ... }` ACL: a sample, how it is matched, and
    its patterns: those written on the line, and those of its `-f FILE` files."""

    criterion: str  # the criterion as written: `hdr_beg(host)`, `path`
    sample: Sample
    match: MatchMethod
    patterns: tuple[AclPattern, ...]
    where: Where
    # Pattern files (`-f FILE`), by name, each with whether `-i` applied to it: their
    # patterns are config/patterns.py's references, which the runtime API can change.
    files: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True, slots=True)
class Acl:
    """A named ACL (every `acl` line with that name: the tests OR together), an anonymous
    one (`name` is ""), or one of HAProxy's predefined ACLs (TRUE, METH_GET, ...)."""

    name: str
    tests: tuple[AclTest, ...]
    where: Where


@dataclass(frozen=True, slots=True)
class AclTerm:
    """An ACL in a condition, maybe negated with `!`."""

    acl: Acl
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Condition:
    """`if|unless COND`: `suites` OR together, the terms of a suite AND together (the
    disjunctive form of configuration.txt 7.2). A condition with no suite never holds."""

    unless: bool
    suites: tuple[tuple[AclTerm, ...], ...]
    where: Where
    text: str = ""


@dataclass(frozen=True, slots=True)
class FormatVar:
    """A log-format variable such as `%ci`, with the `Q` flag (quote the value)."""

    name: str
    quote: bool = False


@dataclass(frozen=True, slots=True)
class LogFormat:
    """A log-format string (configuration.txt 8.2.6) as header values and `lf-string`
    use it: literal text, `%[sample]` and `%var` parts, in order."""

    text: str
    parts: tuple[str | Sample | FormatVar, ...]


@dataclass(frozen=True, slots=True)
class UseBackend:
    """`use_backend NAME [if|unless COND]`. A NAME with `%[...]` is a log-format string
    (`name_format`) giving the name at run time; `known` are then the backends it may
    name (another name: the frontend's default_backend, as in HAProxy)."""

    backend: str
    where: Where
    condition: Condition | None = None
    name_format: LogFormat | None = None
    known: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class UseServer:
    """`use-server NAME if|unless COND` in a backend: the server a request goes to when
    the condition holds and the server is usable (or `option persist`), ahead of the
    balancer but after a persistence cookie."""

    server: str
    where: Where
    condition: Condition


@dataclass(frozen=True, slots=True)
class OriginalTo:
    """`option originalto [except NET] [header NAME]`: the request gets a `header` field
    with the address the client connected to (before NAT), unless it is in `except_net`."""

    where: Where
    except_net: str | None = None
    header: str = "X-Original-To"


@dataclass(frozen=True, slots=True)
class PersistRule:
    """`force-persist if|unless COND` (`force`) or `ignore-persist if|unless COND` in a
    backend. Once the backend is chosen, the first rule whose condition holds decides:
    forced, a persistence cookie or `use-server` may reach a down server and there is no
    redispatch; ignored, the cookie is not looked at and no cookie is set."""

    force: bool
    where: Where
    condition: Condition


RedirectKind = Literal["location", "prefix", "scheme"]


@dataclass(frozen=True, slots=True)
class Redirect:
    """`redirect location|prefix|scheme TARGET [code N] [drop-query] [append-slash]
    [if|unless COND]`, also as `http-request redirect`, where the target is a log-format
    string (`target_format`, None when it is plain text)."""

    kind: RedirectKind
    target: str
    where: Where
    code: int = 302
    drop_query: bool = False
    append_slash: bool = False
    condition: Condition | None = None
    target_format: LogFormat | None = None


HttpAction = Literal[
    "set-header",
    "add-header",
    "del-header",
    "replace-header",
    "replace-value",
    "deny",
    "allow",
    "redirect",
    "return",
    "use-service",
    "set-var",
    "set-var-fmt",
    "unset-var",
    "auth",
    "set-method",
    "set-path",
    "set-pathq",
    "set-query",
    "set-uri",
    "replace-path",
    "replace-pathq",
    "replace-uri",
    "set-status",
    "silent-drop",
    "reject",
    "set-dst",
    "set-dst-port",
    "set-src-port",
    "tarpit",
    "set-timeout",
    "set-log-level",
    "capture",
    "set-map",
    "del-map",
    "add-acl",
    "del-acl",
    "stick",
    "early-hint",
    "cache-use",
    "cache-store",
    "normalize-uri",
    "wait-for-body",
]
HeaderMatch = Literal["str", "beg", "end", "sub", "reg"]
HttpReuse = Literal["never", "safe", "aggressive", "always"]
CompressionAlgo = Literal["identity", "gzip", "deflate", "raw-deflate"]


@dataclass(frozen=True, slots=True)
class Compression:
    """`compression algo|type|offload` (configuration.txt 4.2): the algorithms in HAProxy's
    order (each line's names are put in front of those before it, the last named first;
    a proxy's in front of its defaults'), the content types compressed (empty: all), and
    whether the request's Accept-Encoding is taken out (`offload`)."""

    algos: tuple[CompressionAlgo, ...] = ()
    types: tuple[str, ...] = ()
    offload: bool = False

    def over(self, base: Compression | None) -> Compression:
        """This proxy's settings laid over its defaults' (HAProxy copies the defaults'
        lists and puts the proxy's names in front; `offload` is never inherited)."""
        if base is None:
            return self
        return Compression(self.algos + base.algos, self.types + base.types, self.offload)


@dataclass(frozen=True, slots=True)
class HttpReply:
    """The response of `http-request deny` and `http-request return`: a status with a
    payload (`string`, `file`, or a log-format `lf-string`/`lf-file`), or a whole
    response from a file (`errorfile FILE`), or the proxy's error page for the status
    (`default-errorfiles`, which a plain `deny [deny_status N]` implies)."""

    status: int
    content_type: str | None = None
    body: bytes = b""
    body_format: LogFormat | None = None
    headers: tuple[tuple[str, LogFormat], ...] = ()
    errorfile: bytes | None = None
    default_errorfiles: bool = False


@dataclass(frozen=True, slots=True)
class HttpRule:
    """One `http-request` or `http-response` rule (configuration.txt 4.2). Which fields
    mean something depends on the action: `name` is the header (and `match` how
    `del-header` compares names) or the service of `use-service`; `value` the value or
    the replacement (log-format); `regex` what `replace-header`/`replace-value` (and
    `del-header -m reg`) match; `reply` for deny and return; `redirect` for redirect.
    For `set-var`, `set-var-fmt` and `unset-var`, `name` is the variable (`txn.x`),
    `sample` (set-var) or `value` (set-var-fmt) what it is set to, `var_conditions` the
    conditions of set-var(NAME,COND...)."""

    action: HttpAction
    where: Where
    condition: Condition | None = None
    name: str = ""
    value: LogFormat | None = None
    regex: str = ""
    match: HeaderMatch = "str"
    reply: HttpReply | None = None
    redirect: Redirect | None = None
    sample: Sample | None = None
    var_conditions: tuple[str, ...] = ()
    status: int = 0  # set-status (its reason in `name`, "" for the code's own)
    map_value: LogFormat | None = None  # set-map(FILE) KEY VALUE (FILE in `name`, KEY `value`)
    stick: StickAction | None = None  # track-sc0, sc-inc-gpc0 ... (model_stick.py)


@dataclass(frozen=True, slots=True)
class ErrorFilesRef:
    """`errorfiles NAME [CODE ...]`: the files of the `http-errors` section NAME, all of
    them or those of the codes listed (resolved by the link pass: the section may come
    later in the configuration)."""

    section: str
    codes: tuple[int, ...]
    where: Where


@dataclass(frozen=True, slots=True)
class ErrorFile:
    """`errorfile CODE FILE`: the file's bytes, a whole HTTP response (load.py reads it)."""

    status: int
    content: bytes
    path: str
    where: Where


@dataclass(frozen=True, slots=True)
class Capture:
    """`capture request|response header NAME len N`."""

    name: str
    length: int
    where: Where


@dataclass(frozen=True, slots=True)
class StatsPage:
    """The statistics page of a proxy (configuration.txt 4.2, `stats enable|uri|realm|auth|
    refresh|admin|scope|hide-version|show-legends|show-modules|show-node|show-desc`): a
    request whose URI starts with `uri` is answered by poise itself (admin/stats_http.py).
    Any `stats` line enables it; a proxy with none of its own uses its `defaults`
    section's."""

    where: Where
    uri: str = "/haproxy?stats"
    realm: str = "HAProxy Statistics"
    users: tuple[tuple[str, str], ...] = ()  # `stats auth USER:PASSWORD`; () = no auth
    refresh: int = 0  # seconds; 0 = the page does not refresh itself
    admin: tuple[Condition, ...] = ()  # `stats admin if|unless COND`: admin if one holds
    scope: tuple[str, ...] = ()  # the proxies shown ("." is the proxy's own name); () = all
    hide_version: bool = False
    show_legends: bool = False
    show_modules: bool = False  # the "Extra modules" columns (admin/page.py)
    show_node: str | None = None  # `stats show-node [NAME]`: "" = the global `node`
    show_desc: str | None = None  # `stats show-desc [TEXT]`: "" = the global `description`


@dataclass(frozen=True, slots=True)
class Monitor:
    """`monitor-uri URI` and `monitor fail if|unless COND` (configuration.txt 4.2): a
    request for `uri` is answered by poise itself, 200 (503 when one of the `fail`
    conditions holds), never forwarded and never logged, as in HAProxy. A `uri` starting
    with `/` is compared with the request's path and query, else with its whole URI."""

    where: Where
    uri: str
    fail: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class UserlistUser:
    """`user NAME [password HASH|insecure-password TEXT] [groups G1,G2]` (3.4): `hashed`
    tells a crypt(3) hash from a clear password; None: the user has no password."""

    name: str
    password: str | None
    hashed: bool
    groups: tuple[str, ...]
    where: Where


@dataclass(frozen=True, slots=True)
class Userlist:
    """`userlist NAME` with its `group` and `user` lines (configuration.txt 3.4); a
    user's groups are those of its line and those whose `users` name it."""

    name: str
    where: Where
    groups: tuple[str, ...] = ()
    users: tuple[UserlistUser, ...] = ()

    def user(self, name: str) -> UserlistUser | None:
        return next((u for u in self.users if u.name == name), None)
