"""Log lines through the running proxy: `capture request|response header` blocks in the
`option httplog` line, `option httplog clf`, and custom `log-format` lines in HTTP and TCP
mode, compared with the lines Debian's haproxy 2.6.12 wrote for the same configuration and
the same request bytes (a tests/webapp.py backend named web1, both on 127.0.0.1).

The custom formats below show no value that changes from run to run, so their lines must
be HAProxy's exactly. In the fixed formats the client port, the dates and the timers
differ by nature, and %B too (the response head poise forwards is not byte for byte the
one HAProxy re-encodes): those are masked in both lines before comparing.
Every test runs under uvloop and the standard asyncio loop.
"""

from __future__ import annotations

import re

from tests.io.harness import Stage
from tests.support import run
from tests.webapp import request

CONFIG = """
defaults
    mode http
    log 127.0.0.1:{log} format raw local0
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend httplog
    bind 127.0.0.1:0
    option httplog
    capture request header Host len 20
    capture request header X-Weird len 40
    capture request header User-Agent len 5
    capture request header X-Missing len 10
    capture request header X-Empty len 10
    capture response header X-Backend len 3
    capture response header Set-Cookie len 8
    default_backend be
frontend nocap
    bind 127.0.0.1:0
    option httplog
    default_backend be
frontend rescap
    bind 127.0.0.1:0
    option httplog
    capture response header X-Backend len 30
    default_backend be
frontend custom
    bind 127.0.0.1:0
    capture request header Host len 20
    capture request header X-Weird len 40
    capture response header X-Backend len 30
    log-format "{custom}"
    default_backend be
frontend clf
    bind 127.0.0.1:0
    option httplog clf
    capture request header Host len 20
    capture request header X-Missing len 5
    capture response header X-Backend len 30
    default_backend be
frontend tcpfe
    mode tcp
    bind 127.0.0.1:0
    capture request header Host len 5
    log-format "{tcp}"
    default_backend tbe
backend be
    server web1 127.0.0.1:{web1}
backend tbe
    mode tcp
    server web1 127.0.0.1:{web1}
"""

CUSTOM = (
    "%ci %f %b/%s %ST %tsc %ac/%fc/%sc/%rc %sq/%bq %hr %hs %{+Q}hrl %hsl %{+Q}r %HM %HU %HP "
    "%HPO %HQ %HV %[capture.req.hdr(1)] %{+E}[capture.req.hdr(1)] %[capture.res.hdr(0),upper] "
    "%{+Q}[method] %[src] %{+Q}CC %ID %{+X}ci %{+Q,+E}HU %%%[ssl_fc] %{+Q}o %f %b %{-Q}o %s"
)
TCP = (
    "%ci %f %b/%s %ts %tsc %ST %hr %hs %hrl %{+Q}[method] %[src] %ac/%fc/%sc/%rc %sq/%bq %ID "
    "%{+X}ci %{+Q}f"
)
REQUESTS = [
    b"GET /cookie HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\n"
    b"Connection: close\r\n\r\n",
    b'GET /p/a?x=1&y=%22 HTTP/1.1\r\nHost: example.com\r\nX-Weird: a|b{c}d"e#f\tg]\\h\r\n'
    b"User-Agent: first\r\nUser-Agent: second\r\nX-Empty:\r\nConnection: close\r\n\r\n",
    b"GET http://example.com/abs/p?q=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    b"GET /status/404 HTTP/1.0\r\nHost: example.com\r\n\r\n",
    b"BAD\r\n\r\n",
]

