"""Sample fetches evaluated on a request and its response (configuration.txt 7.3), and
log-format strings filled in from them (8.2.6).

Every fetch of config/samples.py's FETCHES is implemented here (a test checks it), as a
function of (request, response) giving all its values: an ACL tries every occurrence
(every comma-separated value of every `Host` header, every cookie of that name), while a
log-format string shows one, the last occurrence of a header or of a named cookie, the
first URL parameter (HAProxy 2.6's choices). A fetch used where HAProxy could not know
it (the request's path once the response is processed, the status while the request is)
gives nothing. Everything is compiled once into closures; callers cache them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from poise.config import stick_fetches
from poise.config.model import FormatVar, LogFormat, Sample
from poise.config.samples import FETCHES, Scope, check_scope
from poise.core import (
    auth,
    convert,
    fetch_state,
    payload,
    request_body,
    stickfetch,
    variables,
)
from poise.core.http.message import Request, Response
from poise.core.values import Ip, Value, as_bytes, parse_ip, to_int, to_str

__all__ = ["Ip", "Value", "parse_ip", "to_int", "to_str"]

Values = Callable[[Request, Response | None], Sequence[Value]]
_NONE: tuple[Value, ...] = ()


# --- parts of a request ------------------------------------------------------------------


def path_of(uri: str) -> str | None:
    """HAProxy's `path`: from the first '/' (after scheme://authority in an absolute URI)
    to before the '?'; None when there is none (`*`, `http://host`)."""
    if uri.startswith("/"):
        return uri.split("?", 1)[0]
    pathq = pathq_of(uri)
    return pathq.split("?", 1)[0] if pathq is not None else None


def pathq_of(uri: str) -> str | None:
    if uri.startswith("/"):
        return uri
    scheme = uri.find("://")
    if scheme < 0:
        return None
    slash = uri.find("/", scheme + 3)
    return uri[slash:] if slash >= 0 else None


def query_of(uri: str) -> str | None:
    _, mark, query = uri.partition("?")
    return query if mark else None


def split_values(value: str) -> list[str]:
    """The comma-separated values of a header (commas inside double quotes do not
    separate), each stripped of blanks."""
    if '"' not in value:
        return [part.strip(" \t") for part in value.split(",")]
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current).strip(" \t"))
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip(" \t"))
    return parts


def _header_ip(value: Value) -> Ip | None:
    """An address in a header (`req.hdr_ip`): RFC 7239's forms, an IPv4 address maybe
    followed by `:port`, an IPv6 one maybe in brackets."""
    text = to_str(value)
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif "." in text and ":" in text:
        text = text.partition(":")[0]
    return parse_ip(text)


# --- fetches ------------------------------------------------------------------------------


def _occurrence(values: list[Value], occ: int) -> list[Value]:
    if occ > 0:
        return values[occ - 1 : occ]
    if occ < 0 and -occ <= len(values):
        return [values[occ]]
    return []


def _headers(source: str, full: bool, name: str | None) -> Values:
    """Every value of header `name` (all headers when None), in order; `full` keeps each
    header line whole (fhdr) instead of splitting it at commas (hdr)."""
    wanted = name.lower() if name else None

    def fetch(req: Request, resp: Response | None) -> list[Value]:
        message = req if source == "req" else resp
        if message is None:
            return []
        found: list[Value] = []
        for key, value in message.headers.items:
            if wanted is None or key.lower() == wanted:
                if full:
                    found.append(value.strip(" \t"))
                else:
                    found.extend(split_values(value))
        return found

    return fetch


def _cookies(source: str, name: str | None) -> Values:
    """The values of request cookies (`Cookie`) or response cookies (`Set-Cookie`) named
    `name` (all when None)."""

    def fetch(req: Request, resp: Response | None) -> list[Value]:
        message = req if source == "req" else resp
        if message is None:
            return []
        found: list[Value] = []
        header = "cookie" if source == "req" else "set-cookie"
        for key, value in message.headers.items:
            if key.lower() != header:
                continue
            pairs = value.split(";") if source == "req" else value.split(";", 1)[:1]
            for pair in pairs:
                cookie, equal, content = pair.partition("=")
                if equal and (name is None or cookie.strip(" \t") == name):
                    found.append(content.strip(" \t"))
        return found

    return fetch


def _url_params(name: str | None, delimiter: str) -> Values:
    separators = re.compile("[&;" + re.escape(delimiter) + "]") if delimiter else re.compile("[&;]")
    start = re.compile("[?" + re.escape(delimiter) + "]") if delimiter else re.compile(r"\?")

    def fetch(req: Request, resp: Response | None) -> list[Value]:
        found = start.search(req.uri)
        if found is None:
            return []
        values: list[Value] = []
        for param in separators.split(req.uri[found.end() :]):
            key, equal, value = param.partition("=")
            if equal and (name is None or key == name):
                values.append(value)
        return values

    return fetch


def _single(get: Callable[[Request, Response | None], Value | None]) -> Values:
    def fetch(req: Request, resp: Response | None) -> Sequence[Value]:
        value = get(req, resp)
        return _NONE if value is None else (value,)

    return fetch


def _base(req: Request, with_query: bool) -> str | None:
    path = pathq_of(req.uri) if with_query else path_of(req.uri)
    host = req.headers.get("host")
    if host is None:
        return path
    return host + (path or "")


_SIMPLE: dict[str, Callable[[Request, Response | None], Value | None]] = {
    "always_true": lambda req, resp: True,
    "always_false": lambda req, resp: False,
    "src": lambda req, resp: parse_ip(req.src),
    "dst": lambda req, resp: parse_ip(req.dst),
    "src_port": lambda req, resp: req.src_port,
    "dst_port": lambda req, resp: req.dst_port,
    "ssl_fc": lambda req, resp: req.ssl,
    "ssl_fc_sni": lambda req, resp: req.sni,
    "ssl_c_used": lambda req, resp: req.client_cert,
    # A certificate that does not verify ends the handshake (verify optional or required,
    # without ca-ignore-err), so a request only ever sees 0 (X509_V_OK), as in HAProxy.
    "ssl_c_verify": lambda req, resp: req.client_verify,
    "method": lambda req, resp: req.method,
    "req.ver": lambda req, resp: req.version,
    "path": lambda req, resp: path_of(req.uri),
    "pathq": lambda req, resp: pathq_of(req.uri),
    "url": lambda req, resp: req.uri,
    "query": lambda req, resp: query_of(req.uri),
    "base": lambda req, resp: _base(req, False),
    "baseq": lambda req, resp: _base(req, True),
    "status": lambda req, resp: resp.status if resp is not None else None,
    "res.ver": lambda req, resp: resp.version if resp is not None else None,
    # The cache (core/http/cache.py): whether the answer came from it, and which one.
    "res.cache_hit": lambda req, resp: req.cache is not None and req.cache.hit,
    "res.cache_name": lambda req, resp: req.cache.name if req.cache and req.cache.hit else None,
}


def fetch_values(sample: Sample) -> Values:
    """Every value a sample's fetch gives, before converters."""
    name, args = sample.fetch, sample.args
    if name in _SIMPLE:
        return _single(_SIMPLE[name])
    if name in stick_fetches.SPECS:
        return stickfetch.values(name, args)
    held = payload.values(name, args)
    if held is not None:
        return held
    if name in fetch_state.MAKERS:
        return _single(fetch_state.MAKERS[name](args))
    if name == "base32":
        return _single(fetch_state.base32(lambda req: _base(req, False)))
    if name.startswith("req.body"):
        return request_body.fetcher(name, args)
    if name in ("capture.req.hdr", "capture.res.hdr"):
        return _captured(name == "capture.res.hdr", int(args[0]) if args[0].isdigit() else -1)
    if name in ("http_auth", "http_auth_group"):
        return _http_auth(name, args[0])
    if name == "var":
        return _var_fetch(args[0], args[1] if len(args) > 1 else None)
    if name in ("str", "int"):
        text = args[0] if args else ""
        constant: tuple[Value, ...] = (as_bytes(text) if name == "str" else int(text),)
        return lambda req, resp: constant
    source, _, kind = name.partition(".")
    header = args[0] if args and args[0] else None
    if kind in ("hdr", "fhdr", "hdr_val", "hdr_ip"):
        values = _headers(source, kind == "fhdr", header)
        if len(args) > 1:
            values = _pick_occurrence(values, int(args[1]))
        if kind == "hdr_val":
            return _mapped(values, to_int)
        if kind == "hdr_ip":
            return _mapped(values, _header_ip)
        return values
    if kind in ("hdr_cnt", "fhdr_cnt"):
        counted = _headers(source, kind == "fhdr_cnt", header)
        return _single(lambda req, resp: len(counted(req, resp)))
    if kind in ("cook", "cook_val", "cook_cnt"):
        cookies = _cookies(source, header)
        if kind == "cook_cnt":
            return _single(lambda req, resp: len(cookies(req, resp)))
        return _mapped(cookies, to_int) if kind == "cook_val" else cookies
    if name == "url_param":
        return _url_params(header, args[1][:1] if len(args) > 1 else "")
    raise AssertionError(f"fetch {name} has no implementation")


