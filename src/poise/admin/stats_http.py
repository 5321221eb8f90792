"""The statistics page as an HTTP service (`stats enable`, `stats uri`...): which requests
it answers, who may see it, what each URI asks for, and the admin form's actions, as
HAProxy 2.6 does them (http_handle_stats, stats_process_http_post), answer by answer.

- A GET, HEAD or POST whose URI starts with `stats uri` is the page's (for a prefix
  starting with `/`, the URI's path and query are compared, so an absolute-form URI
  matches too). Other methods go on to the backend, as in HAProxy.
- With `stats auth`, nothing is shown without a valid user: 401 with
  `WWW-Authenticate: Basic realm="<stats realm>"`, and the connection closes.
- Options anywhere after the prefix: `;csv`, `;json`, `;typed` (exports), `;up` (hide
  servers that are down), `;no-maint` (hide servers in maintenance), `;norefresh`, and
  `;st=XXXX`, the result of the last admin action shown above the tables.
- A POST is an admin action when a `stats admin` condition holds (else `;st=DENY`): the
  form's `b` (backend, `#id` or name), `action` and `s` (servers) are applied through the
  runtime API's own `set server` commands (admin/commands.py), so the model changes
  exactly as with the stats socket; the answer is HAProxy's 303 to `<uri>;st=<result>`.
  poise adds one action to HAProxy's form: `weight` with the form's `weight` (N or N%).

Pure: the shell (net/services.py) reads the body, builds the View and starts the
connections a change lets go (`Reply.goes`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_plus

from poise.admin import commands, page, stats, stats_json, stats_report
from poise.config.model import StatsPage
from poise.core.backend import Backend, Go
from poise.core.http import reply, rules, validate
from poise.core.http.message import Request

SCOPE_MAXLEN = 20  # STAT_SCOPE_TXT_MAXLEN
_SCOPE_END = re.compile(r"[;& ]")
_SCOPE_CHARS = re.compile(r"[A-Za-z0-9._:-]*")
MAX_BODY = 8 * 1024  # an admin form larger than this is refused (`;st=EXCD`)
METHODS = ("GET", "HEAD", "POST")
Format = Literal["html", "csv", "json", "typed"]
CONTENT_TYPES: dict[Format, str] = {
    "html": "text/html",
    "csv": "text/plain",
    "json": "application/json",
    "typed": "text/plain",
}
# The admin form's actions: the runtime API command each one runs on a server.
ACTIONS = {
    "ready": "state ready",
    "drain": "state drain",
    "maint": "state maint",
    "weight": "weight",
}
# HAProxy's result codes of an admin action (`;st=`), strictly four letters.
RESULTS = ("DENY", "DONE", "ERRP", "EXCD", "NONE", "PART", "UNKN", "IVAL")


@dataclass(frozen=True, slots=True)
class Options:
    """What the URI asks for, after the `stats uri` prefix."""

    format: Format = "html"
    hide_down: bool = False
    hide_maint: bool = False
    norefresh: bool = False
    result: str | None = None  # `;st=` (UNKN for a code HAProxy does not know)
    scope: str = ""  # `scope=`: only the proxies whose name contains it


@dataclass(frozen=True, slots=True)
class Reply:
    """The page's answer: the bytes to send, whether the connection closes after them,
    and the waiting connections an admin action let go. `needs_body`: a POST whose body
    has not been read yet; the shell reads it and asks again."""

    status: int
    response: bytes = b""
    close: bool = False
    goes: tuple[Go, ...] = ()
    needs_body: bool = False


NEEDS_BODY = Reply(0, needs_body=True)


def target(page_uri: str, req: Request) -> str | None:
    """The part of the URI after the `stats uri` prefix, or None when the request is not
    for the page."""
    if req.method not in METHODS:
        return None
    uri = req.uri
    if page_uri.startswith("/") and "://" in uri[:10]:
        slash = uri.find("/", uri.find("://") + 3)
        uri = uri[slash:] if slash >= 0 else "/"
    if not uri.startswith(page_uri):
        return None
    return uri[len(page_uri) :]


def options(rest: str, page_settings: StatsPage) -> Options:
    """The options of the URI, each found anywhere in it, as HAProxy looks for them."""
    fmt: Format = "html"
    if ";csv" in rest:
        fmt = "csv"
    if ";typed" in rest:
        fmt = "typed"
    if ";json" in rest:
        fmt = "json"
    result = None
    at = rest.find(";st=")
    if at >= 0 and len(rest) - at >= 8:
        code = rest[at + 4 : at + 8]
        result = code if code in RESULTS else "UNKN"
    return Options(
        format=fmt,
        hide_down=";up" in rest,
        hide_maint=";no-maint" in rest,
        norefresh=bool(page_settings.refresh) and ";norefresh" in rest,
        result=result,
        scope=search_scope(rest),
    )


def search_scope(rest: str) -> str:
    """The URI's `scope=` (what the page's Scope box sends), read as HAProxy 2.6 reads it
    (checked side by side): its first `scope=` anywhere after the prefix, at least two
    bytes before the URI's end, up to a `;`, `&` or space, cut at 20 characters
    (STAT_SCOPE_TXT_MAXLEN); not decoded, and ignored when it holds anything but letters,
    digits, `.`, `_`, `-` and `:` (invalid_char)."""
    at = rest.find("scope=")
    if at < 0 or at > len(rest) - 8:
        return ""
    text = _SCOPE_END.split(rest[at + 6 :], maxsplit=1)[0][:SCOPE_MAXLEN]
    return text if _SCOPE_CHARS.fullmatch(text) else ""


# -- who may see it -----------------------------------------------------------------------


def authorized(page_settings: StatsPage, req: Request) -> bool:
    """`stats auth`: Basic credentials of one of the users (no user: open to all)."""
    if not page_settings.users:
        return True
    header = req.headers.get("authorization") or ""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, colon, password = decoded.partition(":")
    if not colon:
        return False
    granted = False
    for known_user, known_password in page_settings.users:
        same_user = hmac.compare_digest(user.encode(), known_user.encode())
        same_password = hmac.compare_digest(password.encode(), known_password.encode())
        granted |= same_user and same_password
    return granted


def is_admin(page_settings: StatsPage, req: Request) -> bool:
    """`stats admin if|unless COND`: the first condition that holds grants it."""
    return any(rules.condition_holds(cond, req) for cond in page_settings.admin)


def challenge(page_settings: StatsPage, req: Request) -> Reply:
    """HAProxy's 401 page with the realm; the connection closes."""
    realm = page_settings.realm.replace("\\", "\\\\").replace('"', '\\"')
    base = reply.PAGES[401]
    head = base.head + f'www-authenticate: Basic realm="{realm}"\r\n'.encode("latin-1", "replace")
    prepared = reply.Prepared(401, False, head, base.body, close=True)
    response, _ = reply.finish(prepared, req, True)
    return Reply(401, response, close=True)


