"""HTTP rules, evaluated on a request and its response: the backend a request goes to
(`use_backend`, `default_backend`), `http-request` rules then `redirect` rules, and
`http-response` rules, in HAProxy's order (configuration.txt 4.2).

The HTTP session calls, for each request: `request_rules(frontend, req)`, then
`select_backend(frontend, req)`, then `request_rules(backend, req)`; for each response
`response_rules(backend, req, resp)` then `response_rules(frontend, req, resp)`; and
`error_reply((backend, frontend), status, req)` for its own errors (503, 504 ...). Header
edits are made in place on the message's Headers; a rule that answers by itself (deny,
return, redirect) gives a Verdict holding the whole response, byte for byte as HAProxy
2.6 writes it (reply.py).

A proxy's rules are compiled once into closures (Rules), held by its running frontend
(core/frontend.py) and backend (core/backend.py): a proxy without rules gives the shared
CONTINUE at the cost of one test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from poise.config.model import (
    Condition,
    HttpReply,
    HttpRule,
    Option,
    Proxy,
    Redirect,
)
from poise.config.samples import Scope
from poise.core import proc, sticktrack, variables
from poise.core import redirect as redirects
from poise.core.acl import Test, compile_condition
from poise.core.fetch import compile_format, sample_last, sample_values
from poise.core.http import cache, normalize_uri, reply
from poise.core.http.address_rules import ADDRESS_ACTIONS, address_step
from poise.core.http.headers import Headers
from poise.core.http.message import Request, Response
from poise.core.http.txn_rules import (
    capture_step,
    early_hint_step,
    pattern_step,
    timing_step,
)
from poise.core.http.uri_rules import URI_ACTIONS, uri_step
from poise.core.template import expand
from poise.core.txn import DENIED_FRONTEND, REFUSED_BAD

VerdictKind = Literal["continue", "deny", "reply", "service", "tarpit", "wait"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the rules decided. `continue`: go on (header edits were made in place);
    `deny` and `reply` (redirect, return): send `response` (b"" for an empty errorfile)
    instead of forwarding, then close the connection when `close`. `reason` says which
    rule, for the log; `termination` is HAProxy's termination state for it (`PR--` for a
    deny, `LR--` for a response made locally). `service`: `http-request use-service`
    matched; the shell's net/services.py answers with the service named in `service`.
    `log`: False for an answer HAProxy never logs (`monitor-uri`)."""

    kind: VerdictKind
    status: int = 0
    response: bytes | None = None
    close: bool = False
    reason: str = ""
    termination: str = ""
    service: str = ""
    log: bool = True
    # How it counts (a Txn.denied code) when not as its kind: `silent-drop`, a request
    # made invalid by a rule.
    counts: int = 0
    # `wait`: `http-request wait-for-body` (core/http/body_wait.py): the rules go on from
    # the `resume`-th once the body is in, `status` ms at most, `at_least` bytes enough.
    resume: int = 0
    at_least: int = 0


CONTINUE = Verdict("continue")


class _Allow:
    """`allow`: stop the http-request (http-response) rules, and go on."""


_ALLOW = _Allow()
Outcome = Verdict | _Allow | None
# A rule's action: (request, response or None, whether the session closes anyway).
Step = Callable[[Request, Response | None, bool], Outcome]
Value = Callable[[Request, Response | None], str]


# --- conditions, for other modules --------------------------------------------------------


def condition_holds(cond: Condition, req: Request, resp: Response | None = None) -> bool:
    """Whether `if|unless COND` holds; with `resp`, as an http-response rule sees it.
    Compiled at each call: for the rare callers (the stats page's `stats admin`)."""
    return compile_condition(cond, "req" if resp is None else "res")(req, resp)


# --- compiled proxies ---------------------------------------------------------------------