def _captured(response: bool, index: int) -> Values:
    """`capture.req.hdr(N)`, `capture.res.hdr(N)`: what slot N holds (nothing if empty)."""

    def fetch(req: Request, resp: Response | None) -> Sequence[Value]:
        slots = req.resp_captures if response else req.captures
        if slots is None or not 0 <= index < len(slots):
            return _NONE
        value = slots[index]
        return _NONE if value is None else (value,)

    return fetch


def _http_auth(name: str, listname: str) -> Values:
    """`http_auth(L)`: whether the request's credentials are a user's of L;
    `http_auth_group(L)`: that user's name (an ACL then matches its groups)."""
    user_of = auth.authenticated(listname)
    if name == "http_auth":
        return lambda req, resp: (user_of(req) is not None,)

    def user(req: Request, resp: Response | None) -> Sequence[Value]:
        found = user_of(req)
        return (found.name,) if found is not None else _NONE

    return user


def _var_fetch(name: str, default: str | None) -> Values:
    """`var(NAME[,DEFAULT])`: the value as stored, else the default as a string."""
    get = variables.getter(name)
    absent: tuple[Value, ...] = () if default is None else (default,)

    def fetch(req: Request, resp: Response | None) -> Sequence[Value]:
        value = get(req)
        return absent if value is None else (value,)

    return fetch