# -- answers ------------------------------------------------------------------------------


def answer(
    page_settings: StatsPage,
    view: stats.View,
    req: Request,
    rest: str,
    rates: stats_report.Rates,
    *,
    close: bool = False,
    body: bytes | None = None,
) -> Reply:
    """The page's answer to a request for it (`rest`: the URI after the prefix)."""
    if not authorized(page_settings, req):
        return challenge(page_settings, req)
    wanted = options(rest, page_settings)
    admin = is_admin(page_settings, req)
    if req.method == "POST":
        return post(page_settings, view, req, wanted, admin=admin, close=close, body=body)
    scope = page_settings.scope
    sections = stats_report.report(
        view,
        rates,
        stats_report.Filter(
            scope, wanted.hide_down, wanted.hide_maint, page_settings.show_legends, wanted.scope
        ),
    )
    if wanted.format == "csv":
        text = stats_report.csv(sections)
    elif wanted.format == "json":
        text = stats_json.json_rows(sections)
    elif wanted.format == "typed":
        text = stats_json.typed_rows(sections)
    else:
        text = page.render(view, sections, page_settings, wanted, admin)
    headers = [("cache-control", "no-cache"), ("content-type", CONTENT_TYPES[wanted.format])]
    if page_settings.refresh and not wanted.norefresh:
        headers.append(("refresh", str(page_settings.refresh)))
    return ok(req, headers, text.encode("utf-8"), close)


