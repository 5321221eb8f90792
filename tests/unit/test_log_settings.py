"""The logging keywords of haproxy.cfg read as HAProxy 2.6 reads them (`log-tag`,
`log-send-hostname`, `option dontlog-normal`, `option log-separate-errors`), and the pure
decisions they feed: which sessions HAProxy counts as errors (log.c `strm_log`), the level
of a traffic line, and which targets take poise's explanations of failures."""

from __future__ import annotations

import pytest

from poise.config import logformat
from poise.config.haproxy import parse
from poise.config.model import DEFAULT_TAG, Config, Option
from poise.core.frontend import Frontend
from poise.core.logline import explanation_target
from poise.core.txnlog import traffic_error

BASE = """
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
{defaults}
frontend fe
    bind 127.0.0.1:8080
{frontend}
    default_backend be
backend be
    server s1 127.0.0.1:8081
"""


def config(text: str) -> tuple[Config | None, list[str]]:
    cfg, diagnostics = parse([("t.cfg", text)], {})
    return cfg, [str(d) for d in diagnostics]


def proxy_config(defaults: str = "", frontend: str = "", head: str = "") -> Config:
    cfg, diagnostics = config(head + BASE.format(defaults=defaults, frontend=frontend))
    assert cfg is not None and not diagnostics, diagnostics
    return cfg


def test_the_tag_is_haproxys_unless_log_tag_says_otherwise() -> None:
    cfg = proxy_config()
    assert cfg.global_.log_tag == DEFAULT_TAG == "haproxy"
    assert cfg.global_.log_send_hostname is None
    cfg = proxy_config(head="global\n    log-tag lb\n    log-send-hostname\n")
    assert cfg.global_.log_tag == "lb"
    assert cfg.global_.log_send_hostname == ""  # the system's name, read by the shell
    cfg = proxy_config(head="global\n    log-send-hostname edge-1\n")
    assert cfg.global_.log_send_hostname == "edge-1"


def test_a_proxy_log_tag_and_its_defaults() -> None:
    cfg = proxy_config(defaults="    log-tag web")
    fe, be = cfg.proxy("fe"), cfg.proxy("be")
    assert fe is not None and be is not None
    assert fe.log.tag == be.log.tag == "web"
    cfg = proxy_config(defaults="    log-tag web", frontend="    log-tag edge")
    fe = cfg.proxy("fe")
    assert fe is not None and fe.log.tag == "edge"


@pytest.mark.parametrize(
    ("head", "message"),
    [
        ("global\n    log-tag\n", "'log-tag': expects a tag for the log messages"),
        ("global\n    log-send-hostname a b\n", "'log-send-hostname': unexpected argument 'b'"),
    ],
)
def test_bad_global_lines(head: str, message: str) -> None:
    _, diagnostics = config(head + BASE.format(defaults="", frontend=""))
    assert any(message in d and "t.cfg:" in d for d in diagnostics), diagnostics


def test_a_proxy_log_tag_without_a_tag() -> None:
    _, diagnostics = config(BASE.format(defaults="", frontend="    log-tag"))
    assert any("'log-tag': expects a tag" in d for d in diagnostics), diagnostics


def test_dontlog_normal_and_log_separate_errors_with_their_prefixes() -> None:
    both = "    option dontlog-normal\n    option log-separate-errors"
    cfg = proxy_config(defaults=both)
    fe = cfg.proxy("fe")
    assert fe is not None
    assert {Option.DONTLOG_NORMAL, Option.LOG_SEPARATE_ERRORS} <= fe.options
    cfg = proxy_config(defaults=both, frontend="    no option dontlog-normal")
    fe = cfg.proxy("fe")
    assert fe is not None
    assert Option.DONTLOG_NORMAL not in fe.options and Option.LOG_SEPARATE_ERRORS in fe.options