class Rules:
    """A proxy's rules, compiled: its http-request, redirect and http-response rules, its
    use_backend conditions and its error files."""

    __slots__ = (
        "after",
        "backends",
        "closes",
        "errorfiles",
        "fallback",
        "proxy",
        "redirects",
        "request",
        "response",
    )

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        # A frontend's `option httpclose` closes the client connection after a response.
        self.closes = proxy.is_frontend and Option.HTTPCLOSE in proxy.options
        self.request: list[tuple[Test | None, Step]] = [
            _step(proxy, rule, "req") for rule in proxy.http_request_rules
        ]
        self.redirects = [_redirect_step(rule) for rule in proxy.redirects]
        self.response: list[tuple[Test | None, Step]] = [
            _step(proxy, rule, "res") for rule in proxy.http_response_rules
        ]
        self.after: list[tuple[Test | None, Step]] = [  # core/http/after_response.py
            _step(proxy, rule, "res") for rule in proxy.http_after_response_rules
        ]
        self.backends = [
            (
                _test(use.condition, "req"),
                use.backend,
                compile_format(use.name_format, "req") if use.name_format is not None else None,
                use.known,
            )
            for use in proxy.use_backends
        ]
        self.fallback = proxy.default_backend or (proxy.name if proxy.is_backend else None)
        self.errorfiles = {e.status: reply.errorfile(e.content) for e in proxy.errorfiles}


def _test(cond: Condition | None, scope: Scope) -> Test | None:
    return compile_condition(cond, scope) if cond is not None else None


def _run(
    steps: list[tuple[Test | None, Step]],
    req: Request,
    resp: Response | None,
    close: bool,
    start: int = 0,
) -> Verdict:
    for index in range(start, len(steps)):
        test, step = steps[index]
        if test is not None and not test(req, resp):
            continue
        outcome = step(req, resp, close)
        if outcome is None:
            continue
        if isinstance(outcome, Verdict):
            if outcome.kind == "wait":
                if req.body is not None and req.body_end >= 0:
                    continue  # the whole body is in already
                return replace(outcome, resume=index + 1)
            return outcome
        break  # allow
    return CONTINUE


def select_backend(program: Rules, req: Request) -> str | None:
    """The first `use_backend` whose condition holds (its name worked out for a request
    when it is a log-format string), else `default_backend`; a `listen` section (or a
    backend) is its own default. None: no backend."""
    for test, backend, dynamic, known in program.backends:
        if test is None or test(req, None):
            if dynamic is None:
                return backend
            # A log-format name: a backend that does not exist gives the default one.
            name = dynamic(req, None)
            return name if name in known else program.fallback
    return program.fallback


def request_rules(program: Rules, req: Request, *, close: bool = False, start: int = 0) -> Verdict:
    """The `http-request` rules of `proxy` in order (header edits in place; `allow` ends
    them), then its `redirect` rules. `close`: the session will close the client
    connection after this request whatever the rules say (the generated response then
    says so). `start`: go on from that rule (after a `wait-for-body`)."""
    if not program.request and not program.redirects:
        return CONTINUE
    close = close or program.closes
    verdict = _run(program.request, req, None, close, start)
    if verdict is CONTINUE and program.redirects:
        return _run(program.redirects, req, None, close)
    return verdict


def response_rules(program: Rules, req: Request, resp: Response, *, close: bool = False) -> Verdict:
    """The `http-response` rules of a proxy in order (header edits on `resp.headers`)."""
    if not program.response:
        return CONTINUE
    return _run(program.response, req, resp, close or program.closes)


def error_reply(
    programs: Sequence[Rules], status: int, req: Request, *, close: bool = False
) -> tuple[bytes, bool]:
    """HAProxy's own answer with `status` (502, 503, 504 ... when no server answers): the
    first of the proxies with an `errorfile` for it (HAProxy looks at the backend, then
    the frontend), else the built-in page; and whether the connection closes after it."""
    for program in programs:
        if program.errorfiles:
            prepared = program.errorfiles.get(status)
            if prepared is not None:
                return reply.finish(prepared, req, close or reply.client_closes(req))
    page = reply.PAGES.get(status) or reply.PAGES[500]
    return reply.finish(page, req, close or reply.client_closes(req))


# --- steps -----------------------------------------------------------------------------------