# What haproxy 2.6.12 logged for REQUESTS, frontend by frontend (the line of tcpfe is for
# "GET /tcp HTTP/1.0\r\n\r\n").
HAPROXY = {
    "httplog": [
        "127.0.0.1:53080 [21/Nov/2026:11:38:55.613] httplog be/web1 0/0/0/0/0 200 107 - - "
        '---- 1/1/0/0/0 0/0 {example.com||curl/||} {web|APP=serv} "GET /cookie HTTP/1.1"',
        "127.0.0.1:53090 [21/Nov/2026:11:38:55.635] httplog be/web1 0/0/0/0/0 200 82 - - "
        "---- 1/1/0/0/0 0/0 {example.com|a#7Cb#7Bc#7Dd#22e#23f#09g]\\h|secon||} {web|} "
        '"GET /p/a?x=1&y=%22 HTTP/1.1"',
        "127.0.0.1:53094 [21/Nov/2026:11:38:55.667] httplog be/web1 0/0/0/0/0 200 96 - - "
        '---- 1/1/0/0/0 0/0 {example.com||||} {web|} "GET http://example.com/abs/p?q=1 '
        'HTTP/1.1"',
        "127.0.0.1:53104 [21/Nov/2026:11:38:55.691] httplog be/web1 0/0/0/0/0 404 68 - - "
        '---- 1/1/0/0/0 0/0 {example.com||||} {web|} "GET /status/404 HTTP/1.0"',
        "127.0.0.1:53114 [21/Nov/2026:11:38:55.718] httplog httplog/<NOSRV> -1/-1/-1/-1/0 400 "
        '0 - - PR-- 1/1/0/0/0 0/0 "<BADREQ>"',
    ],
    "nocap": [
        "127.0.0.1:47668 [21/Nov/2026:11:38:55.741] nocap be/web1 0/0/0/0/0 200 107 - - "
        '---- 1/1/0/0/0 0/0 "GET /cookie HTTP/1.1"',
        "127.0.0.1:47676 [21/Nov/2026:11:38:55.764] nocap be/web1 0/0/0/0/0 200 82 - - "
        '---- 1/1/0/0/0 0/0 "GET /p/a?x=1&y=%22 HTTP/1.1"',
        "127.0.0.1:47688 [21/Nov/2026:11:38:55.786] nocap be/web1 0/0/0/0/0 200 96 - - "
        '---- 1/1/0/0/0 0/0 "GET http://example.com/abs/p?q=1 HTTP/1.1"',
        "127.0.0.1:47698 [21/Nov/2026:11:38:55.808] nocap be/web1 0/0/0/0/0 404 68 - - "
        '---- 1/1/0/0/0 0/0 "GET /status/404 HTTP/1.0"',
        "127.0.0.1:47708 [21/Nov/2026:11:38:55.831] nocap nocap/<NOSRV> -1/-1/-1/-1/0 400 0 "
        '- - PR-- 1/1/0/0/0 0/0 "<BADREQ>"',
    ],
    "rescap": [
        "127.0.0.1:43834 [21/Nov/2026:11:38:55.852] rescap be/web1 0/0/0/0/0 200 107 - - "
        '---- 1/1/0/0/0 0/0 {web1} "GET /cookie HTTP/1.1"',
        "127.0.0.1:43848 [21/Nov/2026:11:38:55.875] rescap be/web1 0/0/0/0/0 200 82 - - "
        '---- 1/1/0/0/0 0/0 {web1} "GET /p/a?x=1&y=%22 HTTP/1.1"',
        "127.0.0.1:43850 [21/Nov/2026:11:38:55.906] rescap be/web1 0/0/0/0/0 200 96 - - "
        '---- 1/1/0/0/0 0/0 {web1} "GET http://example.com/abs/p?q=1 HTTP/1.1"',
        "127.0.0.1:43858 [21/Nov/2026:11:38:55.936] rescap be/web1 0/0/0/0/0 404 68 - - "
        '---- 1/1/0/0/0 0/0 {web1} "GET /status/404 HTTP/1.0"',
        "127.0.0.1:43862 [21/Nov/2026:11:38:55.966] rescap rescap/<NOSRV> -1/-1/-1/-1/0 400 "
        '0 - - PR-- 1/1/0/0/0 0/0 "<BADREQ>"',
    ],
    "custom": [
        '127.0.0.1 custom be/web1 200 ---- 1/1/0/0 0/0 {example.com|} {web1} "example.com" '
        '"" web1 "GET /cookie HTTP/1.1" GET /cookie /cookie /cookie  HTTP/1.1 - - WEB1 "GET" '
        '127.0.0.1 "" - 7F000001 "/cookie" %0 "custom" "be" web1',
        "127.0.0.1 custom be/web1 200 ---- 1/1/0/0 0/0 "
        "{example.com|a#7Cb#7Bc#7Dd#22e#23f#09g]\\h} {web1} "
        '"example.com" "a#7Cb#7Bc#7Dd#22e#23f#09g]\\h" web1 "GET /p/a?x=1&y=%22 HTTP/1.1" '
        'GET /p/a?x=1&y=%22 /p/a /p/a ?x=1&y=%22 HTTP/1.1 a|b{c}d"e#f\tg]\\h '
        'a|b{c}d\\"e#f\tg\\]\\\\h WEB1 "GET" 127.0.0.1 "" - 7F000001 "/p/a?x=1&y=%22" %0 '
        '"custom" "be" web1',
        '127.0.0.1 custom be/web1 200 ---- 1/1/0/0 0/0 {example.com|} {web1} "example.com" '
        '"" web1 "GET http://example.com/abs/p?q=1 HTTP/1.1" GET http://example.com/abs/p?q=1 '
        "http://example.com/abs/p /abs/p ?q=1 HTTP/1.1 - - WEB1 "
        '"GET" 127.0.0.1 "" - 7F000001 "http://example.com/abs/p?q=1" %0 "custom" "be" web1',
        '127.0.0.1 custom be/web1 404 ---- 1/1/0/0 0/0 {example.com|} {web1} "example.com" '
        '"" web1 "GET /status/404 HTTP/1.0" GET /status/404 /status/404 /status/404  HTTP/1.0 '
        '- - WEB1 "GET" 127.0.0.1 "" - 7F000001 "/status/404" %0 "custom" "be" web1',
        '127.0.0.1 custom custom/<NOSRV> 400 PR-- 1/1/0/0 0/0 "<BADREQ>" <BADREQ> <BADREQ> '
        '<BADREQ> <BADREQ> <BADREQ> <BADREQ> - - - "" 127.0.0.1 "" - 7F000001 "<BADREQ>" %0 '
        '"custom" "custom" <NOSRV>',
    ],
    "clf": [
        '127.0.0.1 - - [21/Nov/2026:11:38:56 +0000] "GET /cookie HTTP/1.1" 200 107 "" "" 39058 '
        '139 "clf" "be" "web1" 0 0 0 0 0 ---- 1 1 0 0 0 0 0 "" "" "example.com" "" "web1"',
        '127.0.0.1 - - [21/Nov/2026:11:38:56 +0000] "GET /p/a?x=1&y=%22 HTTP/1.1" 200 82 "" "" '
        '39070 162 "clf" "be" "web1" 0 0 0 0 0 ---- 1 1 0 0 0 0 0 "" "" "example.com" "" '
        '"web1"',
        '127.0.0.1 - - [21/Nov/2026:11:38:56 +0000] "GET http://example.com/abs/p?q=1 HTTP/1.1" '
        '200 96 "" "" 39080 185 "clf" "be" "web1" 0 0 0 0 0 ---- 1 1 0 0 0 0 0 "" "" '
        '"example.com" "" "web1"',
        '127.0.0.1 - - [21/Nov/2026:11:38:56 +0000] "GET /status/404 HTTP/1.0" 404 68 "" "" '
        '39082 209 "clf" "be" "web1" 0 0 0 0 0 ---- 1 1 0 0 0 0 0 "" "" "example.com" "" '
        '"web1"',
        '127.0.0.1 - - [21/Nov/2026:11:38:56 +0000] "<BADREQ>" 400 0 "" "" 39086 234 "clf" '
        '"clf" "<NOSRV>" -1 -1 -1 -1 0 PR-- 1 1 0 0 0 0 0 "" "" ',
    ],
    "tcpfe": [
        '127.0.0.1 tcpfe tbe/web1 -- ---- -1 {} - "" 127.0.0.1 1/1/0/0 0/0 - 7F000001 "tcpfe"',
    ],
}