def _pick_occurrence(values: Values, occ: int) -> Values:
    def fetch(req: Request, resp: Response | None) -> list[Value]:
        return _occurrence(list(values(req, resp)), occ)

    return fetch


def _mapped(values: Values, convert: Callable[[Value], Value | None]) -> Values:
    def fetch(req: Request, resp: Response | None) -> list[Value]:
        out: list[Value] = []
        for value in values(req, resp):
            converted = convert(value)
            if converted is not None:
                out.append(converted)
        return out

    return fetch


def _converted(values: Values, converters: Sequence[tuple[str, tuple[str, ...]]]) -> Values:
    """The values of a fetch through its converters; a value whose conversion fails is
    dropped (HAProxy: the sample has no value)."""
    step = convert.chain(converters)

    def fetch(req: Request, resp: Response | None) -> list[Value]:
        out = []
        for value in values(req, resp):
            converted = step(value, req)
            if converted is not None:
                out.append(converted)
        return out

    return fetch


def sample_values(sample: Sample, scope: Scope) -> Values:
    """A sample's values with its converters, where it is used ("req" or "res"): none
    when it cannot be known there."""
    if check_scope(sample, scope) or _other_phase(sample, scope):
        return lambda req, resp: _NONE
    values = fetch_values(sample)
    return _converted(values, sample.converters) if sample.converters else values


def _other_phase(sample: Sample, scope: Scope) -> bool:
    """A `req.` variable read while the response is processed, or a `res.` one while the
    request is: HAProxy keeps each only for its own phase."""
    if sample.fetch != "var" or scope == "any":
        return False
    return sample.args[0].startswith("res." if scope == "req" else "req.")


def sample_getter(
    sample: Sample, scope: Scope
) -> Callable[[Request, Response | None], Value | None] | None:
    """For a fetch with at most one value (`path`, `src`, `method` ...) used where it is
    known and without converters: a faster way to the value (None: use sample_values)."""
    if sample.converters or check_scope(sample, scope):
        return None
    return _SIMPLE.get(sample.fetch)