def _step(proxy: Proxy, rule: HttpRule, scope: Scope) -> tuple[Test | None, Step]:
    test = _test(rule.condition, scope)
    keyword = "http-request" if scope == "req" else "http-response"
    name = rule.name
    if rule.action in ("set-header", "add-header"):
        assert rule.value is not None
        value = compile_format(rule.value, scope)
        add = rule.action == "add-header"

        def set_header(req: Request, resp: Response | None, close: bool) -> Outcome:
            headers = _headers(req, resp, scope)
            text = value(req, resp)  # before the old header goes: it may read it
            if add:
                headers.add(name, text)
            else:
                headers.set(name, text)
            return None

        return test, set_header
    if rule.action == "del-header":
        matches = _name_matcher(rule)

        def del_header(req: Request, resp: Response | None, close: bool) -> Outcome:
            _delete(_headers(req, resp, scope), matches)
            return None

        return test, del_header
    if rule.action in ("replace-header", "replace-value"):
        return test, _replace_step(rule, scope)
    if rule.action in ("set-var", "set-var-fmt", "unset-var"):
        return test, _variable_step(rule, scope)
    if rule.action == "allow":
        return test, lambda req, resp, close: _ALLOW
    if rule.action in ("set-timeout", "set-log-level"):
        return test, timing_step(rule, scope)
    if rule.action == "capture":
        return test, capture_step(rule, scope)
    if rule.action in ("set-map", "del-map", "add-acl", "del-acl"):
        return test, pattern_step(rule, scope)
    if rule.action == "stick":
        assert rule.stick is not None
        return test, sticktrack.step(rule.stick, scope)
    if rule.action == "early-hint":
        return test, early_hint_step(rule, scope)
    if rule.action == "wait-for-body":
        reason = f"{keyword} wait-for-body at {rule.where}"
        wait = Verdict("wait", rule.status, reason=reason, at_least=int(rule.name or 0))
        return test, lambda req, resp, close: wait
    if rule.action == "normalize-uri":
        return test, _normalize_step(rule, f"{keyword} normalize-uri at {rule.where}")
    where = f"{keyword} {rule.action} at {rule.where}"
    if rule.action == "use-service":  # final, like a return: the rules stop here
        service = Verdict("service", reason=where, termination="LR--", service=rule.name)
        return test, lambda req, resp, close: service
    if rule.action == "redirect":
        assert rule.redirect is not None
        return test, _redirect(rule.redirect, where)
    if rule.action == "auth":
        return test, _auth_step(rule.name or proxy.name, where)
    if rule.action == "set-status":
        return test, _status_step(rule.status, rule.name or reply.reason(rule.status))
    if rule.action in ("cache-use", "cache-store"):
        side = "fe" if proxy.is_frontend else "be"
        return test, cache_step(rule.action, rule.name, where, (side, proxy.name))
    if rule.action == "reject":
        # The connection is closed at once, nothing sent, counted and logged as a deny
        # (PR--, status -1), as HAProxy 2.6's http-request reject (http_action_reject).
        reason = f"{keyword} reject at {rule.where}"
        return test, lambda req, resp, close: Verdict("deny", -1, b"", True, reason, "PR--")
    if rule.action == "silent-drop":
        # The connection closes with nothing sent, logged PR-- with the status so far
        # (-1, or the server's), as HAProxy logs it.
        reason = f"{keyword} silent-drop at {rule.where}"
        return test, lambda req, resp, close: Verdict(
            "deny",
            resp.status if resp is not None else -1,
            b"",
            True,
            reason,
            "PR--",
            counts=DENIED_FRONTEND,
        )
    if rule.action in URI_ACTIONS or rule.action in ADDRESS_ACTIONS:
        edit = uri_step(rule) if rule.action in URI_ACTIONS else address_step(rule, scope)

        def rewrite(req: Request, resp: Response | None, close: bool) -> Outcome:
            edit(req, resp, close)
            return None

        return test, rewrite
    assert rule.reply is not None
    kind: VerdictKind = "tarpit" if rule.action == "tarpit" else "reply"
    kind = "deny" if rule.action == "deny" else kind
    return test, _reply_step(proxy, rule.reply, kind, where, scope)


def cache_step(action: str, name: str, where: str, counter: tuple[str, str]) -> Step:
    """`http-request cache-use NAME`, `http-response cache-store NAME` (core/http/cache.py:
    the cache is the process's, looked up by name when the rule runs)."""

    def use(req: Request, resp: Response | None, close: bool) -> Outcome:
        found = cache.CACHES.get(name)
        hit = cache.use(found, req, int(proc.clock()), close, counter) if found else None
        if hit is None:
            return None
        answer, status, closes = hit
        return Verdict("reply", status, answer, closes, where, "LR--")

    def store(req: Request, resp: Response | None, close: bool) -> Outcome:
        found = cache.CACHES.get(name)
        if found is not None and resp is not None:
            cache.store(found, req, resp, int(proc.clock()))
        return None

    return use if action == "cache-use" else store