_MASKS = [
    # option httplog: client port, date, timers and %B
    (re.compile(r"^(\S+):\d+ \[[^]]+\] (\S+ \S+) -?\d+/-?\d+/-?\d+/-?\d+/-?\d+ (\d+) \d+ "),
     r"\1:PORT [DATE] \2 TIMERS \3 BYTES "),
    # option httplog clf: date, %B, client port, %ms and timers
    (re.compile(r'^(\S+ - - )\[[^]]+\] (".*") (\d+) \d+ "" "" \d+ \d+ (\S+ \S+ \S+)'
                r"( -?\d+){5} "),
     r'\1[DATE] \2 \3 BYTES "" "" PORT MS \4 TIMERS '),
]  # fmt: skip


# Not the "Proxy NAME stopped" lines, nor the notice that says why a request was refused,
# nor poise's failure lines (`fe/be/srv client: failed ...`, core/explain.py).
TRAFFIC = r"^(?!Proxy |\S+/\S+ \S+: failed )"


def masked(line: str) -> str:
    for pattern, replacement in _MASKS:
        line = pattern.sub(replacement, line)
    return line


def test_capture_blocks_and_log_formats_are_haproxys(loop_kind: str) -> None:
    async def main() -> None:
        async with Stage() as stage:
            web1 = await stage.webapp("web1")
            config = CONFIG.replace("{web1}", str(web1.port))
            poise = await stage.poise(config.replace("{custom}", CUSTOM).replace("{tcp}", TCP))
            logged = 0
            for frontend in ("httplog", "nocap", "rescap", "custom", "clf"):
                for raw in REQUESTS:
                    await request(poise.port(frontend), raw)
                    logged += 1
                    await stage.logs.wait_for(TRAFFIC, count=logged)
            await request(poise.port("tcpfe"), b"GET /tcp HTTP/1.0\r\n\r\n", until_close=True)
            await stage.logs.wait_for(TRAFFIC, count=logged + 1)
            lines = stage.logs.matching(TRAFFIC)
            got: dict[str, list[str]] = {}
            for name, expected in HAPROXY.items():
                got[name], lines = lines[: len(expected)], lines[len(expected) :]
            for name in ("custom", "tcpfe"):
                assert got[name] == HAPROXY[name]
            for name in ("httplog", "nocap", "rescap", "clf"):
                assert [masked(line) for line in got[name]] == [
                    masked(line) for line in HAPROXY[name]
                ]
                assert all("PORT" in masked(line) for line in got[name])

    run(loop_kind, main)