@pytest.mark.parametrize(
    ("term", "retries", "redispatched", "status", "error"),
    [
        ("----", 0, False, 200, False),
        ("----", 0, False, 404, False),
        ("----", 0, False, 503, True),  # a 5xx from the server
        ("LR--", 0, False, 302, False),  # a redirect: a local answer
        ("PR--", 0, False, 403, True),  # a deny
        ("SC--", 0, False, 503, True),
        ("----", 1, False, 200, True),  # it took a retry
        ("----", 0, True, 200, True),  # ... or a redispatch
        ("CD", 0, False, 0, True),  # TCP: the client aborted
        ("--", 0, False, 0, False),
    ],
)
def test_what_haproxy_counts_as_an_error(
    term: str, retries: int, redispatched: bool, status: int, error: bool
) -> None:
    assert traffic_error(term, retries, redispatched, status) is error


@pytest.mark.parametrize(
    ("options", "normal", "failed"),
    [
        ("", "info", "info"),
        ("    option dontlog-normal", None, "info"),
        ("    option log-separate-errors", "info", "err"),
        ("    option dontlog-normal\n    option log-separate-errors", None, "err"),
    ],
)
def test_the_level_of_a_traffic_line(options: str, normal: str | None, failed: str) -> None:
    cfg = proxy_config(frontend=options)
    proxy = cfg.proxy("fe")
    assert proxy is not None
    frontend = Frontend(proxy, None, None, 100)
    assert frontend.traffic_level(error=False) == normal
    assert frontend.traffic_level(error=True) == failed


@pytest.mark.parametrize(
    ("level", "minlevel", "takes"),
    [
        (None, None, False),  # every level: the traffic's target
        ("info", None, False),
        ("debug", None, False),
        ("notice", None, True),  # `log ... local1 notice`
        ("warning", None, False),  # no notice lines at all
        ("notice", "notice", True),
        ("info", "notice", False),  # takes the traffic (raised to notice)
    ],
)
def test_the_targets_of_the_explanations(
    level: str | None, minlevel: str | None, takes: bool
) -> None:
    assert explanation_target(level, minlevel) is takes


def test_httpslog_is_httplog_with_the_tls_fields() -> None:
    cfg = proxy_config(frontend="    option httpslog")
    fe = cfg.proxy("fe")
    assert fe is not None and Option.HTTPSLOG in fe.options
    assert fe.log_format == logformat.HTTPSLOG
    assert logformat.HTTPSLOG.startswith(logformat.HTTPLOG + " %[fc_err]/%[ssl_fc_err,hex]/")
    # A later `log-format` or `option httplog` replaces it, as it replaces them.
    cfg = proxy_config(frontend='    option httpslog\n    log-format "%ci"')
    fe = cfg.proxy("fe")
    assert fe is not None and fe.log_format == "%ci" and Option.HTTPSLOG not in fe.options


def test_httpslog_in_a_tcp_frontend_falls_back_to_tcplog() -> None:
    text = BASE.format(defaults="", frontend="    mode tcp\n    option httpslog")
    text = text.replace("backend be\n", "backend be\n    mode tcp\n")
    cfg, diagnostics = config(text)
    assert cfg is not None
    fe = cfg.proxy("fe")
    assert fe is not None and fe.log_format is None and Option.TCPLOG in fe.options
    assert diagnostics == [
        "t.cfg:11: warning: 'option httpslog': not usable with frontend 'fe' (needs 'mode "
        "http'): falling back to 'option tcplog'"
    ]


def test_log_format_sd() -> None:
    sd = '    log-format-sd "[x@1 status=\\"%ST\\"]"'
    cfg = proxy_config(defaults=sd)
    fe, be = cfg.proxy("fe"), cfg.proxy("be")
    assert fe is not None and be is not None
    assert fe.log.format_sd == '[x@1 status="%ST"]' and be.log.format_sd is None
    text = BASE.format(defaults="", frontend="    mode tcp\n" + sd.replace("%ST", "%HM"))
    _, diagnostics = config(text.replace("backend be\n", "backend be\n    mode tcp\n"))
    assert diagnostics == [
        "t.cfg:11: error: 'log-format-sd': failed to parse log-format-sd : format variable "
        "'HM' is reserved for HTTP mode"
    ]
    _, diagnostics = config(BASE.format(defaults="    log-format-sd %[nope]", frontend=""))
    assert len(diagnostics) == 1 and "failed to parse log-format-sd : " in diagnostics[0]
