"""What HAProxy's configuration language contains, as data: section keywords, the global
keywords, the proxy keywords matrix (which section may carry which keyword), and the bind
and server options with the number of arguments each one takes.

Taken from HAProxy's configuration.txt (sections 3, 4.1, 5.1 and 5.2). The parser uses
these tables to tell three cases apart, as DESIGN.md asks: a keyword poise implements, a
keyword HAProxy knows but poise does not implement yet (an error saying exactly that, never
silently ignored), and a word nobody knows (an error with the nearest known keyword).
A few keywords only tune HAProxy's own machinery (pollers, threads, pipes) and change
nothing a user can see in poise; those are warnings, each with its reason.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def _words(text: str) -> list[str]:
    """The words of a text block: the tables below are written as the doc lists them."""
    return text.split()


def _arities(text: str) -> dict[str, int]:
    """`name` (no argument), `name:1` (one) or `name:*` (the rest of the line)."""
    table: dict[str, int] = {}
    for word in text.split():
        name, _, count = word.partition(":")
        table[name] = -1 if count == "*" else int(count or 0)
    return table


SECTIONS = frozenset({"global", "defaults", "frontend", "backend", "listen"})
UNIMPLEMENTED_SECTIONS = frozenset(
    {
        "crt-store",
        "dynamic-update",
        "fcgi-app",
        "log-forward",
        "mailers",
        "ring",
        "traces",
    }
)
# Sections that are not proxies, each with its own parser (haproxy_resolvers.py).
RESOLVERS_SECTION = "resolvers"
USERLIST_SECTION = "userlist"
HTTP_ERRORS_SECTION = "http-errors"
CACHE_SECTION = "cache"
PEERS_SECTION = "peers"
PROGRAM_SECTION = "program"
ALL_SECTIONS = (
    SECTIONS
    | UNIMPLEMENTED_SECTIONS
    | {RESOLVERS_SECTION, USERLIST_SECTION, HTTP_ERRORS_SECTION, CACHE_SECTION}
    | {PEERS_SECTION, PROGRAM_SECTION}
)

# --- global section (configuration.txt 3) ----------------------------------------------

GLOBAL_KEYWORDS = frozenset(
    _words(
        """
    51degrees-cache-size 51degrees-data-file 51degrees-property-name-list
    51degrees-property-separator ca-base chroot cluster-secret cpu-map crt-base daemon
    default-path description deviceatlas-json-file deviceatlas-log-level
    deviceatlas-properties-cookie deviceatlas-separator expose-experimental-directives
    external-check fd-hard-limit gid grace group h1-accept-payload-with-any-method
    h1-case-adjust h1-case-adjust-file h2-workaround-bogus-websocket-clients hard-stop-after
    httpclient.resolvers.id httpclient.resolvers.prefer httpclient.ssl.ca-file
    httpclient.ssl.verify insecure-fork-wanted insecure-setuid-wanted issuers-chain-path
    localpeer log log-send-hostname log-tag lua-load lua-load-per-thread lua-prepend-path
    master-worker mworker-max-reloads nbthread node numa-cpu-mapping pidfile
    pp2-never-send-local presetenv resetenv set-dumpable set-var setenv
    ssl-default-bind-ciphers ssl-default-bind-ciphersuites ssl-default-bind-curves
    ssl-default-bind-options ssl-default-server-ciphers ssl-default-server-ciphersuites
    ssl-default-server-options ssl-dh-param-file ssl-propquery ssl-provider
    ssl-provider-path ssl-server-verify ssl-skip-self-issued-ca stats strict-limits
    thread-groups thread-group uid ulimit-n unix-bind unsetenv user wurfl-cache-size
    wurfl-data-file wurfl-information-list wurfl-information-list-separator busy-polling
    max-spread-checks maxcompcpuusage maxcomprate maxconn maxconnrate maxpipes maxsessrate
    maxsslconn maxsslrate maxzlibmem no-memory-trimming noepoll noevports nogetaddrinfo
    nokqueue nopoll noreuseport nosplice profiling.memory profiling.tasks server-state-base
    server-state-file spread-checks ssl-engine ssl-mode-async tune.buffers.limit
    tune.buffers.reserve tune.bufsize tune.comp.maxlevel tune.fail-alloc
    tune.fd.edge-triggered tune.h2.header-table-size tune.h2.initial-window-size
    tune.h2.max-concurrent-streams tune.http.cookielen tune.http.logurilen tune.http.maxhdr
    tune.idle-pool.shared tune.idletimer tune.lua.forced-yield tune.lua.maxmem
    tune.lua.service-timeout tune.lua.session-timeout tune.lua.task-timeout tune.maxaccept
    tune.maxpollevents tune.maxrewrite tune.pattern.cache-size
    tune.peers.max-updates-at-once tune.pipesize tune.pool-high-fd-ratio
    tune.pool-low-fd-ratio tune.quic.frontend.conn-tx-buffers.limit
    tune.quic.frontend.max-idle-timeout tune.quic.frontend.max-streams-bidi
    tune.quic.retry-threshold tune.rcvbuf.client tune.rcvbuf.server tune.recv_enough
    tune.runqueue-depth tune.sched.low-latency tune.sndbuf.client tune.sndbuf.server
    tune.ssl.cachesize tune.ssl.capture-buffer-size tune.ssl.capture-cipherlist-size
    tune.ssl.default-dh-param tune.ssl.force-private-cache tune.ssl.hard-maxrecord
    tune.ssl.keylog tune.ssl.lifetime tune.ssl.maxrecord tune.ssl.ssl-ctx-cache-size
    tune.vars.global-max-size tune.vars.proc-max-size tune.vars.reqres-max-size
    tune.vars.sess-max-size tune.vars.txn-max-size tune.zlib.memlevel tune.zlib.windowsize
    quiet zero-warning debug
    """
    )
)

# Global keywords that only tune HAProxy's own process: accepted with a warning.
HARMLESS_GLOBAL = {
    "quiet": "poise prints its startup messages regardless",
    "tune.ssl.default-dh-param": "poise uses DHE only with the parameters of 'ssl-dh-param-file' "
    "or of the certificate file",
    "ulimit-n": "poise sets its file descriptor limit from maxconn, as HAProxy does without it",
    "fd-hard-limit": "poise does not raise its file descriptor limit itself",
    "maxpipes": "poise does not splice through pipes",
    "nosplice": "poise does not splice through pipes",
    "tune.pipesize": "poise does not splice through pipes",
    "noepoll": "poise's event loop chooses its own poller",
    "nopoll": "poise's event loop chooses its own poller",
    "nokqueue": "poise's event loop chooses its own poller",
    "noevports": "poise's event loop chooses its own poller",
    "busy-polling": "poise's event loop chooses its own poller",
    "tune.maxpollevents": "poise's event loop chooses its own poller",
    "tune.fd.edge-triggered": "poise's event loop chooses its own poller",
    "nogetaddrinfo": "poise always resolves names with getaddrinfo",
    "numa-cpu-mapping": "poise runs single-threaded per worker",
    "thread-groups": "poise runs single-threaded per worker",
    "tune.runqueue-depth": "poise has no task run queue",
    "tune.peers.max-updates-at-once": "poise sends every pending peers update at once",
    "tune.sched.low-latency": "poise has no task scheduler of its own",
    "tune.idle-pool.shared": "poise runs single-threaded per worker",
    "profiling.tasks": "poise has no task profiler",
    "set-dumpable": "poise leaves core dumps to the system's settings",
    "strict-limits": "poise does not change its resource limits",
    "no-memory-trimming": "poise does not trim its memory pools",
    "tune.bufsize": (
        "poise keeps HAProxy's default buffer of 16384 bytes (request and response heads "
        "up to 15360 bytes, health check answers and stats socket commands as with the "
        "default): a different size is not supported yet"
    ),
    "tune.maxrewrite": (
        "poise rewrites heads in place, without a reserve in a fixed buffer; its head "
        "limit stays HAProxy's default (15360 bytes)"
    ),
    "tune.ssl.keylog": "poise has no fetches of TLS secrets (ssl_fc_*_traffic_secret)",
    "tune.h2.header-table-size": "poise does not speak HTTP/2",
    "tune.h2.initial-window-size": "poise does not speak HTTP/2",
    "tune.h2.max-concurrent-streams": "poise does not speak HTTP/2",
    "tune.http.cookielen": "poise has no `capture cookie`, the only user of this length",
    "tune.rcvbuf.client": "poise leaves socket buffer sizes to the kernel's autotuning",
    "tune.rcvbuf.server": "poise leaves socket buffer sizes to the kernel's autotuning",
    "tune.sndbuf.client": "poise leaves socket buffer sizes to the kernel's autotuning",
    "tune.sndbuf.server": "poise leaves socket buffer sizes to the kernel's autotuning",
    "tune.ssl.cachesize": "poise's TLS session cache is OpenSSL's, of its default size",
    "tune.ssl.lifetime": "poise's TLS sessions live as long as OpenSSL's default (300s)",
}

# Old spellings that HAProxy itself rejects now, with what replaces them.
REMOVED_KEYWORDS = {
    "contimeout": "timeout connect",
    "clitimeout": "timeout client",
    "srvtimeout": "timeout server",
    "redispatch": "option redispatch",
    "block": "http-request deny",
    "reqadd": "http-request add-header",
    "reqrep": "http-request replace-header",
    "reqdel": "http-request del-header",
    "reqdeny": "http-request deny",
    "reqallow": "http-request allow",
    "reqpass": "http-request allow",
    "reqtarpit": "http-request tarpit",
    "reqiallow": "http-request allow",
    "reqideny": "http-request deny",
    "reqirep": "http-request replace-header",
    "reqidel": "http-request del-header",
    "rspadd": "http-response add-header",
    "rsprep": "http-response replace-header",
    "rspdel": "http-response del-header",
    "rspdeny": "http-response deny",
    "rspirep": "http-response replace-header",
    "rspidel": "http-response del-header",
    "rspideny": "http-response deny",
    "monitor-net": "http-request return status 200 if { src NET }",
    "nbproc": "nbthread",
}

# --- proxy sections (configuration.txt 4.1, the keywords matrix) -------------------------
# Columns: defaults frontend listen backend; "x" allowed, "-" not.
_PROXY_MATRIX = """
acl                                  x x x x
backlog                              x x x -
balance                              x - x x
bind                                 - x x -
bind-process                         x x x x
capture cookie                       - x x -
capture request header               - x x -
capture response header              - x x -
clitcpka-cnt                         x x x -
clitcpka-idle                        x x x -
clitcpka-intvl                       x x x -
compression                          x x x x
cookie                               x - x x
declare capture                      - x x -
default-server                       x - x x
default_backend                      x x x -
description                          - x x x
disabled                             x x x x
dispatch                             - - x x
dynamic-cookie-key                   x - x x
email-alert from                     x x x x
email-alert level                    x x x x
email-alert mailers                  x x x x
email-alert myhostname               x x x x
email-alert to                       x x x x
enabled                              x x x x
errorfile                            x x x x
errorfiles                           x x x x
errorloc                             x x x x
errorloc302                          x x x x
errorloc303                          x x x x
error-log-format                     x x x -
force-persist                        - - x x
filter                               - x x x
fullconn                             x - x x
hash-balance-factor                  x - x x
hash-type                            x - x x
http-after-response                  x x x x
http-check comment                   x - x x
http-check connect                   x - x x
http-check disable-on-404            x - x x
http-check expect                    x - x x
http-check send                      x - x x
http-check send-state                x - x x
http-check set-var                   x - x x
http-check unset-var                 x - x x
http-error                           x x x x
http-request                         x x x x
http-response                        x x x x
http-reuse                           x - x x
http-send-name-header                x - x x
id                                   - x x x
ignore-persist                       - - x x
load-server-state-from-file          x - x x
log                                  x x x x
log-format                           x x x -
log-format-sd                        x x x -
log-tag                              x x x x
max-keep-alive-queue                 x - x x
maxconn                              x x x -
mode                                 x x x x
monitor fail                         - x x -
monitor-uri                          x x x -
persist rdp-cookie                   x - x x
rate-limit sessions                  x x x -
redirect                             - x x x
retries                              x - x x
retry-on                             x - x x
server                               - - x x
server-state-file-name               x - x x
server-template                      - - x x
source                               x - x x
srvtcpka-cnt                         x - x x
srvtcpka-idle                        x - x x
srvtcpka-intvl                       x - x x
stats admin                          - x x x
stats auth                           x x x x
stats enable                         x x x x
stats hide-version                   x x x x
stats http-request                   - x x x
stats realm                          x x x x
stats refresh                        x x x x
stats scope                          x x x x
stats show-desc                      x x x x
stats show-legends                   x x x x
stats show-modules                   x x x x
stats show-node                      x x x x
stats uri                            x x x x
stick match                          - - x x
stick on                             - - x x
stick store-request                  - - x x
stick store-response                 - - x x
stick-table                          - x x x
tcp-check comment                    x - x x
tcp-check connect                    x - x x
tcp-check expect                     x - x x
tcp-check send                       x - x x
tcp-check send-lf                    x - x x
tcp-check send-binary                x - x x
tcp-check send-binary-lf             x - x x
tcp-check set-var                    x - x x
tcp-check unset-var                  x - x x
tcp-request connection               x x x -
tcp-request content                  x x x x
tcp-request inspect-delay            x x x x
tcp-request session                  x x x -
tcp-response content                 x - x x
tcp-response inspect-delay           x - x x
timeout check                        x - x x
timeout client                       x x x -
timeout client-fin                   x x x -
timeout connect                      x - x x
timeout http-keep-alive              x x x x
timeout http-request                 x x x x
timeout queue                        x - x x
timeout server                       x - x x
timeout server-fin                   x - x x
timeout tarpit                       x x x x
timeout tunnel                       x - x x
transparent                          x - x x
unique-id-format                     x x x -
unique-id-header                     x x x -
use_backend                          - x x -
use-fcgi-app                         - - x x
use-server                           - - x x
option abortonclose                  x - x x
option accept-invalid-http-request   x x x -
option accept-invalid-http-response  x - x x
option allbackups                    x - x x
option checkcache                    x - x x
option clitcpka                      x x x -
option contstats                     x x x -
option disable-h2-upgrade            x x x -
option dontlog-normal                x x x -
option dontlognull                   x x x -
option external-check                x - x x
option forwardfor                    x x x x
option h1-case-adjust-bogus-client   x x x -
option h1-case-adjust-bogus-server   x - x x
option http-buffer-request           x x x x
option http-ignore-probes            x x x -
option http-keep-alive               x x x x
option http-no-delay                 x x x x
option http-pretend-keepalive        x - x x
option http-restrict-req-hdr-names   x x x x
option http-server-close             x x x x
option http-use-proxy-header         x x x -
option httpchk                       x - x x
option httpclose                     x x x x
option httplog                       x x x -
option httpslog                      x x x -
option idle-close-on-response        x x x -
option independent-streams           x x x x
option ldap-check                    x - x x
option log-health-checks             x - x x
option log-separate-errors           x x x -
option logasap                       x x x -
option mysql-check                   x - x x
option nolinger                      x x x x
option originalto                    x x x x
option persist                       x - x x
option pgsql-check                   x - x x
option prefer-last-server            x - x x
option redispatch                    x - x x
option redis-check                   x - x x
option smtpchk                       x - x x
option socket-stats                  x x x -
option splice-auto                   x x x x
option splice-request                x x x x
option splice-response               x x x x
option spop-check                    x - x x
option srvtcpka                      x - x x
option ssl-hello-chk                 x - x x
option tcp-check                     x - x x
option tcp-smart-accept              x x x -
option tcp-smart-connect             x - x x
option tcpka                         x x x x
option tcplog                        x x x x
option transparent                   x - x x
"""

DEFAULTS, FRONTEND, LISTEN, BACKEND = "defaults", "frontend", "listen", "backend"
_COLUMNS = (DEFAULTS, FRONTEND, LISTEN, BACKEND)


def _read_matrix(text: str) -> dict[str, frozenset[str]]:
    table: dict[str, frozenset[str]] = {}
    for row in text.strip().splitlines():
        fields = row.split()
        name, marks = " ".join(fields[:-4]), fields[-4:]
        table[name] = frozenset(
            col for col, mark in zip(_COLUMNS, marks, strict=True) if mark == "x"
        )
    return table


PROXY_MATRIX = _read_matrix(_PROXY_MATRIX)
# First words of the matrix (`timeout`, `option`, `stats` ...), for the unknown-word check.
PROXY_FIRST_WORDS = frozenset(name.split()[0] for name in PROXY_MATRIX)
OPTION_NAMES = frozenset(name.split()[1] for name in PROXY_MATRIX if name.startswith("option "))
# Options marked (*) in the matrix: they take a `no` (and `default`) prefix.
NEGATABLE_OPTIONS = frozenset(
    _words(
        """
    abortonclose accept-invalid-http-request accept-invalid-http-response allbackups
    checkcache clitcpka contstats disable-h2-upgrade dontlog-normal dontlognull
    h1-case-adjust-bogus-client h1-case-adjust-bogus-server http-buffer-request
    http-ignore-probes http-keep-alive http-no-delay http-pretend-keepalive
    http-server-close http-use-proxy-header httpclose independent-streams
    log-health-checks log-separate-errors logasap nolinger persist prefer-last-server
    redispatch socket-stats splice-auto splice-request splice-response srvtcpka
    tcp-smart-accept tcp-smart-connect transparent idle-close-on-response
    """
    )
)
HARMLESS_OPTIONS = {
    "splice-auto": "poise does not splice",
    "splice-request": "poise does not splice",
    "splice-response": "poise does not splice",
    "tcp-smart-accept": "poise leaves TCP_DEFER_ACCEPT to the system",
    "tcp-smart-connect": "poise leaves TCP_QUICKACK to the system",
    "contstats": "poise updates its counters as data flows",
    # HAProxy's option turns off MSG_MORE and turns on TCP_NODELAY; poise never delays.
    "http-no-delay": "poise always sends each buffer at once (TCP_NODELAY, no MSG_MORE)",
}
HARMLESS_PROXY = {
    "bind-process": "poise runs single-threaded per worker",
}

# --- bind options (configuration.txt 5.1): name -> number of arguments -------------------
BIND_OPTIONS = _arities(
    """
    accept-netscaler-cip:1 accept-proxy allow-0rtt alpn:1 backlog:1 ca-file:1
    ca-ignore-err:1 ca-sign-file:1 ca-sign-pass:1 ca-verify-file:1 ciphers:1 ciphersuites:1
    crl-file:1 crt:1 crt-ignore-err:1 crt-list:1 curves:1 defer-accept ecdhe:1 expose-fd:1
    force-sslv3 force-tlsv10 force-tlsv11 force-tlsv12 force-tlsv13 generate-certificates
    gid:1 group:1 id:1 interface:1 level:1 maxconn:1 mode:1 mss:1 name:1 namespace:1 nice:1
    no-ca-names no-sslv3 no-tls-tickets no-tlsv10 no-tlsv11 no-tlsv12 no-tlsv13 npn:1
    prefer-client-ciphers process:1 proto:1 quic-cc-algo:1 quic-force-retry
    severity-output:1 shards:1 ssl ssl-max-ver:1 ssl-min-ver:1 strict-sni tcp-ut:1 tfo
    thread:1 tls-ticket-keys:1 transparent uid:1 user:1 v4v6 v6only verify:1
    """
)
# Not HAProxy's: poise's own spellings (see haproxy_server.py).
BIND_OPTIONS["freebind"] = 0
BIND_OPTIONS["noreuseport"] = 0
HARMLESS_BIND = {
    "process": "poise runs single-threaded per worker",
    "thread": "poise runs single-threaded per worker",
    "shards": "poise runs single-threaded per worker",
    "nice": "poise does not reorder work between listeners",
}

# --- server and default-server options (configuration.txt 5.2): name -> arguments ---------
# `source` takes the rest of the line (its address and sub-options): -1.
SERVER_OPTIONS = _arities(
    """
    addr:1 agent-addr:1 agent-check agent-inter:1 agent-port:1 agent-send:1 allow-0rtt
    alpn:1 backup ca-file:1 check check-alpn:1 check-proto:1 check-send-proxy check-sni:1
    check-ssl check-via-socks4 ciphers:1 ciphersuites:1 cookie:1 crl-file:1 crt:1 disabled
    downinter:1 enabled error-limit:1 fall:1 fastinter:1 force-sslv3 force-tlsv10
    force-tlsv11 force-tlsv12 force-tlsv13 id:1 init-addr:1 inter:1 log-proto:1 max-reuse:1
    maxconn:1 maxqueue:1 minconn:1 namespace:1 no-agent-check no-backup no-check
    no-check-ssl no-send-proxy no-send-proxy-v2 no-send-proxy-v2-ssl
    no-send-proxy-v2-ssl-cn no-ssl no-ssl-reuse no-sslv3 no-tfo no-tls-tickets no-tlsv10
    no-tlsv11 no-tlsv12 no-tlsv13 no-verifyhost non-stick npn:1 observe:1 on-error:1
    on-marked-down:1 on-marked-up:1 pool-low-conn:1 pool-max-conn:1 pool-purge-delay:1
    port:1 proto:1 proxy-v2-options:1 redir:1 resolve-net:1 resolve-opts:1 resolve-prefer:1
    resolvers:1 rise:1 send-proxy send-proxy-v2 send-proxy-v2-ssl send-proxy-v2-ssl-cn
    slowstart:1 sni:1 socks4:1 source:* ssl ssl-max-ver:1 ssl-min-ver:1 ssl-reuse stick
    tcp-ut:1 tfo tls-tickets track:1 verify:1 verifyhost:1 weight:1 ws:1
    """
)

BALANCE_ALGORITHMS = frozenset(
    {"roundrobin", "static-rr", "leastconn", "first", "source", "random"}
    | {"uri", "url_param", "hdr", "rdp-cookie", "hash"}
)
HASH_FUNCTIONS = frozenset({"sdbm", "djb2", "wt6", "crc32", "none"})
LOG_FACILITIES = _words(
    "kern user mail daemon auth syslog lpr news uucp cron auth2 ftp ntp audit alert cron2 "
    "local0 local1 local2 local3 local4 local5 local6 local7"
)
LOG_LEVELS = _words("emerg alert crit err warning notice info debug")
LOG_FORMATS = ("rfc3164", "rfc5424", "raw", "short", "timed", "iso", "local", "priority")


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The known keyword nearest to a mistyped one, if one is near enough."""
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`; did you mean 'X'?` or nothing, to end an unknown-keyword message."""
    nearest = suggest(word, candidates)
    return f"; did you mean '{nearest}'?" if nearest else ""