def _normalize_step(rule: HttpRule, where: str) -> Step:
    """`normalize-uri` (core/http/normalize_uri.py); a malformed target under `strict`
    gets HAProxy's 400, the connection closed, logged PR--."""
    normalize = normalize_uri.normalizer(rule.name, bool(rule.status))

    def step(req: Request, resp: Response | None, close: bool) -> Outcome:
        if normalize_uri.apply(normalize, req):
            return None
        response, _ = reply.finish(reply.PAGES[400], req, True)
        return Verdict("deny", 400, response, True, where, "PR--", counts=REFUSED_BAD)

    return step


def _status_step(status: int, reason: str) -> Step:
    """`http-response set-status`: the status line the client gets (and the log's)."""

    def set_status(req: Request, resp: Response | None, close: bool) -> Outcome:
        assert resp is not None
        resp.status, resp.reason = status, reason
        resp.headers.modified = True  # the head is rebuilt (response_analysers.client_head)
        return None

    return set_status


def _variable_step(rule: HttpRule, scope: Scope) -> Step:
    """`set-var` (the last value of its sample; none: the variable is left as it was),
    `set-var-fmt` (the string) and `unset-var`."""
    if rule.action == "unset-var":
        unset = variables.unsetter(rule.name)

        def unset_var(req: Request, resp: Response | None, close: bool) -> Outcome:
            unset(req)
            return None

        return unset_var
    store = variables.setter(rule.name, rule.var_conditions)
    if rule.action == "set-var-fmt":
        assert rule.value is not None
        text = compile_format(rule.value, scope)

        def set_var_fmt(req: Request, resp: Response | None, close: bool) -> Outcome:
            store(req, text(req, resp))
            return None

        return set_var_fmt
    assert rule.sample is not None
    values = sample_values(rule.sample, scope)
    last = sample_last(rule.sample)

    def set_var(req: Request, resp: Response | None, close: bool) -> Outcome:
        found = values(req, resp)
        if found:
            store(req, found[-1] if last else found[0])
        return None

    return set_var


def _headers(req: Request, resp: Response | None, scope: Scope) -> Headers:
    if scope == "res":
        assert resp is not None
        return resp.headers
    return req.headers


def _name_matcher(rule: HttpRule) -> Callable[[str], bool]:
    wanted = rule.name.lower()
    if rule.match == "str":
        return lambda key: key.lower() == wanted
    if rule.match == "beg":
        return lambda key: key.lower().startswith(wanted)
    if rule.match == "end":
        return lambda key: key.lower().endswith(wanted)
    if rule.match == "sub":
        return lambda key: wanted in key.lower()
    regex = re.compile(rule.regex)
    return lambda key: regex.search(key) is not None


def _delete(headers: Headers, matches: Callable[[str], bool]) -> None:
    kept = [(key, value) for key, value in headers.items if not matches(key)]
    if len(kept) != len(headers.items):
        headers.items = kept
        headers.modified = True


def _replace_step(rule: HttpRule, scope: Scope) -> Step:
    """`replace-header`: a matching value is wholly replaced; `replace-value`: the same
    for each comma-separated value (the blanks around a replaced value go with it)."""
    assert rule.value is not None
    regex = re.compile(rule.regex)
    replacement = compile_format(rule.value, scope)
    wanted = rule.name.lower()
    each_value = rule.action == "replace-value"

    def step(req: Request, resp: Response | None, close: bool) -> Outcome:
        headers = _headers(req, resp, scope)
        template: str | None = None
        for index, (key, value) in enumerate(headers.items):
            if key.lower() != wanted:
                continue
            if template is None:
                template = replacement(req, resp)
            new = (
                _replace_values(value, regex, template)
                if each_value
                else _replace_whole(value, regex, template)
            )
            if new is not None:
                headers.replace_at(index, key, new)
        return None

    return step


def _replace_whole(value: str, regex: re.Pattern[str], template: str) -> str | None:
    found = regex.search(value)
    return expand(template, found) if found else None