def sample_value(sample: Sample, scope: Scope) -> Callable[[Request, Response | None], str]:
    """A sample as a log-format string shows it: one value, as text ("" when none)."""
    values = sample_values(sample, scope)
    last = sample_last(sample)

    def value(req: Request, resp: Response | None) -> str:
        found = values(req, resp)
        if not found:
            return ""
        return to_str(found[-1] if last else found[0])

    return value


def sample_last(sample: Sample) -> bool:
    """Whether a sample used for one value (a log-format string, set-var) takes the last
    of several (a header's last occurrence) rather than the first (url_param, a cookie
    fetched without a name)."""
    first = sample.fetch in ("url_param", "req.body_param") or (
        sample.fetch in ("req.cook", "res.cook", "req.cook_val") and not sample.args
    )
    return FETCHES[sample.fetch].multi and not first


# --- log-format strings ----------------------------------------------------------------

_VARIABLES: dict[str, Callable[[Request], str]] = {
    "ci": lambda req: req.src,
    "cp": lambda req: str(req.src_port),
    "fi": lambda req: req.dst,
    "fp": lambda req: str(req.dst_port),
    "HM": lambda req: req.method,
    "HU": lambda req: req.uri,
    "HP": lambda req: req.uri.split("?", 1)[0],
    "HPO": lambda req: path_of(req.uri) or "",
    "HQ": lambda req: "?" + req.uri.partition("?")[2] if "?" in req.uri else "",
    "HV": lambda req: f"HTTP/{req.version}",
}


def _variable(var: FormatVar) -> Callable[[Request, Response | None], str]:
    get = _VARIABLES[var.name]
    if var.quote:
        return lambda req, resp: f'"{get(req)}"'
    return lambda req, resp: get(req)


def _literal(text: str) -> Callable[[Request, Response | None], str]:
    return lambda req, resp: text


# What HAProxy 2.6 writes of a sample in an HTTP action's log-format string (a header, a
# redirect, a variable, a `return` body): control characters but HTAB, and DEL, as `%XX`,
# so that no value can end a header line (a log line writes them as they are).
_HTTP_ENCODE = {c: f"%{c:02X}" for c in (*range(9), *range(10, 32), 127)}


def _http_encoded(
    get: Callable[[Request, Response | None], str],
) -> Callable[[Request, Response | None], str]:
    def encoded(req: Request, resp: Response | None) -> str:
        text = get(req, resp)
        return text if text.isprintable() else text.translate(_HTTP_ENCODE)

    return encoded


def sample_text(value: str | None) -> str | None:
    """A sample's string as the bytes it stands for: request data is held one character a
    byte (latin-1) and a log line is encoded as UTF-8 with surrogate escapes, so a header's
    `\xe9` or UTF-8 `\xc3\xa9` is written as it came, as HAProxy writes it, not
    re-encoded."""
    if value is None or value.isascii():
        return value
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value  # not bytes: text of the configuration's
    return raw.decode("utf-8", "surrogateescape")


def _as_text(
    get: Callable[[Request, Response | None], str],
) -> Callable[[Request, Response | None], str]:
    def text(req: Request, resp: Response | None) -> str:
        return sample_text(get(req, resp)) or ""

    return text


def compile_format(
    fmt: LogFormat, scope: Scope, body: bool = False
) -> Callable[[Request, Response | None], str]:
    """A log-format string as a function of the request (and response). `body`: for a
    payload encoded as UTF-8 with surrogate escapes (the configuration's text is UTF-8),
    so a sample's bytes are handed back as they came (sample_text)."""
    if all(isinstance(part, str) for part in fmt.parts):
        constant = "".join(part for part in fmt.parts if isinstance(part, str))
        return lambda req, resp: constant
    pieces: list[Callable[[Request, Response | None], str]] = []
    for part in fmt.parts:
        if isinstance(part, str):
            pieces.append(_literal(part))
        elif isinstance(part, Sample):
            got = _http_encoded(sample_value(part, scope))
            pieces.append(_as_text(got) if body else got)
        else:
            pieces.append(_variable(part))
    return lambda req, resp: "".join(piece(req, resp) for piece in pieces)