def ok(req: Request, headers: Sequence[tuple[str, str]], body: bytes, close: bool) -> Reply:
    lines = ["HTTP/1.1 200 OK", *(f"{name}: {value}" for name, value in headers)]
    lines.append(f"content-length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
    response, closes = reply.finish(reply.Prepared(200, False, head, body), req, close)
    return Reply(200, response, closes)


def redirect(
    page_settings: StatsPage, wanted: Options, result: str, req: Request, close: bool
) -> Reply:
    """HAProxy's answer to a POST: 303 to the page with the action's result."""
    location = f"{page_settings.uri};st={result}"
    location += ";up" if wanted.hide_down else ""
    location += ";norefresh" if wanted.norefresh else ""
    head = (
        "HTTP/1.1 303 See Other\r\ncache-control: no-cache\r\ncontent-type: text/plain\r\n"
        f"content-length: 0\r\nlocation: {location}\r\n"
    ).encode("latin-1", "replace")
    response, closes = reply.finish(reply.Prepared(303, False, head, b""), req, close)
    return Reply(303, response, closes)


def post(
    page_settings: StatsPage,
    view: stats.View,
    req: Request,
    wanted: Options,
    *,
    admin: bool,
    close: bool,
    body: bytes | None,
) -> Reply:
    framing = validate.request_framing(req)
    length = framing.length if framing.kind == "length" else 0
    unread = body is None and (framing.kind == "chunked" or length > 0)
    if not admin:
        # The body is not read: the connection cannot go on after the answer.
        return redirect(page_settings, wanted, "DENY", req, close or unread)
    if framing.kind == "chunked":
        return redirect(page_settings, wanted, "IVAL", req, True)
    if length > MAX_BODY:
        return redirect(page_settings, wanted, "EXCD", req, True)
    if unread:
        return NEEDS_BODY
    result, goes = apply_form(view, parse_form(body or b""))
    outcome = redirect(page_settings, wanted, result, req, close)
    return Reply(outcome.status, outcome.response, outcome.close, goes)


# -- the admin form -----------------------------------------------------------------------


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """An application/x-www-form-urlencoded body."""
    pairs: list[tuple[str, str]] = []
    for part in body.decode("utf-8", "replace").split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def apply_form(view: stats.View, form: Sequence[tuple[str, str]]) -> tuple[str, tuple[Go, ...]]:
    """The form's action on its servers, HAProxy's result code, and the connections the
    changes let go. A server is changed by the runtime API's `set server` command."""
    fields: dict[str, str] = {}
    names: list[str] = []
    for name, value in form:
        if name == "s":
            names.append(value)
        else:
            fields.setdefault(name, value)
    backend: Backend | None = None
    if "b" in fields:
        backend = view.backend(fields["b"])
        if backend is None:
            return "ERRP", ()
    action = fields.get("action")
    if action is not None and action not in ACTIONS:
        return "ERRP", ()
    if backend is None or action is None or not names:
        return "NONE", ()
    session = commands.Session(commands.Level.ADMIN)
    altered = 0
    goes: list[Go] = []
    for name in names:
        command = server_command(backend, name, action, fields.get("weight", ""))
        if command is None:
            continue
        result = commands.execute(command, session, view)
        if not result.text.strip():
            altered += 1
            goes.extend(result.goes)
    if altered == 0:
        return "ERRP", tuple(goes)
    return ("DONE" if altered == len(names) else "PART"), tuple(goes)


def server_command(backend: Backend, name: str, action: str, weight: str) -> str | None:
    """The `set server` command for one of the form's servers, or None when there is no
    such server in the backend (or the weight is not a number)."""
    if backend.server(name) is None:
        return None
    what = ACTIONS[action]
    if action == "weight":
        digits = weight.strip().removesuffix("%")
        if not digits.isdigit() or not digits.isascii():
            return None
        what = f"weight {weight.strip()}"
    return f"set server #{backend.proxy.id}/{name} {what}"