def _replace_values(value: str, regex: re.Pattern[str], template: str) -> str | None:
    parts, changed = [], False
    for part in _segments(value):
        found = regex.search(part.strip(" \t"))
        if found:
            parts.append(expand(template, found))
            changed = True
        else:
            parts.append(part)
    return ",".join(parts) if changed else None


def _segments(value: str) -> list[str]:
    """A header value cut at its commas (not inside double quotes), blanks kept."""
    if '"' not in value:
        return value.split(",")
    segments, start, quoted = [], 0, False
    for index, char in enumerate(value):
        if char == '"' and (index == 0 or value[index - 1] != "\\"):
            quoted = not quoted
        elif char == "," and not quoted:
            segments.append(value[start:index])
            start = index + 1
    segments.append(value[start:])
    return segments


def _redirect_step(rule: Redirect) -> tuple[Test | None, Step]:
    return _test(rule.condition, "req"), _redirect(rule, f"redirect at {rule.where}")


def _redirect(rule: Redirect, where: str) -> Step:
    target_format = (
        compile_format(rule.target_format, "req") if rule.target_format is not None else None
    )

    def step(req: Request, resp: Response | None, close: bool) -> Outcome:
        close = close or reply.client_closes(req)
        applied = rule
        if target_format is not None:
            applied = replace(rule, target=target_format(req, resp))
        target = redirects.location(applied, req.uri, req.headers.get("host"))
        response = redirects.response(applied, target, close)
        response = reply.redirect_keep_alive(response, req, close)
        return Verdict("reply", rule.code, response, close, where, "LR--")

    return step


def _auth_step(realm: str, where: str) -> Step:
    """`http-request auth [realm R]`: HAProxy's 401 page asking for credentials (the
    realm defaults to the proxy's name); the connection stays open, as in HAProxy."""
    escaped = realm.replace("\\", "\\\\").replace('"', '\\"')
    base = reply.PAGES[401]
    header = f'www-authenticate: Basic realm="{escaped}"\r\n'.encode("latin-1", "replace")
    prepared = reply.Prepared(401, base.http10, base.head + header, base.body)

    def challenge(req: Request, resp: Response | None, close: bool) -> Outcome:
        response, closes = reply.finish(prepared, req, close or reply.client_closes(req))
        return Verdict("reply", 401, response, closes, where, "LR--")

    return challenge


def _reply_step(proxy: Proxy, spec: HttpReply, kind: VerdictKind, where: str, scope: Scope) -> Step:
    """`deny` and `return`: a response prepared once (error page, error file, static
    payload), or built for each request when it has log-format parts."""
    # A proxy's (P) or a local (L) answer, in the request (R) or response headers (H) phase.
    termination = ("P" if kind == "deny" else "L") + ("R--" if scope == "req" else "H--")
    termination = "PT--" if kind == "tarpit" else termination
    prepared: reply.Prepared | None = None
    if spec.errorfile is not None:
        prepared = reply.errorfile(spec.errorfile)
    elif spec.default_errorfiles:
        own = proxy.errorfile(spec.status)
        prepared = reply.errorfile(own) if own is not None else reply.PAGES[spec.status]
    elif not spec.headers and spec.body_format is None:
        prepared = reply.built(spec.status, [], spec.content_type, spec.body)
    if prepared is not None:
        fixed = prepared

        def send(req: Request, resp: Response | None, close: bool) -> Outcome:
            response, closes = reply.finish(fixed, req, close or reply.client_closes(req))
            return Verdict(kind, fixed.status, response, closes, where, termination)

        return send
    headers = [(name, compile_format(value, scope)) for name, value in spec.headers]
    body_format = spec.body_format
    body = compile_format(body_format, scope, body=True) if body_format is not None else None

    def build(req: Request, resp: Response | None, close: bool) -> Outcome:
        payload = body(req, resp).encode("utf-8", "surrogateescape") if body else spec.body
        values = [(name, value(req, resp)) for name, value in headers]
        built = reply.built(spec.status, values, spec.content_type, payload)
        response, closes = reply.finish(built, req, close or reply.client_closes(req))
        return Verdict(kind, spec.status, response, closes, where, termination)

    return build
