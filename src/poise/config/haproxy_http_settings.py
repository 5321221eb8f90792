"""The HTTP settings of proxy sections (configuration.txt 4.2): `cookie`, `errorfile`,
`capture request|response header`, `http-reuse`, `log-format`, and `http-check send|expect`
(with `option httpchk`, in haproxy_options.py, they make the backend's HTTP check).

Each is checked as HAProxy 2.6 checks it (`haproxy -c` gives the same verdict on the same
line). The files these keywords name are read through the `read_file` function the loader
gives, so this module stays pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Literal

from poise.config import logformat
from poise.config.acl_parse import ReadFile
from poise.config.diagnostics import Diagnostic, warning
from poise.config.errorfile import HANDLED_STATUSES, parse_response
from poise.config.haproxy_draft import CheckSend, Problem, SectionDraft, no_args
from poise.config.haproxy_http_actions import declare_capture
from poise.config.model import (
    Capture,
    Compression,
    Cookie,
    ErrorFile,
    HttpExpect,
    HttpReuse,
    Option,
    Where,
)
from poise.config.model_http import CompressionAlgo, ErrorFilesRef
from poise.config.units import parse_int, parse_time

Handler = Callable[[Sequence[str], Where], None]
CookieMode = Literal["rewrite", "insert", "prefix"]
_COOKIE_MODES: dict[str, CookieMode] = {
    "rewrite": "rewrite",
    "insert": "insert",
    "prefix": "prefix",
}
ExpectKind = Literal["status", "rstatus", "string", "rstring"]
_EXPECT_KINDS: dict[str, ExpectKind] = {k: k for k in ("status", "rstatus", "string", "rstring")}
_COMPRESSION_ALGOS: dict[str, CompressionAlgo] = {
    name: name for name in ("identity", "gzip", "deflate", "raw-deflate")
}
_REUSE: dict[str, HttpReuse] = {m: m for m in ("never", "safe", "aggressive", "always")}
_EXPECT_OPTIONS = frozenset(
    {"min-recv", "comment", "ok-status", "error-status", "tout-status", "on-success"}
    | {"on-error", "status-code"}
)
_COOKIE_FLAGS = frozenset(
    ("indirect", "nocache", "postonly", "preserve", "httponly", "secure", "dynamic")
)
_COOKIE_OPTIONS = (  # HAProxy 2.6's words, which leave out a few options it takes
    "'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', 'nocache', 'postonly', "
    "'domain', 'maxidle', 'dynamic', 'maxlife' and 'attr' options"
)


def check_regex(value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise Problem(f"regex '{value}' is invalid ({exc})") from None


def read(read_file: ReadFile | None, path: str) -> bytes:
    """A file the configuration names (raises Problem when it cannot be read)."""
    if read_file is None:
        raise Problem(f"error opening file '{path}' (no file can be read here)")
    try:
        return read_file(path)
    except OSError as exc:
        raise Problem(f"error opening file '{path}': {exc.strerror or exc}") from None


def response_file(read_file: ReadFile | None, path: str) -> bytes:
    """A file holding a whole HTTP response (errorfile.py checks it)."""
    content = read(read_file, path)
    try:
        parse_response(content)
    except ValueError as exc:
        raise Problem(f"'{path}': {exc}") from None
    return content


def parse_errorfile(
    args: Sequence[str], where: Where, read_file: ReadFile | None, diagnostics: list[Diagnostic]
) -> ErrorFile:
    """`errorfile CODE FILE` (in a proxy or an `http-errors` section)."""
    if len(args) < 2:
        raise Problem("expects <status_code> and <file> as arguments")
    status = int(args[0]) if args[0].isdigit() else 0
    if status not in HANDLED_STATUSES:
        raise Problem(f"status code '{status}' not handled")
    if len(args) > 2:
        diagnostics.append(
            warning(where, f"argument '{args[2]}' ignored, as HAProxy does", "errorfile")
        )
    return ErrorFile(status, response_file(read_file, args[1]), args[1], where)


class HttpSettings:
    """The handlers of these keywords for one section."""

    def __init__(
        self,
        section: SectionDraft,
        diagnostics: list[Diagnostic],
        read_file: ReadFile | None,
    ) -> None:
        self.section = section
        self.settings = section.settings
        self.diagnostics = diagnostics
        self.read_file = read_file

    def handlers(self) -> dict[str, Handler]:
        return {
            "cookie": self.cookie,
            "dynamic-cookie-key": self.dynamic_cookie_key,
            "errorfile": self.errorfile,
            "errorfiles": self.errorfiles,
            "capture request header": self.capture_request,
            "capture response header": self.capture_response,
            "declare capture": lambda args, where: declare_capture(self.section, args, where),
            "http-check send": self.check_send,
            "http-check expect": self.check_expect,
            "http-check disable-on-404": self.disable_on_404,
            "http-reuse": self.http_reuse,
            "log-format": self.log_format,
            "log-format-sd": self.log_format_sd,
            "compression": self.compression,
        }

    def cookie(self, args: Sequence[str], where: Where) -> None:
        if not args:
            raise Problem("'cookie' expects <cookie_name> as argument")
        modes: set[str] = set()
        flags: set[str] = set()
        domains: list[str] = []
        attrs: list[str] = []
        maxidle = maxlife = None
        index = 1
        while index < len(args):
            word = args[index]
            value = args[index + 1] if index + 1 < len(args) else None
            if word in ("rewrite", "insert", "prefix"):
                modes.add(word)
            elif word in _COOKIE_FLAGS:
                flags.add(word)
            elif word in ("domain", "maxidle", "maxlife", "attr"):
                if value is None:
                    what = {"domain": "<domain>", "attr": "<value>"}.get(word, "<time>")
                    raise Problem(f"'{word}' expects {what} as argument")
                if word == "domain":
                    domains.append(self.cookie_domain(value, where))
                elif word == "attr":
                    bad = next((c for c in value if c == ";" or ord(c) < 0x20), None)
                    if bad is not None:
                        raise Problem(
                            f"character '%x{ord(bad):02X}' is not permitted in attribute value"
                        )
                    attrs.append(value)
                else:
                    seconds = -(-parse_time(value, "s") // 1000) or None
                    if word == "maxidle":
                        maxidle = seconds
                    else:
                        maxlife = seconds
                index += 1
            else:
                raise Problem(_COOKIE_OPTIONS)
            index += 1
        if len(modes) > 1:
            raise Problem("cookie 'rewrite', 'insert' and 'prefix' modes are incompatible")
        mode = next(iter(modes), "rewrite")
        if mode == "rewrite" and "rewrite" in modes and "indirect" in flags:
            raise Problem("cookie 'rewrite' and 'indirect' modes are incompatible")
        if "preserve" in flags and mode != "insert" and "indirect" not in flags:
            raise Problem("cookie 'preserve' requires at least 'insert' or 'indirect'")
        self.settings.cookie = Cookie(
            args[0],
            where,
            _COOKIE_MODES[mode],
            indirect="indirect" in flags,
            nocache="nocache" in flags,
            postonly="postonly" in flags,
            preserve="preserve" in flags,
            httponly="httponly" in flags,
            secure="secure" in flags,
            domains=tuple(domains),
            maxidle=maxidle,
            maxlife=maxlife,
            attrs=tuple(attrs),
            dynamic="dynamic" in flags,
        )

    def dynamic_cookie_key(self, args: Sequence[str], where: Where) -> None:
        """`dynamic-cookie-key KEY`: the secret of `cookie ... dynamic` (its own line, in
        a backend or its defaults, before or after the `cookie` line)."""
        if not args or not args[0]:
            raise Problem("'dynamic-cookie-key' expects <secret_key> as argument")
        self.settings.dynamic_cookie_key = args[0]

    def cookie_domain(self, domain: str, where: Where) -> str:
        if "." not in domain[1:]:
            self.diagnostics.append(
                warning(
                    where,
                    f"domain '{domain}' contains no embedded dot, this configuration may "
                    "not work properly (see RFC6265#5.2.3)",
                    "cookie",
                )
            )
        return domain

    def errorfile(self, args: Sequence[str], where: Where) -> None:
        entry = parse_errorfile(args, where, self.read_file, self.diagnostics)
        self.settings.errorfiles.append(entry)

    def errorfiles(self, args: Sequence[str], where: Where) -> None:
        """`errorfiles NAME [CODE ...]` (the section is looked up by the link pass)."""
        if not args:
            raise Problem("expects <name> as first argument.")
        codes = []
        for word in args[1:]:
            code = int(word) if word.isdigit() else 0
            if code not in HANDLED_STATUSES:
                raise Problem(f"errorfiles : status code '{word}' not handled.")
            codes.append(code)
        self.settings.errorfiles.append(ErrorFilesRef(args[0], tuple(codes), where))

    def capture(self, args: Sequence[str], where: Where, direction: str) -> Capture:
        if len(args) < 3 or args[1] != "len":
            raise Problem(f"'capture {direction}' expects 'header' <header_name> 'len' <len>")
        if len(args) > 3:
            raise Problem(f"'capture {direction}' cannot handle unexpected argument '{args[3]}'")
        return Capture(args[0], parse_int(args[2], 0), where)

    def capture_request(self, args: Sequence[str], where: Where) -> None:
        self.section.capture_request_headers.append(self.capture(args, where, "request"))

    def capture_response(self, args: Sequence[str], where: Where) -> None:
        self.section.capture_response_headers.append(self.capture(args, where, "response"))

    def disable_on_404(self, args: Sequence[str], where: Where) -> None:
        """A 404 to a check puts the server in NOLB (core/health.py), with `option httpchk`."""
        no_args(args)
        self.settings.disable_on_404 = True
        self.settings.check_rules_where = self.settings.check_rules_where or where

    def http_reuse(self, args: Sequence[str], where: Where) -> None:
        if len(args) != 1 or args[0] not in _REUSE:
            raise Problem("'http-reuse' only supports 'never', 'safe', 'aggressive', 'always'")
        self.settings.http_reuse = _REUSE[args[0]]

    def compression(self, args: Sequence[str], where: Where) -> None:
        """`compression algo NAME...|type TYPE...|offload` (no `direction` in 2.6): the
        algorithms go in front of those named before (HAProxy's list order)."""
        settings = self.settings
        current = settings.compression or Compression()
        what = args[0] if args else ""
        if what == "algo":
            if len(args) < 2:
                raise Problem("'compression' expects <algorithm>.")
            algos = list(current.algos)
            for name in args[1:]:
                if name not in _COMPRESSION_ALGOS:
                    raise Problem(f"'compression' : '{name}' is not a supported algorithm.")
                algos.insert(0, _COMPRESSION_ALGOS[name])
            settings.compression = replace(current, algos=tuple(algos))
        elif what == "type":
            if len(args) < 2:
                raise Problem("'compression' expects <type>.")
            settings.compression = replace(current, types=tuple(args[1:]) + current.types)
        elif what == "offload":
            if self.section.kind == "defaults":
                self.diagnostics.append(
                    warning(where, "'offload' ignored in 'defaults' section.", "compression")
                )
                return
            settings.compression = replace(current, offload=True)
        else:
            raise Problem("'compression' expects 'algo', 'type' or 'offload'")

    def log_format(self, args: Sequence[str], where: Where) -> None:
        """`log-format STRING`: checked now (config/logformat.py), and against the
        proxy's mode by the link pass. Like `option httplog` and `option tcplog`, it
        replaces the format chosen before it, in this section or its defaults."""
        if not args or not args[0]:
            raise Problem("log-format expects an argument")
        if len(args) > 1:
            raise Problem("log-format expects only one argument, don't forget to escape spaces!")
        for option in (Option.HTTPLOG, Option.HTTPSLOG, Option.TCPLOG):
            self.settings.options[option] = False
        self.settings.log_format_where = where
        try:
            logformat.parse(args[0])
        except Problem as exc:
            self.settings.log_format = ""  # replaced all the same: not checked again
            raise Problem(f"failed to parse log-format : {exc}") from None
        self.settings.log_format = args[0]

    def log_format_sd(self, args: Sequence[str], where: Where) -> None:
        """`log-format-sd STRING`: the structured data of the frontend's RFC 5424
        messages, a log-format string (checked against the mode by the link pass)."""
        if not args or not args[0]:
            raise Problem("log-format-sd expects an argument")
        if len(args) > 1:
            raise Problem("log-format-sd expects only one argument, don't forget to escape spaces!")
        try:
            logformat.parse(args[0])
        except Problem as exc:
            raise Problem(f"failed to parse log-format-sd : {exc}") from None
        self.settings.log_format_sd = args[0], where

    def check_send(self, args: Sequence[str], where: Where) -> None:
        if self.settings.check_send is not None:
            raise Problem(
                "a second 'http-check send' needs 'http-check connect', which is not "
                "implemented yet in poise"
            )
        values: dict[str, str] = {}
        headers: list[tuple[str, str]] = []
        index = 0
        while index < len(args):
            word = args[index]
            width = 3 if word == "hdr" else 2
            if index + width > len(args):
                raise Problem(f"'{word}' expects {'<name> <value>' if width == 3 else 'a value'}")
            if word in ("meth", "uri", "ver", "body"):
                values[word] = args[index + 1]
            elif word == "hdr":
                headers.append((args[index + 1], args[index + 2]))
            elif word in ("uri-lf", "body-lf", "comment"):
                raise Problem(f"'{word}' is not implemented yet in poise")
            else:
                raise Problem(f"unexpected argument '{word}' (meth, uri, ver, hdr, body)")
            index += width
        send = CheckSend(
            where,
            values.get("meth"),
            values.get("uri"),
            values.get("ver"),
            tuple(headers),
            values.get("body"),
        )
        self.settings.check_send = send
        self.settings.check_rules_where = self.settings.check_rules_where or where

    def check_expect(self, args: Sequence[str], where: Where) -> None:
        if self.settings.check_expect is not None:
            raise Problem("several 'http-check expect' rules are not implemented yet in poise")
        words = list(args)
        if words and words[0] in _EXPECT_OPTIONS:
            raise Problem(f"'{words[0]}' is not implemented yet in poise")
        negate = bool(words) and words[0] == "!"
        if negate:
            words.pop(0)
        if not words:
            raise Problem("expects at least a matching pattern as arguments")
        kind = words[0]
        if kind in ("hdr", "fhdr", "custom"):
            raise Problem(f"'http-check expect {kind}' is not implemented yet in poise")
        if kind not in _EXPECT_KINDS:
            raise Problem(
                f"unknown match '{kind}' (status, rstatus, string, rstring, hdr, fhdr, custom)"
            )
        if len(words) < 2:
            raise Problem(f"'{kind}' expects a <pattern> as argument")
        pattern = words[1]
        if len(words) > 2:
            raise Problem(f"unexpected argument '{words[2]}'")
        if kind == "status":
            bad = next((c for c in pattern if not (c.isdigit() or c in ",-")), None)
            if bad is not None:
                raise Problem(f"invalid character '{bad}' in the list of status codes")
        elif kind in ("rstatus", "rstring"):
            check_regex(pattern)
        self.settings.check_expect = HttpExpect(_EXPECT_KINDS[kind], pattern, negate)
        self.settings.check_rules_where = self.settings.check_rules_where or where
